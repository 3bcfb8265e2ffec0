import type { Registry } from 'prom-client';
import type { Config } from './config';
import { Database } from './db/database';
import { createProviders, type Providers } from './providers';
import { createLogger, type Logger } from './telemetry/logger';
import { openIncidentsProbe, taskQueueProbe } from './telemetry/collectors';
import {
  createMetrics,
  createRegistry,
  registerIncidentMetrics,
  registerPoolMetrics,
  registerTaskQueueMetrics,
  type Metrics,
} from './telemetry/metrics';
import { connectTemporal, type TemporalClient } from './temporal/client';

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
  temporal: TemporalClient;
  providers: Providers;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** the resolved database URL (DATABASE_URL or the embedded server's) */
  databaseUrl: string;
  logger?: Logger;
  registry?: Registry;
  applicationName?: string;
}

export async function createRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const registry = options.registry ?? createRegistry();
  const metrics = createMetrics(registry);
  const db = Database.fromConfig(options.databaseUrl, config, options.applicationName);
  registerPoolMetrics(registry, () => db.stats());
  let temporal: TemporalClient;
  try {
    temporal = await connectTemporal(config);
  } catch (err) {
    await db.close();
    throw err;
  }
  // read at scrape time: the task-queue backlog from Temporal, open incidents from Postgres
  registerTaskQueueMetrics(registry, taskQueueProbe(temporal.connection, config));
  registerIncidentMetrics(registry, openIncidentsProbe(db));
  const providers = createProviders(config, logger);
  return {
    config,
    logger,
    registry,
    metrics,
    db,
    temporal,
    providers,
    async close() {
      await providers.close().catch(() => {});
      await temporal.close().catch(() => {});
      await db.close().catch(() => {});
    },
  };
}
