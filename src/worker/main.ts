/**
 * Production worker entry: `node dist/src/worker/main.js` (or tsx). Needs DATABASE_URL and a
 * running Temporal; the dev stack (`npm start`) runs the worker in-process instead.
 */
import { buildMetricsApp } from '../api/app';
import { ensureCanarySchedule } from '../canary/schedule';
import { loadConfig } from '../config';
import { assertStartable, providerModes } from '../config/production';
import { migrate } from '../db/migrate';
import { ensureRetentionSchedule } from '../retention/schedule';
import { ensureSmsPumpingSchedule } from '../delivery/pumpingSchedule';
import { createRuntime } from '../runtime';
import { opsTaskQueue } from '../shared/taskQueues';
import { installTemporalLogging } from '../temporal/logging';
import { SEARCH_ATTRIBUTES } from '../shared/searchAttributes';
import { temporalTransport } from '../temporal/connectionOptions';
import { ensureSearchAttributes } from '../temporal/searchAttributes';
import { createLogger } from '../telemetry/logger';
import { startWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  // production refuses to run on the sandbox or with development conveniences: before anything starts
  assertStartable(config);
  const logger = createLogger({ level: config.logLevel, name: 'warden-worker' });
  if (!config.database.url) throw new Error('DATABASE_URL is required for a standalone worker');
  logger.info({ env: config.env, providers: providerModes(config) }, 'providers');
  installTemporalLogging(logger);
  // every process applies pending migrations at start, under node-pg-migrate's advisory lock
  await migrate(config.database.url, (line) => logger.warn(line));
  const runtime = await createRuntime(config, {
    databaseUrl: config.database.url,
    logger,
    applicationName: 'warden-worker',
  });
  const added = await ensureSearchAttributes(runtime.temporal.connection, config.temporal.namespace);
  if (added === undefined)
    logger.warn(
      { required: SEARCH_ATTRIBUTES.map((key) => `${key.name}:${key.type}`) },
      "cannot list the namespace's search attributes with this credential: make sure they are registered",
    );
  else if (added.length) logger.info({ added }, 'search attributes registered');
  const handle = await startWorker(runtime, { workflowBundlePath: process.env.WARDEN_WORKFLOW_BUNDLE });
  // the delivery canary (WARDEN_CANARY_USER): its schedule exists once any worker has started
  if ((await ensureCanarySchedule(runtime)) === 'off') logger.info('delivery canary off: WARDEN_CANARY_USER is unset');
  // retention (docs/operations.md#retention): its schedule exists once any worker has started
  await ensureRetentionSchedule(runtime);
  // SMS pumping (docs/delivery.md#sms-pumping): its schedule exists once any worker has started
  await ensureSmsPumpingSchedule(runtime);
  // the worker's own metrics (deliveries, activities) on the metrics port
  const metrics = await buildMetricsApp(runtime);
  await metrics.listen({ host: config.host, port: config.ports.metrics });
  const taskQueue = config.temporal.taskQueue;
  logger.info(
    { taskQueue, opsTaskQueue: opsTaskQueue(taskQueue), temporal: temporalTransport(config.temporal) },
    'worker started',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'worker shutting down');
    await handle.shutdown();
    await metrics.close();
    await runtime.close();
    logger.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  await handle.running;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
