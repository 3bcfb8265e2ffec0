import { randomBytes } from 'node:crypto';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { temporal as proto } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { inject } from 'vitest';
import { buildAdminApp, buildPublicApp, type WardenApp } from '../../src/api/app';
import { startApiServers, type ApiServers } from '../../src/api/server';
import { loadConfig, type Config } from '../../src/config';
import { migrate } from '../../src/db/migrate';
import { DEV_APP_ID, seedDevApp, seedUsers } from '../../src/db/seed';
import { createRuntime, type Runtime } from '../../src/runtime';
import { SEARCH_ATTRIBUTES } from '../../src/shared/searchAttributes';
import { startSandbox } from '../../src/sandbox/server';
import { createLogger } from '../../src/telemetry/logger';
import { generatePayloadKeyring } from '../../src/temporal/codec';
import { installTemporalLogging } from '../../src/temporal/logging';
import { startWorker, type WorkerHandle } from '../../src/worker/worker';
import { LogCollector } from './logs';

export interface HarnessOptions {
  /** extra environment for loadConfig (overrides the harness defaults) */
  env?: Record<string, string>;
  /** start an in-process worker (default true); false when a test spawns its own worker process */
  worker?: boolean;
  /** also listen on real ports (port 0) for HTTP clients; apps are always injectable */
  listen?: boolean;
  /** turn tracing on and export every span here (an in-memory exporter) */
  spanExporter?: SpanExporter;
  /** a workflow bundle of the test's own (e.g. built with the tracing interceptors) */
  workflowBundlePath?: string;
  /**
   * run on a time-skipping test server of the file's own instead of the shared dev server:
   * runtime, worker and apps all talk to it, and `h.testEnv.sleep()` skips hours in moments
   */
  timeSkipping?: boolean;
  /**
   * use this existing database (e.g. on a test's own primary/replica cluster) instead of a fresh
   * one on the run's server: it is migrated and seeded here, and left in place at close
   */
  databaseUrl?: string;
  /**
   * use this Temporal server (e.g. a dev server the test starts, stops and restarts itself)
   * instead of the run's shared one; ignored with `timeSkipping`
   */
  temporalAddress?: string;
}

export interface Harness {
  config: Config;
  /** the environment the config was loaded from: pass it to a spawned worker process */
  env: Record<string, string>;
  databaseUrl: string;
  runtime: Runtime;
  logs: LogCollector;
  sandbox: Awaited<ReturnType<typeof startSandbox>>;
  worker?: WorkerHandle;
  public: WardenApp;
  admin: WardenApp;
  servers?: ApiServers;
  adminHeaders: { authorization: string };
  /** the time-skipping environment (with `timeSkipping: true`) */
  testEnv?: TestWorkflowEnvironment;
  /** a fresh client to the harness's own database */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

function randomName(prefix: string): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

/** Creates an empty database on the test server, migrated and seeded. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = inject('pgAdminUrl');
  const name = randomName('warden_t_');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await migrate(url.toString());
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      await c.end();
    },
  };
}

const CLEANUP_LIMIT_MS = 60_000;

/**
 * One step of a harness's teardown, bounded: a step that hangs is named on stderr and left
 * behind, so the rest still runs and the file's afterAll ends with a cause instead of a timeout.
 */
async function boundedCleanup(name: string, run: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), CLEANUP_LIMIT_MS);
  });
  const outcome = await Promise.race([
    run().then(
      () => 'done' as const,
      () => 'failed' as const,
    ),
    limit,
  ]);
  clearTimeout(timer);
  if (outcome === 'hung') console.error(`harness teardown: "${name}" did not finish in ${CLEANUP_LIMIT_MS} ms`);
}

/**
 * One Warden, fully wired, per test file: its own database, sandbox, task queue and worker,
 * on the run's shared Temporal dev server. Nothing of Warden's own is mocked.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const cleanups: Array<[name: string, run: () => Promise<void>]> = [];
  const close = async () => {
    for (const [name, run] of cleanups.reverse()) await boundedCleanup(name, run);
  };
  try {
    const logs = new LogCollector();
    const logger = createLogger({ level: 'info', destination: logs });
    installTemporalLogging(logger);

    let database: { url: string };
    if (options.databaseUrl) {
      database = { url: options.databaseUrl };
      await migrate(options.databaseUrl);
    } else {
      const created = await createTestDatabase();
      cleanups.push(['drop database', () => created.drop()]);
      database = created;
    }
    const sandbox = await startSandbox({ port: 0, logger: logger.child({ component: 'sandbox' }) });
    cleanups.push(['sandbox', () => sandbox.close()]);

    let testEnv: TestWorkflowEnvironment | undefined;
    if (options.timeSkipping) {
      const started = await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: inject('temporalTestServer') } },
      });
      testEnv = started;
      cleanups.push(['time-skipping server', () => started.teardown()]);
      // the test server takes AddSearchAttributes (not the List call ensureSearchAttributes makes)
      await started.connection.operatorService.addSearchAttributes({
        namespace: 'default',
        searchAttributes: Object.fromEntries(
          SEARCH_ATTRIBUTES.map((key) => [
            key.name,
            proto.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`],
          ]),
        ),
      });
    }

    const env: Record<string, string> = {
      DATABASE_URL: database.url,
      TEMPORAL_ADDRESS: testEnv?.address ?? options.temporalAddress ?? inject('temporalAddress'),
      TEMPORAL_CLI: inject('temporalCli'),
      WARDEN_TASK_QUEUE: randomName('test-'),
      WARDEN_SANDBOX_URL: sandbox.url,
      WARDEN_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
      WARDEN_PAYLOAD_KEYS: generatePayloadKeyring(),
      WARDEN_KEYRING: generatePayloadKeyring(),
      // the provider sandbox stands in for every provider
      WARDEN_ENV: 'development',
      SLACK_SIGNING_SECRET: randomBytes(16).toString('hex'),
      // the sandbox's workspace (src/sandbox/routes/slack.ts)
      SLACK_TEAM_ID: 'T0SANDBOX',
      // without a listening public port the sandbox's receipts never arrive: no receipt watch
      // unless a test asks for one (receipt-failover.test.ts)
      ...(options.listen ? {} : { WARDEN_RECEIPT_DEADLINE_SMS_MS: '0', WARDEN_RECEIPT_DEADLINE_EMAIL_MS: '0' }),
      WARDEN_PUBLIC_PORT: '0',
      WARDEN_ADMIN_PORT: '0',
      WARDEN_METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      // the development app (seeded below), as `npm start` has it
      WARDEN_DEFAULT_APP: DEV_APP_ID,
      // bursts of a few dozen concurrent requests are part of many tests: admission control
      // (docs/scaling.md#load-shedding) sized for them, instead of for this machine's bcrypt
      WARDEN_ADMISSION_CONCURRENCY: '64',
      // tests sign the seeded users in and send them wrong codes far more often than anyone
      // would; the budgets' own tests (auth-budgets.test.ts) set theirs
      WARDEN_DESTINATION_MAX_PER_HOUR: '1000000',
      WARDEN_DESTINATION_MAX_PER_DAY: '1000000',
      WARDEN_GUESS_MAX_PER_DAY: '1000000',
      WARDEN_GUESS_FREE_FAILURES: '1000000',
      ...options.env,
    };
    const config = loadConfig(env);
    const runtime = await createRuntime(config, {
      databaseUrl: database.url,
      logger,
      applicationName: 'warden-test',
      spanExporter: options.spanExporter,
    });
    cleanups.push(['runtime', () => runtime.close()]);
    await seedUsers(runtime.db);
    await seedDevApp(runtime.db);

    let worker: WorkerHandle | undefined;
    if (options.worker ?? true) {
      const handle = await startWorker(runtime, {
        workflowBundlePath: options.workflowBundlePath ?? inject('workflowBundlePath'),
      });
      worker = handle;
      cleanups.push(['worker', () => handle.shutdown()]);
    }

    const publicApp = await buildPublicApp(runtime);
    cleanups.push(['public app', () => publicApp.close()]);
    const adminApp = await buildAdminApp(runtime);
    cleanups.push(['admin app', () => adminApp.close()]);
    let servers: ApiServers | undefined;
    if (options.listen) {
      const started = await startApiServers(runtime);
      servers = started;
      cleanups.push(['api servers', () => started.close()]);
    }

    return {
      config,
      env,
      databaseUrl: database.url,
      runtime,
      logs,
      sandbox,
      worker,
      public: publicApp,
      admin: adminApp,
      servers,
      adminHeaders: { authorization: `Bearer ${config.adminToken}` },
      testEnv,
      async sql<R extends pg.QueryResultRow>(text: string, values?: unknown[]) {
        return (await runtime.db.query<R>(text, values)).rows;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
