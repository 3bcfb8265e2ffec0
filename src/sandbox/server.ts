import Fastify, { LogController } from 'fastify';
import { isLoopbackHost } from '../api/plugins/loopbackHost';
import type { Logger } from '../telemetry/logger';
import { sandboxApp } from './app';
import { CallbackSender } from './callbacks';
import { SandboxState, type SandboxStateOptions } from './state';

export interface StartSandboxOptions extends SandboxStateOptions {
  host?: string;
  /**
   * Host names besides loopback ones whose requests may read the outbox and change faults
   * (`/sandbox/...`), e.g. the sandbox's name on a compose network
   */
  allowedHosts?: string[];
  /** 0 picks a free port (tests run many sandboxes in parallel) */
  port: number;
  logger?: Logger;
}

export interface RunningSandbox {
  /** base URL, e.g. http://127.0.0.1:8099, without a trailing slash */
  url: string;
  port: number;
  state: SandboxState;
  close(): Promise<void>;
}

export async function startSandbox(options: StartSandboxOptions): Promise<RunningSandbox> {
  const host = options.host ?? '127.0.0.1';
  const state = new SandboxState(options);
  const logger = options.logger;
  const callbacks = new CallbackSender(logger);
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : {}),
    // request lines would carry recipients in query strings; /sandbox/requests has what matters
    logController: new LogController({ disableRequestLogging: true }),
    // SDK clients keep connections alive; close() must not wait for them to go idle
    forceCloseConnections: true,
    bodyLimit: 2 * 1024 * 1024,
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ error: 'not_found', message: `no sandbox route for ${request.method} ${request.url.split('?')[0]}` }),
  );
  // the outbox (codes, links) and the fault switches answer this machine only, by name: a web
  // page cannot read codes through DNS rebinding. The provider APIs stay open to any Host, as
  // the SDKs name the sandbox however they were configured.
  const allowed = new Set((options.allowedHosts ?? []).map((h) => h.toLowerCase()));
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/sandbox/')) return;
    const host = request.headers.host ?? '';
    if (isLoopbackHost(host) || allowed.has(host.replace(/:\d+$/, '').toLowerCase())) return;
    return reply
      .code(403)
      .send({ error: 'loopback_only', message: 'the sandbox outbox and controls answer loopback hosts only' });
  });
  await app.register(sandboxApp, { state, callbacks });
  await app.listen({ host, port: options.port });

  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    state,
    close: () => (closing ??= app.close()),
  };
}
