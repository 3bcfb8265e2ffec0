/**
 * Revocation cut-offs: containment that does not depend on how many challenges it covers.
 *
 * A cut-off says "every challenge of this scope created at or before this instant is revoked".
 * Writing one is a single statement whatever the number of challenges it covers; from its
 * commit on, the verify path refuses them with `revoked` (the rate-limit statement that reads
 * the challenge row, and the attempt's end, both evaluate `cutOffOf`). The challenge
 * workflows then end each covered challenge (row ended, sealed copy wiped, audited) at their
 * own pace: the cleanup has nothing left to race.
 *
 * The instant is the database's clock (`now()` of the writing transaction), the same clock
 * that stamps `auth_challenges.created_at`: a challenge issued after the cut-off committed is
 * never covered. A verify whose end statement began before the commit may still succeed;
 * one that begins after it never does.
 */
import type { Queryable } from '../db/database';
import type { RevokeReason } from '../shared/auth';
import { AUDIT_RETURNING, AuditEventType, insertAudit, type AuditRow } from './audit';

export type CutoffScope = 'all' | 'user' | 'key';

export interface CutoffInput {
  scope: CutoffScope;
  /** user ids for `user`, key ids for `key`; ignored for `all` */
  subjects?: readonly string[];
  reason: RevokeReason;
  /** who: `admin-api`, a runbook workflow id... */
  actor: string;
  incidentId?: string;
  /** a cut-off for everything the key ever issued, not only up to now (a retired key issues nothing more) */
  wholeKey?: boolean;
}

export interface CutoffResult {
  /** the instant, ISO: challenges created at or before it are revoked */
  revokedBefore: string;
  /** distinct subjects covered (1 for `all`) */
  subjects: number;
  audit: AuditRow;
  /** a repeat under a dedupe key already used: nothing new was audited */
  repeated?: boolean;
}

/**
 * The cut-off that covers the challenge aliased `c`, as a LATERAL subquery yielding `reason`
 * (one row when covered, none otherwise): three primary-key probes.
 */
export const cutOffOf = (c: string) => `(
  SELECT x.reason FROM challenge_cutoffs x
   WHERE ((x.scope = 'all' AND x.subject = '')
       OR (x.scope = 'user' AND x.subject = ${c}.user_id)
       OR (x.scope = 'key' AND x.subject = ${c}.key_id))
     AND x.revoked_before >= ${c}.created_at
   ORDER BY x.revoked_before DESC LIMIT 1)`;

/** The reason of the cut-off covering `c` while it is open; NULL otherwise (an ended row answers by its status). */
export const openCutOffReason = (c: string) => `CASE WHEN ${c}.status = 'open' THEN ${cutOffOf(c)} END`;

/**
 * The challenges a user's cut-off covers, `c` being auth_challenges: a key rotation's sweep
 * leaves them to the revocation already under way.
 */
export const coveredByUserCutOff = (c: string) => `EXISTS (
  SELECT 1 FROM challenge_cutoffs u
   WHERE u.scope = 'user' AND u.subject = ${c}.user_id AND u.revoked_before >= ${c}.created_at)`;

/** Open challenges of the users ($1, text[]) that a cut-off covers, `c` being auth_challenges. */
const COVERED_OF_USERS = `c.user_id = ANY($1::text[]) AND c.status = 'open' AND EXISTS ${cutOffOf('c')}`;

/** The ids of the users' open challenges a cut-off covers, oldest first: what cleanup ends. */
export async function coveredChallengeIds(q: Queryable, userIds: readonly string[]): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT c.id FROM auth_challenges c WHERE ${COVERED_OF_USERS} ORDER BY c.created_at`,
    [userIds],
  );
  return rows.map((r) => r.id);
}

/**
 * The users' challenges revoked since their own cut-off (ended at or after its instant, and
 * created before it): those whose workflows a cleanup terminates.
 */
export async function revokedSinceCutOffIds(q: Queryable, userIds: readonly string[]): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT c.id FROM auth_challenges c
       JOIN challenge_cutoffs x ON x.scope = 'user' AND x.subject = c.user_id
      WHERE c.user_id = ANY($1::text[]) AND c.status = 'revoked'
        AND x.revoked_before >= c.created_at AND c.ended_at >= x.revoked_before
      ORDER BY c.created_at`,
    [userIds],
  );
  return rows.map((r) => r.id);
}

/** How many of the users' open challenges a cut-off covers (for summaries; not on the containment path). */
export async function countCovered(q: Queryable, userIds: readonly string[]): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM auth_challenges c WHERE ${COVERED_OF_USERS}`,
    [userIds],
  );
  return rows[0]!.n;
}

/** `auth_challenges.status` of `c` as the verify path sees it: an open challenge under a cut-off is `revoked`. */
export const statusAfterCutOff = (c: string) =>
  `CASE WHEN ${c}.status = 'open' AND EXISTS ${cutOffOf(c)} THEN 'revoked' ELSE ${c}.status END AS status`;

/**
 * Writes the cut-off and its audit row (identity.auth.challenges_cut_off) in one statement: a
 * single round trip whatever the number of subjects. Repeating it moves the instant forward (a
 * later cut-off covers more), never back. With a dedupe key, a repeat finds the first
 * one's audit row and answers with it (`repeated`; the cut-off itself still moves forward).
 */
export async function cutOffChallenges(
  q: Queryable,
  input: CutoffInput & { dedupeKey?: string },
): Promise<CutoffResult> {
  const subjects = input.scope === 'all' ? [''] : [...new Set(input.subjects ?? [])];
  if (subjects.length === 0) throw new Error(`a ${input.scope} cut-off needs at least one subject`);
  const audit = await insertAudit(
    q,
    {
      type: AuditEventType.challengesCutOff,
      outcome: input.scope,
      reason: input.reason,
      incidentId: input.incidentId,
      details: {
        actor: input.actor,
        scope: input.scope,
        subjects: subjects.length,
        ...(input.wholeKey ? { whole_key: true } : {}),
        ...(input.scope === 'key' ? { key_ids: subjects } : {}),
      },
      dedupeKey: input.dedupeKey,
    },
    {
      sql: `INSERT INTO challenge_cutoffs AS x (scope, subject, revoked_before, reason, incident_id, set_by)
            SELECT $11, s, CASE WHEN $13 THEN 'infinity'::timestamptz ELSE now() END, $14, $15, $16
              FROM unnest($12::text[]) AS s
            ON CONFLICT (scope, subject) DO UPDATE
               SET revoked_before = GREATEST(x.revoked_before, EXCLUDED.revoked_before), reason = EXCLUDED.reason,
                   incident_id = EXCLUDED.incident_id, set_by = EXCLUDED.set_by, set_at = now()`,
      values: [input.scope, subjects, input.wholeKey ?? false, input.reason, input.incidentId ?? null, input.actor],
    },
  );
  if (audit) {
    // the audit row's occurred_at is the statement's now(): the instant of the cut-off
    return { revokedBefore: audit.occurred_at.toISOString(), subjects: subjects.length, audit };
  }
  // a repeat under the same dedupe key: the first one's instant
  const { rows } = await q.query<AuditRow>(`SELECT ${AUDIT_RETURNING} FROM audit_events WHERE dedupe_key = $1`, [
    input.dedupeKey,
  ]);
  const first = rows[0]!;
  return { revokedBefore: first.occurred_at.toISOString(), subjects: subjects.length, audit: first, repeated: true };
}
