import type { Registry } from 'prom-client';
import { DataKeyStore } from './auth/keys';
import { SettingsCache } from './auth/settings';
import { TokenKeyStore } from './auth/tokenKeys';
import type { Config } from './config';
import { loadKeyring } from './crypto/keyring';
import { Database } from './db/database';
import { readDatabaseControl } from './db/failoverControl';
import { parseEndpoints } from './db/topology';
import { TopologyWatcher } from './db/topologyWatcher';
import { RouteCache } from './delivery/routes';
import { pseudonymizingLogger } from './privacy/pseudonyms';
import { SubjectKeyStore } from './privacy/subjectKeys';
import { createProviders, type Providers } from './providers';
import { createLogger, type Logger } from './telemetry/logger';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { circuitProbe, openIncidentsProbe, taskQueueProbe } from './telemetry/collectors';
import {
  createMetrics,
  createRegistry,
  registerCircuitMetrics,
  registerDatabaseTopologyMetrics,
  registerIncidentMetrics,
  registerPoolMetrics,
  registerTaskQueueMetrics,
  type Metrics,
} from './telemetry/metrics';
import { registerSmsPumpingMetrics, smsPumpingProbe } from './telemetry/smsPumpingMetrics';
import { createTracing, type Tracing } from './telemetry/tracing';
import { connectTemporal, type TemporalClient } from './temporal/client';

/** How stale a process's copy of keys, settings and routes may be: every process sees a change within 5 s. */
export const MAX_STALENESS_MS = 5000;

/**
 * Everything a Warden process holds open, built once and handed to the API and the worker.
 * `close()` releases it all, in reverse order of acquisition.
 */
export interface Runtime {
  config: Config;
  logger: Logger;
  registry: Registry;
  metrics: Metrics;
  db: Database;
  /** keeps `db` on the primary (or a standby, read-only) and applies the database control plane */
  topology: TopologyWatcher;
  temporal: TemporalClient;
  providers: Providers;
  /**
   * The caches of data keys, runtime settings and delivery routes. One per process, shared by
   * its API and its worker, so a change made through this process is seen by it at once.
   */
  keys: DataKeyStore;
  /** the keys that sign the tokens issued to apps (and the JWKS), cached like `keys` */
  tokenKeys: TokenKeyStore;
  settings: SettingsCache;
  routes: RouteCache;
  /** the per-user payload keys (src/privacy/subjectKeys.ts), cached like `keys` */
  subjectKeys: SubjectKeyStore;
  /** OpenTelemetry tracing; undefined (and free) unless OTEL_EXPORTER_OTLP_ENDPOINT is set */
  tracing?: Tracing;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** the resolved database URL (DATABASE_URL or the embedded server's) */
  databaseUrl: string;
  logger?: Logger;
  registry?: Registry;
  applicationName?: string;
  /** export spans here instead of OTLP (tests use an in-memory exporter); turns tracing on */
  spanExporter?: SpanExporter;
}

export async function createRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  // first, so a missing keyring stops the process before it opens anything
  const kek = loadKeyring(
    { inline: config.keys.keyring, file: config.keys.keyringFile },
    'keyring',
    'WARDEN_KEYRING or WARDEN_KEYRING_FILE is required: it wraps the OTP peppers and seal keys and the token signing keys',
  );
  // every line the process logs names users by a pseudonym, never their id (docs/privacy.md)
  const logger = pseudonymizingLogger(options.logger ?? createLogger({ level: config.logLevel }), kek);
  const registry = options.registry ?? createRegistry();
  const metrics = createMetrics(registry);
  const db = Database.fromConfig(options.databaseUrl, config, options.applicationName);
  registerPoolMetrics(registry, () => db.stats());
  const tracing = createTracing(config, { exporter: options.spanExporter });
  const subjectKeys = new SubjectKeyStore(db, kek);
  let temporal: TemporalClient;
  try {
    temporal = await connectTemporal(config, { tracing, subjectKeys });
  } catch (err) {
    await db.close();
    await tracing?.shutdown();
    throw err;
  }
  // read at scrape time: the task-queue backlog from Temporal, open incidents from Postgres
  registerTaskQueueMetrics(registry, taskQueueProbe(temporal.connection, config));
  registerIncidentMetrics(registry, openIncidentsProbe(db));
  registerCircuitMetrics(registry, circuitProbe(db));
  registerSmsPumpingMetrics(registry, smsPumpingProbe(db));
  const providers = createProviders(config, logger);
  const topology = new TopologyWatcher(db, {
    endpoints: parseEndpoints([options.databaseUrl, ...config.database.candidates]),
    intervalMs: config.database.watchIntervalMs,
    defaults: { max: config.database.poolMax, maxIdle: config.database.poolMaxIdle },
    readControl: () => readDatabaseControl({ client: temporal.client, taskQueue: config.temporal.taskQueue }),
    logger: logger.child({ component: 'db-topology' }),
    applicationName: options.applicationName ?? 'warden',
    onSwitch: (from, to) => metrics.dbEndpointSwitches.inc({ from, to }),
  });
  registerDatabaseTopologyMetrics(registry, () => topology.snapshot());
  topology.start();
  const authLog = logger.child({ component: 'auth' });
  const warn = (message: string, fields: Record<string, unknown>) => authLog.warn(fields, message);
  const keys = new DataKeyStore(db, kek, MAX_STALENESS_MS, {
    warn,
    info: (message, fields) => authLog.info(fields, message),
  });
  const tokenKeys = new TokenKeyStore(db, kek, {
    issuer: config.issuer,
    maxStalenessMs: MAX_STALENESS_MS,
    log: { warn, info: (message, fields) => authLog.info(fields, message) },
  });
  return {
    config,
    logger,
    registry,
    metrics,
    db,
    topology,
    temporal,
    providers,
    keys,
    tokenKeys,
    settings: new SettingsCache(db, MAX_STALENESS_MS, warn),
    routes: new RouteCache(db, MAX_STALENESS_MS),
    subjectKeys,
    tracing,
    async close() {
      await topology.stop().catch(() => {});
      await providers.close().catch(() => {});
      await temporal.close().catch(() => {});
      await db.close().catch(() => {});
      // last, so the spans of everything above are flushed
      await tracing?.shutdown().catch(() => {});
    },
  };
}
