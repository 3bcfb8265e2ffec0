/** Production API entry: public, admin and metrics servers. Needs DATABASE_URL and Temporal. */
import { loadConfig } from '../config';
import { assertStartable, providerModes } from '../config/production';
import { migrate } from '../db/migrate';
import { createRuntime } from '../runtime';
import { temporalTransport } from '../temporal/connectionOptions';
import { createLogger } from '../telemetry/logger';
import { startApiServers } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  // production refuses to run on the sandbox or with development conveniences: before anything starts
  assertStartable(config);
  const logger = createLogger({ level: config.logLevel, name: 'warden-api' });
  if (!config.database.url) throw new Error('DATABASE_URL is required for a standalone API');
  logger.info({ env: config.env, providers: providerModes(config) }, 'providers');
  // every process applies pending migrations at start, under node-pg-migrate's advisory lock
  await migrate(config.database.url, (line) => logger.warn(line));
  const runtime = await createRuntime(config, {
    databaseUrl: config.database.url,
    logger,
    applicationName: 'warden-api',
  });
  const servers = await startApiServers(runtime);
  logger.info({ urls: servers.urls, temporal: temporalTransport(config.temporal) }, 'api listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'api shutting down');
    await servers.close();
    await runtime.close();
    logger.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
