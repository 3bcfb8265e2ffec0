/**
 * `npm start`: the whole embedded stack in one command. Temporal dev server (SQLite file
 * under the data folder, Web UI), Postgres (DATABASE_URL or embedded), the provider sandbox,
 * the worker and the API. Ctrl-C or SIGTERM stops all of it, in reverse order.
 */
import path from 'node:path';
import { startApiServers, type ApiServers } from '../api/server';
import { ensureCanarySchedule } from '../canary/schedule';
import { describeConfig, loadConfig } from '../config';
import { startEmbeddedPostgres, type EmbeddedServer } from '../db/embedded';
import { migrate } from '../db/migrate';
import { DEV_APP_ID, seedDevApp, seedUsers } from '../db/seed';
import { ensureRetentionSchedule } from '../retention/schedule';
import { ensureSmsPumpingSchedule } from '../delivery/pumpingSchedule';
import { createRuntime, type Runtime } from '../runtime';
import { startSandbox } from '../sandbox/server';
import { createLogger, type Logger } from '../telemetry/logger';
import { startDevServer, type DevServer } from '../temporal/devServer';
import { installTemporalLogging } from '../temporal/logging';
import { ensureTool } from '../temporal/tools';
import { startWorker, type WorkerHandle } from '../worker/worker';
import { portProblem } from './process';
import { devSecretsEnv } from './secrets';
import { StartupError, asStartupError } from './startupError';

async function main(): Promise<void> {
  // set once the configuration has been read
  let log: Logger | undefined;
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  let stopping = false;
  const shutdown = async (reason: string, code: number, failure?: StartupError) => {
    if (stopping) return;
    stopping = true;
    log?.info({ reason }, 'stopping the stack');
    for (const { name, stop } of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        log?.warn({ component: name, err: (err as Error).message }, 'stop failed');
      }
    }
    const flushed = log;
    if (flushed) await new Promise<void>((resolve) => flushed.flush(() => resolve()));
    // last, after the log lines, so that it is what the terminal ends with
    if (failure) process.stderr.write(failure.report('Warden could not start'));
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));

  try {
    const dataDir = path.resolve(process.env.WARDEN_DATA_DIR ?? '.data');
    Object.assign(process.env, devSecretsEnv(dataDir, process.env));
    // The dev UI has no login, so it has no token to send to the codec: on a loopback-only stack
    // the codec runs without one (anyone here can read .data/secrets anyway). loadConfig refuses
    // this on any other bind address.
    if (
      !process.env.WARDEN_CODEC_AUTH &&
      !process.env.WARDEN_CODEC_TOKEN &&
      /^(127\.|localhost$|::1$)/.test(process.env.WARDEN_HOST ?? '127.0.0.1')
    ) {
      process.env.WARDEN_CODEC_AUTH = 'none';
    }
    // Slack is the sandbox's workspace unless the environment names a real one (SLACK_ROLES
    // stays the environment's: without it, anyone may open incidents and nothing else)
    if (!process.env.SLACK_TEAM_ID && !process.env.SLACK_BOT_TOKEN) process.env.SLACK_TEAM_ID = 'T0SANDBOX';
    // the embedded stack is development: the provider sandbox stands in for missing credentials
    process.env.WARDEN_ENV ??= 'development';
    // sign-ins that name no app belong to the development app, registered below
    process.env.WARDEN_DEFAULT_APP ??= DEV_APP_ID;
    const config = loadConfig();
    const logger = createLogger({ level: config.logLevel, name: 'warden' });
    log = logger;
    installTemporalLogging(logger);
    const say = (line: string) => logger.info(line);
    const [host, port] = splitAddress(config.temporal.address);
    const anySandbox = Object.values(config.providers).some(
      (p) => typeof p === 'object' && p !== null && 'sandbox' in p && p.sandbox,
    );
    await checkPorts([
      { variable: 'WARDEN_PUBLIC_PORT', host: config.host, port: config.ports.public },
      { variable: 'WARDEN_ADMIN_PORT', host: config.host, port: config.ports.admin },
      { variable: 'WARDEN_METRICS_PORT', host: config.host, port: config.ports.metrics },
      ...(anySandbox ? [{ variable: 'WARDEN_SANDBOX_PORT', host: '127.0.0.1', port: config.ports.sandbox }] : []),
      ...(config.database.url
        ? []
        : [{ variable: 'WARDEN_EMBEDDED_PG_PORT', host: '127.0.0.1', port: config.database.embeddedPort }]),
      { variable: 'TEMPORAL_ADDRESS', host, port },
      { variable: 'TEMPORAL_UI_PORT', host, port: config.temporal.uiPort },
    ]);

    const cli = await ensureTool('cli', config.toolsDir, say);
    const temporal: DevServer = await startDevServer({
      cli,
      host,
      port,
      uiPort: config.temporal.uiPort,
      dbFile: path.join(config.dataDir, 'temporal', 'temporal.db'),
      namespace: config.temporal.namespace,
      retentionSeconds: config.devTemporalRetentionSeconds,
      // the UI decodes payloads through Warden's codec server on the admin port
      codecEndpoint: `${new URL(config.publicBaseUrl).protocol}//${new URL(config.publicBaseUrl).hostname}:${config.ports.admin}/codec`,
      onOutput: (line) => logger.debug({ component: 'temporal' }, line),
    });
    stops.push({ name: 'temporal', stop: () => temporal.stop() });

    let databaseUrl = config.database.url;
    if (!databaseUrl) {
      const embedded: EmbeddedServer = await startEmbeddedPostgres({
        dir: path.join(config.dataDir, 'postgres'),
        port: config.database.embeddedPort,
        onLog: (line) => logger.debug({ component: 'postgres' }, line),
      });
      stops.push({ name: 'postgres', stop: () => embedded.stop() });
      databaseUrl = embedded.url;
    }
    const applied = await migrate(databaseUrl, (line) => logger.warn(line));
    if (applied.length) logger.info({ migrations: applied }, 'migrations applied');

    let sandboxUrl: string | undefined;
    if (anySandbox) {
      const sandbox = await startSandbox({
        // unauthenticated and holding every code it delivered: this machine only, whatever
        // WARDEN_HOST says about Warden's own servers
        host: '127.0.0.1',
        port: config.ports.sandbox,
        logger: logger.child({ component: 'sandbox' }),
      });
      stops.push({ name: 'sandbox', stop: () => sandbox.close() });
      sandboxUrl = sandbox.url;
    }

    const runtime: Runtime = await createRuntime(config, { databaseUrl, logger });
    stops.push({ name: 'runtime', stop: () => runtime.close() });
    await seedUsers(runtime.db);
    await seedDevApp(runtime.db);

    const worker: WorkerHandle = await startWorker(runtime);
    stops.push({ name: 'worker', stop: () => worker.shutdown() });
    worker.running.catch((err: unknown) => {
      logger.error({ err: (err as Error).message }, 'worker stopped unexpectedly');
      void shutdown('worker failure', 1);
    });

    const api: ApiServers = await startApiServers(runtime);
    stops.push({ name: 'api', stop: () => api.close() });
    // the delivery canary, when WARDEN_CANARY_USER names one (its messages come back through
    // the sandbox's inbound webhooks, so the API must be listening first)
    await ensureCanarySchedule(runtime);
    await ensureRetentionSchedule(runtime);
    await ensureSmsPumpingSchedule(runtime);

    logger.info({ config: describeConfig(config) }, 'configuration');
    const lines = [
      '',
      'Warden is running:',
      `  public API      ${api.urls.public}/browser/api/v1/identity/auth/...`,
      `  admin API       ${api.urls.admin}/admin/api/v1  (bearer token: ${path.join(path.relative(process.cwd(), config.dataDir) || '.', 'secrets', 'admin-token')})`,
      `  readiness       ${api.urls.admin}/readyz`,
      `  metrics         ${api.urls.metrics}/metrics`,
      `  Temporal UI     ${temporal.uiUrl}`,
      `  Temporal gRPC   ${temporal.address}`,
      ...(sandboxUrl ? [`  sandbox outbox  ${sandboxUrl}/sandbox/messages`] : []),
      `  Postgres        ${config.database.url ? 'DATABASE_URL' : `embedded on 127.0.0.1:${config.database.embeddedPort} (${path.join(config.dataDir, 'postgres')})`}`,
      'Press Ctrl-C to stop everything.',
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } catch (err) {
    // the stack trace, for whoever asks for it; the terminal gets cause and fix
    log?.debug({ err }, 'the stack failed to start');
    await shutdown('start failure', 1, asStartupError(err));
  }
}

/** Refuses to start anything while a port the stack needs is taken, naming the variable that moves it. */
async function checkPorts(ports: Array<{ variable: string; host: string; port: number }>): Promise<void> {
  for (const { variable, host, port } of ports) {
    // 0: the OS picks a free one
    if (port === 0) continue;
    const problem = await portProblem(host, port);
    if (!problem) continue;
    throw new StartupError(
      problem === 'EADDRINUSE'
        ? `port ${port} on ${host} (${variable}) is already in use`
        : `cannot listen on ${host}:${port} (${variable}): ${problem}`,
      problem === 'EADDRINUSE'
        ? `stop what listens there (another npm start?), or set ${variable} to a free port`
        : `set ${variable} to another port (or WARDEN_HOST to an address of this machine)`,
    );
  }
}

function splitAddress(address: string): [string, number] {
  const index = address.lastIndexOf(':');
  return [address.slice(0, index), Number(address.slice(index + 1))];
}

void main();
