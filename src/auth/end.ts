import type { Queryable } from '../db/database';
import { challengeWorkflowId, type AuthMethod, type ChallengeEnd, type InvalidationReason } from '../shared/auth';
import { AuditEventType, insertAudit, type AuditRow } from './audit';

/** The statuses of a challenge that has not ended (it may still verify). */
export const ACTIVE_CHALLENGE_STATUSES = ['pending', 'delivered', 'failed'] as const;
/** The same, as a SQL condition on `auth_challenges.status`. */
export const ACTIVE_CHALLENGE_SQL = `status IN (${ACTIVE_CHALLENGE_STATUSES.map((s) => `'${s}'`).join(', ')})`;

export interface EndRowInput {
  challengeId: string;
  status: ChallengeEnd;
  reason: InvalidationReason;
  /** the workflow's count of failed attempts; omitted: the row's */
  attempts?: number;
  incidentId?: string;
  /** who ended it when not its workflow (recorded in the audit details) */
  by?: string;
}

/**
 * Ends an open challenge row inside the caller's transaction, the one way every end is done:
 * the row says how it ended, the sealed copy is wiped, an expired challenge's validation
 * attempts are flagged, and identity.auth.token_invalidated is recorded once (dedupe key of
 * the workflow's end). Undefined when the row was not open (already ended, or no such row).
 */
export async function endChallengeRow(tx: Queryable, input: EndRowInput): Promise<{ audit: AuditRow | undefined; method: AuthMethod } | undefined> {
  const { challengeId, status, reason } = input;
  const attempted = status === 'verified' || status === 'locked';
  const { rows } = await tx.query<{ user_id: string; method: AuthMethod; client_ip_masked: string | null; attempts: number }>(
    `UPDATE auth_challenges
        SET status = $2, end_reason = $3, ended_at = now(), sealed_secret = NULL,
            attempts = GREATEST(attempts, COALESCE($4::int, 0)),
            last_attempt_at = CASE WHEN $5 THEN now() ELSE last_attempt_at END
      WHERE id = $1 AND ${ACTIVE_CHALLENGE_SQL}
      RETURNING user_id, method, client_ip_masked, attempts`,
    [challengeId, status, reason, input.attempts ?? null, attempted],
  );
  const row = rows[0];
  if (!row) return undefined;
  if (status === 'expired') await tx.query('UPDATE challenge_validation_attempts SET challenge_expired = true WHERE challenge_id = $1', [challengeId]);
  const audit = await insertAudit(tx, {
    type: AuditEventType.tokenInvalidated,
    outcome: status,
    reason,
    challengeId,
    userId: row.user_id,
    method: row.method,
    ipMasked: row.client_ip_masked ?? undefined,
    incidentId: input.incidentId,
    details: { attempts: input.attempts ?? row.attempts, ...(input.by ? { by: input.by } : {}) },
    dedupeKey: `${challengeWorkflowId(challengeId)}/end`,
  });
  return { audit, method: row.method };
}
