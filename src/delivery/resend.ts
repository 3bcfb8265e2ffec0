/**
 * After an outage: the failures of a window (`SELECT user_id, phone_number, email,
 * failed_attempts, last_attempt_at FROM delivery_failures WHERE last_attempt_at BETWEEN ...`)
 * and their resend, each at most once, through the challenge's own workflow (which queues a
 * send with the next send number, so the ledger and the idempotency key stay per send).
 */
import { WorkflowNotFoundError } from '@temporalio/common';
import { insertAudit, logAudit } from '../auth/audit';
import type { Queryable } from '../db/database';
import type { Channel } from '../providers/types';
import type { Runtime } from '../runtime';
import { challengeWorkflowId } from '../shared/auth';
import { redeliverUpdate, type RedeliverResult } from '../shared/delivery';
import type { ActorContext } from './admin';
import { DeliveryAuditEvent } from './events';
import { ACTIVE_CHALLENGE_SQL as ACTIVE, ACTIVE_CHALLENGE_STATUSES } from '../auth/end';

export interface FailureWindow {
  /** ISO timestamps: activity inputs are JSON */
  since: string;
  until: string;
  channel?: Channel;
  /** only those that can still be resent: unresolved, not resent, challenge open and unexpired */
  resendableOnly?: boolean;
  limit?: number;
}

export interface DeliveryFailureRow {
  id: string;
  challenge_id: string | null;
  user_id: string;
  channel: Channel;
  provider: string;
  phone_number: string | null;
  email: string | null;
  error_class: string;
  error_code: string | null;
  failed_attempts: number;
  send_number: number | null;
  first_failed_at: string;
  last_attempt_at: string;
  resolved_at: string | null;
  resent_at: string | null;
  resend_outcome: string | null;
  resend_send_number: number | null;
  challenge_status: string | null;
  challenge_expires_at: string | null;
  resendable: boolean;
}

const isActive = (status: string) => (ACTIVE_CHALLENGE_STATUSES as readonly string[]).includes(status);
/** The listing's challenge status: how it ended, or while open, its delivery (pending, delivered, failed). */
const CHALLENGE_STATUS = `CASE WHEN c.${ACTIVE} THEN COALESCE(c.delivery_status, 'pending') ELSE c.status END`;
const RESENDABLE = `f.resolved_at IS NULL AND f.resent_at IS NULL AND c.${ACTIVE} AND c.expires_at > now()`;
const MAX_ROWS = 10_000;

export async function listDeliveryFailures(q: Queryable, window: FailureWindow): Promise<DeliveryFailureRow[]> {
  const limit = Math.min(Math.max(window.limit ?? 1000, 1), MAX_ROWS);
  const { rows } = await q.query<DeliveryFailureRow>(
    `SELECT f.id::text AS id, f.challenge_id, f.user_id, f.channel, f.provider, f.phone_number, f.email, f.error_class, f.error_code,
            f.failed_attempts, f.send_number, to_json(f.first_failed_at)#>>'{}' AS first_failed_at,
            to_json(f.last_attempt_at)#>>'{}' AS last_attempt_at, to_json(f.resolved_at)#>>'{}' AS resolved_at,
            to_json(f.resent_at)#>>'{}' AS resent_at, f.resend_outcome, f.resend_send_number,
            ${CHALLENGE_STATUS} AS challenge_status, to_json(c.expires_at)#>>'{}' AS challenge_expires_at,
            COALESCE(${RESENDABLE}, false) AS resendable
       FROM delivery_failures f LEFT JOIN auth_challenges c ON c.id = f.challenge_id
      WHERE f.last_attempt_at BETWEEN $1 AND $2 AND ($3::text IS NULL OR f.channel = $3)
        AND (NOT $4 OR COALESCE(${RESENDABLE}, false))
      ORDER BY f.last_attempt_at, f.id LIMIT $5`,
    [window.since, window.until, window.channel ?? null, window.resendableOnly ?? false, limit],
  );
  return rows;
}

export type ResendOutcome =
  | { outcome: 'queued'; sendNumber: number }
  /** resent before (by this call's earlier attempt or anyone): nothing new was sent */
  | { outcome: 'already_resent'; sendNumber: number | null; previous: string | null }
  /** a later send was queued meanwhile (a user resend): that one is the resend */
  | { outcome: 'superseded'; sendNumber: number }
  /** a later send reached the user: nothing to resend */
  | { outcome: 'resolved' }
  /** verified, expired, revoked or locked: a new code would be useless */
  | { outcome: 'challenge_ended'; status: string };

export class FailureNotFoundError extends Error {
  override name = 'FailureNotFoundError';
}

interface FailureState {
  challenge_id: string | null;
  user_id: string;
  send_number: number | null;
  resolved_at: Date | null;
  resent_at: Date | null;
  resend_send_number: number | null;
  resend_outcome: string | null;
  status: string | null;
  expired: boolean | null;
}

/**
 * Resends one failure. Exactly once: the update carries the failure id both as its Temporal
 * update id and in its input, so concurrent or retried calls reach one queued send, and the
 * row remembers the outcome so later calls answer `already_resent` without asking again.
 */
export async function resendFailedDelivery(
  runtime: Pick<Runtime, 'db' | 'logger' | 'temporal'>,
  failureId: string,
  ctx: ActorContext,
): Promise<ResendOutcome> {
  if (!/^\d{1,18}$/.test(failureId)) throw new FailureNotFoundError(`no delivery failure ${failureId}`);
  const { rows } = await runtime.db.query<FailureState>(
    `SELECT f.challenge_id, f.user_id, f.send_number, f.resolved_at, f.resent_at, f.resend_send_number, f.resend_outcome,
            c.status, c.expires_at <= now() AS expired
       FROM delivery_failures f LEFT JOIN auth_challenges c ON c.id = f.challenge_id WHERE f.id = $1`,
    [failureId],
  );
  const row = rows[0];
  if (!row) throw new FailureNotFoundError(`no delivery failure ${failureId}`);
  if (row.resent_at)
    return { outcome: 'already_resent', sendNumber: row.resend_send_number, previous: row.resend_outcome };
  if (row.resolved_at) return { outcome: 'resolved' };
  if (!row.challenge_id || !row.status || row.expired || !isActive(row.status)) {
    return {
      outcome: 'challenge_ended',
      status: row.expired && row.status && isActive(row.status) ? 'expired' : (row.status ?? 'unknown'),
    };
  }

  let result: RedeliverResult;
  try {
    const handle = runtime.temporal.client.workflow.getHandle(challengeWorkflowId(row.challenge_id));
    result = await handle.executeUpdate(redeliverUpdate, {
      args: [{ failureId, failedSendNumber: row.send_number ?? 1 }],
      updateId: `redeliver-${failureId}`,
    });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { outcome: 'challenge_ended', status: 'ended' };
    throw err;
  }
  if (result.outcome !== 'queued' && result.outcome !== 'superseded') {
    return { outcome: 'challenge_ended', status: result.outcome === 'already_used' ? 'verified' : result.outcome };
  }
  const outcome = { outcome: result.outcome, sendNumber: result.sendNumber } as const;
  const audit = await runtime.db.transaction(async (tx) => {
    const updated = await tx.query(
      `UPDATE delivery_failures SET resent_at = now(), resend_send_number = $2, resend_outcome = $3, resent_by = $4
        WHERE id = $1 AND resent_at IS NULL`,
      [failureId, outcome.sendNumber, outcome.outcome, ctx.actor],
    );
    if (updated.rowCount !== 1) return undefined;
    return insertAudit(tx, {
      type: DeliveryAuditEvent.resent,
      outcome: outcome.outcome,
      challengeId: row.challenge_id ?? undefined,
      userId: row.user_id,
      incidentId: ctx.incidentId,
      details: { failure_id: Number(failureId), send: outcome.sendNumber, actor: ctx.actor },
      dedupeKey: `delivery-failure-${failureId}/resent`,
    });
  });
  logAudit(runtime.logger.child({ component: 'audit' }), audit);
  return outcome;
}
