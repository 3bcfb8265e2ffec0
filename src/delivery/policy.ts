/**
 * What happens after one failed provider call. Pure, so the whole policy is one unit test.
 *
 * Retries live in Temporal's activity retry policy: the send activity makes one provider call
 * per attempt and, on a transient failure, throws a retryable ApplicationFailure whose
 * nextRetryDelay carries the provider's Retry-After. The activity decides *whether* to retry
 * from the ledger's durable call count (so a worker crash does not reset the budget); the
 * workflow decides *where next* (the backup) once the activity gives up on a provider.
 *
 * The numbers: three calls per provider with Temporal's backoff of 250 ms then 500 ms, so a
 * provider answering 503 to everything is left after ~0.8 s plus three activity round trips
 * (tens of ms each), and the backup's first call goes out well inside 5 s of initiate. A
 * timeout is not retried on the same provider: it already cost WARDEN_PROVIDER_TIMEOUT_MS and
 * may have been sent, so the backup gets the next chance. A Retry-After longer than
 * RETRY_AFTER_CAP_MS also fails over at once rather than keep a user waiting for the primary.
 */
import type { ProviderError } from '../providers';

export const MAX_CALLS_PER_PROVIDER = 3;
export const RETRY_AFTER_CAP_MS = 3_000;
/** the retry policy's own backoff (mirrored in the workflow's options constant) */
export const RETRY_INITIAL_MS = 250;

export type SendDecision =
  /** call the same provider again, after `delayMs` when the provider said when */
  | { action: 'retry'; delayMs?: number }
  /** this provider is done for this send: the workflow moves to the next one */
  | { action: 'failover'; reason: 'retries_exhausted' | 'timeout' | 'throttled' }
  /** the message itself is refused: no retry anywhere */
  | { action: 'fail' };

export function decide(
  err: Pick<ProviderError, 'kind' | 'providerCode' | 'retryAfterMs'>,
  callsMade: number,
  maxCalls: number,
): SendDecision {
  if (err.kind === 'permanent') return { action: 'fail' };
  if (err.providerCode === 'TIMEOUT') return { action: 'failover', reason: 'timeout' };
  if (err.retryAfterMs !== undefined && err.retryAfterMs > RETRY_AFTER_CAP_MS)
    return { action: 'failover', reason: 'throttled' };
  if (callsMade >= maxCalls) return { action: 'failover', reason: 'retries_exhausted' };
  return err.retryAfterMs !== undefined
    ? { action: 'retry', delayMs: Math.max(err.retryAfterMs, RETRY_INITIAL_MS) }
    : { action: 'retry' };
}

/** A short, stable code for rows and metrics: the provider's code, else the HTTP status. */
export function errorCode(err: Pick<ProviderError, 'providerCode' | 'status'>): string | undefined {
  if (err.providerCode !== undefined) return String(err.providerCode).slice(0, 64);
  return err.status !== undefined ? String(err.status) : undefined;
}
