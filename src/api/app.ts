import formbody from '@fastify/formbody';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyServerOptions,
} from 'fastify';
import type { Runtime } from '../runtime';
import adminRoutes from './admin';
import codecRoutes from './codec';
import integrations from './integrations';
import { answerFrameworkError, installErrorHandling } from './errors';
import admission from './plugins/admission';
import httpMetrics from './plugins/httpMetrics';
import openapi, { type DocumentedApp } from './plugins/openapi';
import runtimePlugin from './plugins/runtime';
import refusalAudit from './plugins/refusals';
import httpTracing from './plugins/tracing';
import publicRoutes from './public';
import { redactUrl } from './redact';

export type WardenApp = FastifyInstance;

function baseOptions(runtime: Runtime, name: string): FastifyServerOptions & { loggerInstance: FastifyBaseLogger } {
  const { config } = runtime;
  return {
    loggerInstance: runtime.logger.child({ server: name }) as FastifyBaseLogger,
    // X-Forwarded-For is believed only from configured proxies; otherwise the socket address
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    bodyLimit: 64 * 1024,
    requestTimeout: 30_000,
    connectionTimeout: 30_000,
    keepAliveTimeout: 5_000,
    // Fastify's own request lines would log the raw URL, and a magic link carries its token
    // in the query string: the onResponse hook below logs a redacted one instead
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    requestIdHeader: false,
    frameworkErrors: answerFrameworkError,
  };
}

async function build(
  runtime: Runtime,
  name: string,
  routes: FastifyPluginAsync,
  documents?: DocumentedApp,
  services: FastifyPluginAsync[] = [],
): Promise<WardenApp> {
  const app: WardenApp = Fastify(baseOptions(runtime, name));
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url,
        url: redactUrl(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });
  installErrorHandling(app);
  await app.register(formbody);
  await app.register(runtimePlugin, { runtime });
  await app.register(httpMetrics, { server: name });
  if (runtime.tracing) await app.register(httpTracing, { tracer: runtime.tracing.tracer, server: name });
  // before the routes: the document (/openapi.json, /docs) is generated from their schemas
  if (documents) await app.register(openapi, { documents });
  for (const service of services) await app.register(service);
  await app.register(routes);
  return app;
}

export function buildPublicApp(runtime: Runtime): Promise<WardenApp> {
  // refusals aggregated in the audit trail, and admission control in front of the bcrypt work
  return build(runtime, 'public', publicRoutes, 'public', [refusalAudit, admission]);
}

export function buildAdminApp(runtime: Runtime): Promise<WardenApp> {
  return build(
    runtime,
    'admin',
    async (app) => {
      await app.register(adminRoutes);
      // the codec server has its own token and CORS, beside the admin scope
      await app.register(codecRoutes);
    },
    'admin',
  );
}

/** Slack and Alertmanager alone, for a deployment that gives them their own listener. */
export function buildIntegrationsApp(runtime: Runtime): Promise<WardenApp> {
  return build(runtime, 'integrations', integrations);
}

/** /metrics on its own port so it can be scraped without exposing the admin API. */
export async function buildMetricsApp(runtime: Runtime): Promise<WardenApp> {
  const app: WardenApp = Fastify({
    loggerInstance: runtime.logger.child({ server: 'metrics' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  installErrorHandling(app);
  app.get('/metrics', async (_request, reply) => {
    const body = await runtime.registry.metrics();
    return reply.type(runtime.registry.contentType).send(body);
  });
  return app;
}
