import pino, { type DestinationStream, type Logger } from 'pino';
import { recentLogs } from './recentLogs';

export type { Logger };

/**
 * Field names that may carry a secret or credential. The logger censors them wherever they
 * appear (top level and two levels down), so redaction is configuration, not discipline.
 */
const SECRET_KEYS = [
  'otp',
  'token',
  'secret',
  'password',
  'pepper',
  'sealed',
  'candidate',
  'authorization',
  'cookie',
  'apiKey',
  'authToken',
  'signingSecret',
  'botToken',
  'link',
  'body',
];

export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-slack-signature"]',
  'req.query.token',
];

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** where lines go; defaults to stdout. Tests pass a collector to scan every line. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'warden',
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // a copy of every (redacted) line for the process's own leak scan (telemetry/recentLogs.ts)
      hooks: {
        streamWrite(line) {
          recentLogs.push(line);
          return line;
        },
      },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
