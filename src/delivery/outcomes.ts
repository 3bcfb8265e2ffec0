/**
 * A send's outcome on the challenge row (delivery_provider, delivery_outcome, delivery_status
 * delivered/failed; never the lifecycle `status`, which is the workflow's) and, when it failed,
 * in `delivery_failures` (one row per challenge: the responders' resend query reads it).
 * Idempotent: the failure counts are recomputed from the ledger, and an older send's outcome never
 * overwrites a newer one's.
 */
import { insertAudit, logAudit } from '../auth/audit';
import type { Queryable } from '../db/database';
import type { Channel, ProviderName } from '../providers/types';
import type { Runtime } from '../runtime';
import { challengeWorkflowId, type AuthMethod } from '../shared/auth';
import type { ErrorClass, RecordDeliveryInput } from '../shared/delivery';
import { DeliveryAuditEvent } from './events';
import { challengeFailures } from './ledger';
import { METHOD_CHANNEL } from './routes';

interface ChallengeFacts {
  user_id: string;
  method: AuthMethod;
  phone: string | null;
  email: string | null;
}

/** Upserts the challenge's failure row; a new failure re-opens it, a resend already made stays recorded. */
export async function upsertFailure(
  tx: Queryable,
  input: {
    challengeId: string;
    sendNumber: number;
    provider: ProviderName;
    errorClass: ErrorClass;
    errorCode?: string;
  },
): Promise<{ channel: Channel; userId: string; method: AuthMethod } | undefined> {
  const { rows } = await tx.query<ChallengeFacts>(
    `SELECT c.user_id, c.method, u.phone, u.email FROM auth_challenges c LEFT JOIN users u ON u.sub = c.user_id AND u.disabled_at IS NULL WHERE c.id = $1`,
    [input.challengeId],
  );
  const facts = rows[0];
  if (!facts) return undefined;
  const channel = METHOD_CHANNEL[facts.method];
  const { failedCalls, lastAttemptAt } = await challengeFailures(tx, input.challengeId);
  await tx.query(
    `INSERT INTO delivery_failures AS f (challenge_id, user_id, channel, provider, phone_number, email, error_class, error_code,
                                         failed_attempts, send_number, first_failed_at, last_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, GREATEST($9, 1), $10, now(), COALESCE($11, now()))
     ON CONFLICT (challenge_id) DO UPDATE
        SET provider = EXCLUDED.provider, error_class = EXCLUDED.error_class, error_code = EXCLUDED.error_code,
            failed_attempts = GREATEST(f.failed_attempts, EXCLUDED.failed_attempts),
            send_number = GREATEST(f.send_number, EXCLUDED.send_number),
            last_attempt_at = GREATEST(f.last_attempt_at, EXCLUDED.last_attempt_at), resolved_at = NULL`,
    [
      input.challengeId,
      facts.user_id,
      channel,
      input.provider,
      channel === 'sms' ? facts.phone : null,
      channel === 'email' ? facts.email : null,
      input.errorClass,
      input.errorCode ?? null,
      failedCalls,
      input.sendNumber,
      lastAttemptAt,
    ],
  );
  return { channel, userId: facts.user_id, method: facts.method };
}

/** A later send (or a delivery report) reached the user: nothing is left to resend. */
export async function resolveFailure(tx: Queryable, challengeId: string): Promise<void> {
  await tx.query('UPDATE delivery_failures SET resolved_at = now() WHERE challenge_id = $1 AND resolved_at IS NULL', [
    challengeId,
  ]);
}

async function reportedFailed(
  tx: Queryable,
  challengeId: string,
  sendNumber: number,
  provider: ProviderName,
): Promise<boolean> {
  const { rows } = await tx.query<{ report_outcome: string | null }>(
    // FOR UPDATE: a report being applied right now (applyReport locks this row first, then the
    // challenge) is waited for, so its failure is seen here and not overwritten by "delivered"
    'SELECT report_outcome FROM delivery_attempts WHERE challenge_id = $1 AND send_number = $2 AND provider = $3 FOR UPDATE',
    [challengeId, sendNumber, provider],
  );
  return rows[0]?.report_outcome === 'failed';
}

/**
 * A send that a provider took, on the row: sends, provider, outcome `sent` / `failed_over`,
 * delivered, the challenge's failure row resolved. Inside the caller's transaction (the
 * send activity records it with the provider call's own bookkeeping).
 */
export async function recordSentOutcome(
  tx: Queryable,
  input: { challengeId: string; sendNumber: number; provider: ProviderName; outcome: 'sent' | 'failed_over' },
): Promise<void> {
  const { challengeId, sendNumber, provider, outcome } = input;
  if (await reportedFailed(tx, challengeId, sendNumber, provider)) {
    // the provider's failure report arrived first and recorded the failure: keep it
    await tx.query('UPDATE auth_challenges SET sends = GREATEST(sends, $2), delivery_provider = $3 WHERE id = $1', [
      challengeId,
      sendNumber,
      provider,
    ]);
    return;
  }
  const { rows } = await tx.query<{ id: string }>(
    `UPDATE auth_challenges
        SET sends = GREATEST(sends, $2), delivery_provider = $3, delivery_outcome = $4,
            delivery_error_class = NULL, delivery_status = 'delivered'
      WHERE id = $1 AND sends <= $2
      RETURNING id`,
    [challengeId, sendNumber, provider, outcome],
  );
  if (rows[0]) await resolveFailure(tx, challengeId);
}

/** A send no provider took: failed, no recipient (the decoy), or skipped (the challenge ended first). */
export async function recordDeliveryOutcome(
  runtime: Pick<Runtime, 'db' | 'logger'>,
  input: RecordDeliveryInput,
): Promise<void> {
  const { challengeId, sendNumber, outcome } = input;
  // a decoy looks delivered unless no provider of its channel would have taken a message
  const status = outcome === 'failed' || (outcome === 'no_recipient' && input.channelDown) ? 'failed' : 'delivered';
  if (outcome === 'skipped') {
    // never over an earlier send's real outcome
    await runtime.db.write(
      `UPDATE auth_challenges SET delivery_outcome = 'skipped' WHERE id = $1 AND delivery_outcome IS NULL`,
      [challengeId],
    );
    return;
  }
  const audit = await runtime.db.transaction(async (tx) => {
    const { rows } = await tx.query<{ id: string }>(
      `UPDATE auth_challenges
          SET sends = GREATEST(sends, $2), delivery_provider = COALESCE($3, delivery_provider), delivery_outcome = $4,
              delivery_error_class = $5, delivery_status = $6
        WHERE id = $1 AND sends <= $2
        RETURNING id`,
      [challengeId, sendNumber, input.provider ?? null, outcome, input.errorClass ?? null, status],
    );
    if (!rows[0] || outcome !== 'failed' || !input.provider) return undefined;
    const failure = await upsertFailure(tx, {
      challengeId,
      sendNumber,
      provider: input.provider,
      errorClass: input.errorClass ?? 'transient',
      errorCode: input.errorCode,
    });
    if (!failure) return undefined;
    return insertAudit(tx, {
      type: DeliveryAuditEvent.failed,
      outcome: input.errorClass ?? 'transient',
      challengeId,
      userId: failure.userId,
      method: failure.method,
      details: {
        channel: failure.channel,
        provider: input.provider,
        error_code: input.errorCode ?? null,
        send: sendNumber,
      },
      dedupeKey: `${challengeWorkflowId(challengeId)}/send-${sendNumber}/failed`,
    });
  });
  if (audit) {
    logAudit(runtime.logger.child({ component: 'audit' }), audit);
    const why =
      input.errorClass === 'permanent'
        ? `${input.provider} refused the message (no failover)`
        : 'no provider took the message';
    runtime.logger.child({ component: 'delivery' }).warn(
      {
        challengeId,
        send: sendNumber,
        provider: input.provider,
        errorClass: input.errorClass,
        errorCode: input.errorCode,
      },
      `failed to send: ${why}`,
    );
  }
}
