/**
 * `delivery_attempts`: one row per (idempotency key, provider), i.e. per logical send and
 * provider. The row is marked `sending` (committed) before the provider is called and `sent` or
 * `failed` right after, so a retry can tell a send that completed (never repeated) from one
 * whose outcome was lost with its worker (repeated with the same key).
 */
import type { Queryable } from '../db/database';
import type { Channel, ProviderName } from '../providers/types';
import type { ErrorClass } from '../shared/delivery';

export interface LedgerKey {
  key: string;
  provider: ProviderName;
}

/** The provider that already took this send, if any: a completed send is never repeated. */
export async function sentBy(q: Queryable, key: string): Promise<ProviderName | undefined> {
  const { rows } = await q.query<{ provider: ProviderName }>(
    `SELECT provider FROM delivery_attempts WHERE idempotency_key = $1 AND status = 'sent' ORDER BY completed_at LIMIT 1`,
    [key],
  );
  return rows[0]?.provider;
}

/**
 * Another provider's call for this send whose outcome was never recorded (`sending`): the
 * provider may have taken the message (the worker died mid-call, or the database went away
 * after the provider answered).
 */
export async function unresolvedCall(
  q: Queryable,
  key: string,
  except: ProviderName,
): Promise<ProviderName | undefined> {
  const { rows } = await q.query<{ provider: ProviderName }>(
    `SELECT provider FROM delivery_attempts WHERE idempotency_key = $1 AND provider <> $2 AND status = 'sending' ORDER BY last_attempt_at LIMIT 1`,
    [key, except],
  );
  return rows[0]?.provider;
}

/**
 * Marks a provider call as started and answers how many calls this send has made on this
 * provider, this one included; `undefined` when the row says it was sent meanwhile.
 */
export async function beginCall(
  q: Queryable,
  input: LedgerKey & { challengeId: string; sendNumber: number; channel: Channel },
): Promise<{ calls: number; previous: 'new' | 'sending' | 'failed' } | undefined> {
  const { rows } = await q.query<{ calls: number; previous: 'new' | 'sending' | 'failed' }>(
    `WITH before AS (SELECT status FROM delivery_attempts WHERE idempotency_key = $1 AND provider = $2)
     INSERT INTO delivery_attempts AS a (idempotency_key, provider, challenge_id, send_number, channel, status, attempts)
     VALUES ($1, $2, $3, $4, $5, 'sending', 1)
     ON CONFLICT (idempotency_key, provider) DO UPDATE
        SET status = 'sending', attempts = a.attempts + 1, last_attempt_at = now()
      WHERE a.status <> 'sent'
     RETURNING a.attempts AS calls, COALESCE((SELECT status FROM before), 'new') AS previous`,
    [input.key, input.provider, input.challengeId, input.sendNumber, input.channel],
  );
  return rows[0];
}

export async function callSucceeded(tx: Queryable, input: LedgerKey & { providerMessageId: string }): Promise<void> {
  await tx.query(
    `UPDATE delivery_attempts
        SET status = 'sent', provider_message_id = $3, error_class = NULL, error_code = NULL, completed_at = now()
      WHERE idempotency_key = $1 AND provider = $2`,
    [input.key, input.provider, input.providerMessageId],
  );
}

export async function callFailed(
  tx: Queryable,
  input: LedgerKey & { errorClass: ErrorClass; errorCode?: string },
): Promise<void> {
  await tx.query(
    `UPDATE delivery_attempts
        SET status = 'failed', failed_calls = failed_calls + 1, error_class = $3, error_code = $4, completed_at = now()
      WHERE idempotency_key = $1 AND provider = $2 AND status = 'sending'`,
    [input.key, input.provider, input.errorClass, input.errorCode ?? null],
  );
}

/** Failed provider calls and the last call's time over every send of a challenge (delivery_failures). */
export async function challengeFailures(
  q: Queryable,
  challengeId: string,
): Promise<{ failedCalls: number; lastAttemptAt: Date | null }> {
  const { rows } = await q.query<{ failed: number; last: Date | null }>(
    `SELECT COALESCE(sum(failed_calls), 0)::int AS failed, max(last_attempt_at) AS last FROM delivery_attempts WHERE challenge_id = $1`,
    [challengeId],
  );
  return { failedCalls: rows[0]?.failed ?? 0, lastAttemptAt: rows[0]?.last ?? null };
}
