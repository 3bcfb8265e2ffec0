import type { Queryable } from '../db/database';
import {
  CHALLENGE_OPEN,
  CHALLENGE_WORKFLOW_PREFIX,
  type AuthMethod,
  type ChallengeEnd,
  type ChallengeStatus,
  type InvalidationReason,
} from '../shared/auth';
import { cutOffOf } from './cutoffs';
import { AUDIT_INSERT_COLUMNS, AUDIT_RETURNING, AuditEventType, auditContactSql, type AuditRow } from './audit';

/** The statuses of a challenge that has not ended (it may still verify), for `status = ANY($n)`. */
export const ACTIVE_CHALLENGE_STATUSES: readonly ChallengeStatus[] = [CHALLENGE_OPEN];
/** The same, as a SQL condition on `auth_challenges.status`. */
export const ACTIVE_CHALLENGE_SQL = `status = '${CHALLENGE_OPEN}'`;

export interface EndRowInput {
  challengeId: string;
  status: ChallengeEnd;
  reason: InvalidationReason;
  /** the workflow's count of attempts (a verifying one included); omitted: the row's */
  attempts?: number;
  incidentId?: string;
  /** who ended it when not its workflow (recorded in the audit details) */
  by?: string;
  /**
   * A verify attempt's end: when a revocation cut-off covers the challenge (src/auth/cutoffs.ts)
   * it ends `revoked` with the cut-off's reason instead, decided in this same statement.
   */
  yieldsToCutOff?: boolean;
}

export interface EndRowResult {
  audit: AuditRow | undefined;
  method: AuthMethod;
  /** how the row ended: the input's, or `revoked` when a cut-off won */
  status: ChallengeEnd;
  reason: InvalidationReason;
}

/**
 * The `audit` CTE of an end: identity.auth.token_invalidated for each row of the `ended` CTE,
 * once per challenge. Its dedupe key is the workflow's end (`<workflow id>/end`), whoever ends
 * the row, so an end by a bulk revocation and a later one by the workflow record it once.
 * The arguments are SQL: the event type, incident id and details (jsonb) of the statement.
 */
const tokenInvalidatedAudit = (type: string, incidentId: string, details: string) => `
       INSERT INTO audit_events (${AUDIT_INSERT_COLUMNS})
       SELECT ${type}, e.status, e.end_reason, e.id, e.user_id, e.method, e.client_ip_masked,
              ${auditContactSql('e.method')},
              ${incidentId}, ${details}, '${CHALLENGE_WORKFLOW_PREFIX}' || e.id || '/end'
         FROM ended e LEFT JOIN users u ON u.sub = e.user_id
       ON CONFLICT (dedupe_key) DO NOTHING
       RETURNING ${AUDIT_RETURNING}`;

/**
 * Ends an open challenge row, the one way every end is done, in one statement (atomic on its
 * own, or inside the caller's transaction): the row says how it ended, the sealed copy is
 * wiped, an expired challenge's validation attempts are flagged, and
 * identity.auth.token_invalidated is recorded once (dedupe key of the workflow's end: when that
 * row exists already, the challenge is still ended and `audit` is undefined). Undefined when the
 * row was not open (already ended, or no such row).
 */
export async function endChallengeRow(q: Queryable, input: EndRowInput): Promise<EndRowResult | undefined> {
  const { challengeId, status, reason } = input;
  const attempted = status === 'verified' || status === 'locked';
  const cut = cutOffOf('auth_challenges');
  const { rows } = await q.query<
    Partial<AuditRow> & { ended_method: AuthMethod; ended_status: ChallengeEnd; ended_reason: InvalidationReason }
  >(
    `WITH ended AS (
       UPDATE auth_challenges
          SET status = CASE WHEN $9 AND ${cut} IS NOT NULL THEN 'revoked' ELSE $2 END,
              end_reason = COALESCE(CASE WHEN $9 THEN ${cut} END, $3),
              ended_at = now(), sealed_secret = NULL,
              attempts = GREATEST(attempts, COALESCE($4::int, 0)),
              last_attempt_at = CASE WHEN $5 THEN now() ELSE last_attempt_at END
        WHERE id = $1 AND ${ACTIVE_CHALLENGE_SQL}
        RETURNING id, user_id, method, client_ip_masked, attempts, status, end_reason
     ), flagged AS (
       UPDATE challenge_validation_attempts SET challenge_expired = true
        WHERE $2 = 'expired' AND challenge_id = (SELECT id FROM ended)
     ), audit AS (${tokenInvalidatedAudit('$6', '$7', `jsonb_build_object('attempts', COALESCE($4::int, e.attempts)) || $8::jsonb`)}
     )
     SELECT e.method AS ended_method, e.status AS ended_status, e.end_reason AS ended_reason, a.*
       FROM ended e LEFT JOIN audit a ON true`,
    [
      challengeId,
      status,
      reason,
      input.attempts ?? null,
      attempted,
      AuditEventType.tokenInvalidated,
      input.incidentId ?? null,
      JSON.stringify(input.by ? { by: input.by } : {}),
      input.yieldsToCutOff ?? false,
    ],
  );
  const row = rows[0];
  if (!row) return undefined;
  const { ended_method: method, ended_status: endedStatus, ended_reason: endedReason, ...audit } = row;
  // a deduped audit row leaves the joined columns NULL
  return { audit: audit.id ? (audit as AuditRow) : undefined, method, status: endedStatus, reason: endedReason };
}

export interface EndRowsInput {
  challengeIds: readonly string[];
  reason: Extract<InvalidationReason, 'manual_revoke' | 'security_incident' | 'key_rotation'>;
  incidentId?: string;
  /** who ended them (recorded in each audit row's details) */
  by: string;
}

/**
 * Revokes every still-open challenge of `challengeIds` in one statement, as endChallengeRow
 * would one by one: each row says it was revoked, its sealed copy is wiped, and its
 * identity.auth.token_invalidated row carries the dedupe key its workflow's end would use, so a
 * workflow that still ends it later records nothing twice. Rows already ended are left alone.
 * Answers what it ended (the audit rows are those not recorded before).
 */
export async function endChallengeRows(
  q: Queryable,
  input: EndRowsInput,
): Promise<{ ended: { id: string; method: AuthMethod }[]; audit: AuditRow[] }> {
  if (input.challengeIds.length === 0) return { ended: [], audit: [] };
  const { rows } = await q.query<Partial<AuditRow> & { ended_id: string; ended_method: AuthMethod }>(
    `WITH ended AS (
       UPDATE auth_challenges
          SET status = 'revoked', end_reason = $2, ended_at = now(), sealed_secret = NULL
        WHERE id = ANY($1::uuid[]) AND ${ACTIVE_CHALLENGE_SQL}
        RETURNING id, user_id, method, client_ip_masked, attempts, status, end_reason
     ), audit AS (${tokenInvalidatedAudit('$3', '$4', `jsonb_build_object('attempts', e.attempts, 'by', $5::text)`)}
     )
     SELECT e.id AS ended_id, e.method AS ended_method, a.*
       FROM ended e LEFT JOIN audit a ON a.challenge_id = e.id`,
    [input.challengeIds, input.reason, AuditEventType.tokenInvalidated, input.incidentId ?? null, input.by],
  );
  const ended = rows.map((r) => ({ id: r.ended_id, method: r.ended_method }));
  // a deduped audit row leaves the joined columns NULL
  const audit = rows.flatMap(({ ended_id: _id, ended_method: _method, ...a }) => (a.id ? [a as AuditRow] : []));
  return { ended, audit };
}
