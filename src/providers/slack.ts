import {
  LogLevel,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  type Logger as SlackLogger,
} from '@slack/web-api';
import type { Logger } from '../telemetry/logger';
import { httpError, networkError, ProviderError, ProviderPermanentError, ProviderTransientError } from './errors';

/** @slack/web-api logs through this; it only has anything useful to say at warn and above. */
export function slackLogger(logger: Logger): SlackLogger {
  const child = logger.child({ component: 'slack-sdk' });
  let level = LogLevel.WARN;
  const line = (parts: unknown[]) => parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
  return {
    debug: () => {},
    info: () => {},
    warn: (...parts: unknown[]) => child.warn(line(parts)),
    error: (...parts: unknown[]) => child.error(line(parts)),
    setLevel: (next) => {
      level = next;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

/** Slack platform errors that a later retry can fix; every other `ok: false` is permanent. */
const TRANSIENT_PLATFORM_ERRORS = new Set([
  'ratelimited',
  'service_unavailable',
  'fatal_error',
  'internal_error',
  'request_timeout',
]);

/**
 * Turns whatever a WebClient call threw into the same ProviderError taxonomy as the senders,
 * so Slack activities can list ProviderPermanentError as non-retryable too.
 */
export function slackError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof WebAPIRateLimitedError) {
    return new ProviderTransientError({
      provider: 'slack',
      status: 429,
      reason: 'rate limited',
      retryAfterMs: err.retryAfter * 1000,
    });
  }
  if (err instanceof WebAPIPlatformError) {
    const code = typeof err.data.error === 'string' ? err.data.error : 'unknown_error';
    const init = { provider: 'slack' as const, providerCode: code, reason: 'Slack refused the call' };
    return TRANSIENT_PLATFORM_ERRORS.has(code) ? new ProviderTransientError(init) : new ProviderPermanentError(init);
  }
  if (err instanceof WebAPIHTTPError)
    return httpError({ provider: 'slack', status: err.statusCode, reason: err.statusMessage || 'request failed' });
  // WebAPIRequestError (and anything else): no answer; `original` is the fetch error
  const original = typeof err === 'object' && err !== null ? (err as { original?: unknown }).original : undefined;
  return networkError('slack', original ?? err);
}
