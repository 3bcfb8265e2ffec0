import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../telemetry/logger';

let sink: Logger | undefined;
let installed = false;

const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Routes the Temporal SDK's own log lines (worker, workflow and activity loggers) into our
 * pino logger, so they pass the same redaction and the same leak scans as everything else.
 * The SDK runtime is process-wide and installable once; later calls only move the sink.
 */
export function installTemporalLogging(logger: Logger, level: LogLevel = 'WARN'): void {
  sink = logger.child({ component: 'temporal' });
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      sink?.[levels[entry.level]]({ meta: entry.meta }, entry.message);
    }),
  });
}
