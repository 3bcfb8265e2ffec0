/**
 * Responder actions of the incident procedures (docs/incident-response.md), as plain
 * functions: the admin API calls them, and the runbook workflows call them through activities.
 * A revocation takes effect at once through a cut-off (src/auth/cutoffs.ts); the cleanup that
 * follows ends the covered rows in bulk (one statement per batch, audited as their workflows
 * would) and then terminates their workflows, which have nothing left to do: its pace is the
 * database's and the Temporal server's, not one workflow task per challenge.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { DatabaseReadOnlyError, type Database } from '../db/database';
import { challengeWorkflowId, revokeSignal, type RevokeReason } from '../shared/auth';
import type { Runtime } from '../runtime';
import type { Logger } from '../telemetry/logger';
import type { Metrics } from '../telemetry/metrics';
import { AuditEventType, insertAudit, logAudit, recordAudit, type AuditRow } from './audit';
import { coveredByUserCutOff, coveredChallengeIds, cutOffChallenges } from './cutoffs';
import { createDataKey, type DataKeyStore } from './keys';
import { createTokenKey, type TokenKeyStore } from './tokenKeys';
import { clearUserRateLimits } from './rateLimit';
import { ACTIVE_CHALLENGE_SQL as ACTIVE, endChallengeRows } from './end';

export interface AdminDeps {
  db: Database;
  logger: Logger;
  client: Client;
  keys: DataKeyStore;
  tokenKeys: TokenKeyStore;
  metrics: Pick<Metrics, 'tokensInvalidated'>;
}

/** The deps from a runtime, audit lines under the `audit` component. */
export const adminDeps = (
  runtime: Pick<Runtime, 'db' | 'logger' | 'temporal' | 'keys' | 'tokenKeys' | 'metrics'>,
): AdminDeps => ({
  db: runtime.db,
  logger: runtime.logger.child({ component: 'audit' }),
  client: runtime.temporal.client,
  keys: runtime.keys,
  tokenKeys: runtime.tokenKeys,
  metrics: runtime.metrics,
});

export interface ActorContext {
  /** who did it: `admin-api`, a runbook workflow id... */
  actor: string;
  incidentId?: string;
}

/** signals in flight at once: enough to keep the Temporal frontend busy, few enough not to queue */
const SIGNAL_LANES = 32;
/** terminations in flight at once: more only queue behind the server's persistence */
const TERMINATE_LANES = 64;
/** rows ended per statement: a few hundred milliseconds of locks at most */
const END_BATCH = 2000;
const SETTLE_TIMEOUT_MS = 5000;
const SETTLE_POLL_MS = 100;

/** Runs `fn` over `items` with at most `lanes` calls in flight; the first failure is thrown. */
export async function inLanes<T>(items: readonly T[], lanes: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
}

export interface RevokeOutcome {
  /** challenges this call revoked (rows ended, sealed copies wiped); one that ended otherwise meanwhile is not counted */
  revoked: number;
  /** of their workflows, how many this call terminated (one that had already closed is not counted) */
  workflowsEnded: number;
}

export interface RevokeOptions {
  incidentId?: string;
  actor: string;
  /** called as the work progresses (an activity heartbeats) */
  progress?: (done: number) => void;
}

/**
 * Revokes the challenges still open among `challengeIds`: their rows end in bulk
 * (endChallengeRows, END_BATCH per statement: revoked, sealed copy wiped, audited with the
 * dedupe key of the workflow's own end), then their workflows are terminated
 * (terminateChallengeWorkflows). A challenge that ended otherwise (verified, expired) keeps its
 * end, and its workflow is left to finish: it may be answering that verify.
 */
export async function revokeChallenges(
  deps: AdminDeps,
  challengeIds: readonly string[],
  reason: RevokeReason,
  options: RevokeOptions,
): Promise<RevokeOutcome> {
  const revoked = await endChallenges(deps, challengeIds, reason, options);
  const workflowsEnded = await terminateChallengeWorkflows(deps, revoked, reason, options);
  return { revoked: revoked.length, workflowsEnded };
}

/** The rows part of revokeChallenges: the ids it revoked. */
export async function endChallenges(
  deps: AdminDeps,
  challengeIds: readonly string[],
  reason: RevokeReason,
  options: RevokeOptions,
): Promise<string[]> {
  const revoked: string[] = [];
  for (let i = 0; i < challengeIds.length; i += END_BATCH) {
    const { ended, audit } = await endChallengeRows(deps.db.writer, {
      challengeIds: challengeIds.slice(i, i + END_BATCH),
      reason,
      incidentId: options.incidentId,
      by: options.actor,
    });
    for (const row of audit) logAudit(deps.logger, row);
    for (const { id, method } of ended) {
      deps.metrics.tokensInvalidated.inc({ method, reason });
      revoked.push(id);
    }
    options.progress?.(revoked.length);
  }
  return revoked;
}

/**
 * Terminates the workflows of challenges whose rows have been revoked, TERMINATE_LANES at a
 * time, with the reason: they have nothing left to do. Answers how many it terminated (one
 * already closed is not counted). Should one fail, that workflow ends by itself at the
 * challenge's expiry (its end then changes nothing).
 */
export async function terminateChallengeWorkflows(
  deps: Pick<AdminDeps, 'client'>,
  challengeIds: readonly string[],
  reason: RevokeReason,
  options: RevokeOptions,
): Promise<number> {
  const why = `revoked (${reason}${options.incidentId ? `, ${options.incidentId}` : ''}) by ${options.actor}`;
  let terminated = 0;
  await inLanes(challengeIds, TERMINATE_LANES, async (id) => {
    try {
      await deps.client.workflow.getHandle(challengeWorkflowId(id)).terminate(why);
      terminated += 1;
      if (terminated % 100 === 0) options.progress?.(terminated);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  });
  return terminated;
}

/**
 * Asks each challenge's workflow to revoke itself (revokeSignal) and waits, bounded, until the
 * rows say how they ended. For a database held read-only (a failover's cleanup): the workflows
 * end the rows once writes are allowed again. A workflow already gone is not counted.
 */
export async function signalRevocations(
  deps: Pick<AdminDeps, 'db' | 'client'>,
  challengeIds: readonly string[],
  reason: RevokeReason,
  incidentId?: string,
): Promise<{ signalled: number; revoked: number }> {
  const signalled: string[] = [];
  await inLanes(challengeIds, SIGNAL_LANES, async (id) => {
    try {
      await deps.client.workflow
        .getHandle(challengeWorkflowId(id))
        .signal(revokeSignal, { reason, ...(incidentId ? { incidentId } : {}) });
      signalled.push(id);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  });
  if (signalled.length === 0) return { signalled: 0, revoked: 0 };
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const { rows } = await deps.db.query<{ pending: number; revoked: number }>(
      `SELECT count(*) FILTER (WHERE ${ACTIVE})::int AS pending, count(*) FILTER (WHERE status = 'revoked')::int AS revoked
         FROM auth_challenges WHERE id = ANY($1::uuid[])`,
      [signalled],
    );
    const counts = rows[0]!;
    if (counts.pending === 0 || Date.now() >= deadline) return { signalled: signalled.length, revoked: counts.revoked };
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }
}

/**
 * Revokes every live challenge of the given users: first a cut-off (one statement: from its
 * commit no code of theirs verifies), then the challenges it covers are ended and their
 * workflows terminated (revokeChallenges). A challenge started after the cut-off is not touched.
 */
export async function revokeUserChallenges(
  deps: AdminDeps,
  input: ActorContext & {
    userIds: readonly string[];
    reason: Extract<RevokeReason, 'manual_revoke' | 'security_incident'>;
  },
): Promise<RevokeOutcome & { revokedBefore?: string }> {
  if (deps.db.readOnly) throw new DatabaseReadOnlyError();
  if (input.userIds.length === 0) return { revoked: 0, workflowsEnded: 0 };
  const cut = await cutOffChallenges(deps.db.writer, {
    scope: 'user',
    subjects: input.userIds,
    reason: input.reason,
    actor: input.actor,
    incidentId: input.incidentId,
  });
  logAudit(deps.logger, cut.audit);
  const outcome = await revokeChallenges(deps, await coveredChallengeIds(deps.db, input.userIds), input.reason, {
    incidentId: input.incidentId,
    actor: input.actor,
  });
  await auditUsers(deps, input, 'revoke_challenges', { reason: input.reason, revoked: outcome.revoked });
  return { ...outcome, revokedBefore: cut.revokedBefore };
}

/** `UPDATE users SET force_password_reset = true WHERE sub IN (...)`. */
export async function forcePasswordReset(
  deps: AdminDeps,
  input: ActorContext & { userIds: readonly string[] },
): Promise<{ updated: string[] }> {
  const { rows } = await deps.db.write<{ sub: string }>(
    `UPDATE users SET force_password_reset = true, updated_at = now() WHERE sub = ANY($1::text[]) RETURNING sub`,
    [input.userIds],
  );
  await auditUsers(deps, input, 'force_password_reset', {});
  return { updated: rows.map((r) => r.sub).sort() };
}

/** `DELETE FROM rate_limit_attempts WHERE user_id IN (...)`: legitimate users unblocked. */
export async function clearRateLimits(
  deps: AdminDeps,
  input: ActorContext & { userIds: readonly string[] },
): Promise<{ deleted: number }> {
  const deleted = await clearUserRateLimits(deps.db, input.userIds);
  await auditUsers(deps, input, 'clear_rate_limits', {});
  return { deleted };
}

async function auditUsers(
  deps: AdminDeps,
  input: ActorContext & { userIds: readonly string[] },
  action: string,
  details: Record<string, unknown>,
) {
  for (const userId of new Set(input.userIds)) {
    await recordAudit(deps.db, deps.logger, {
      type: AuditEventType.userAction,
      outcome: action,
      userId,
      incidentId: input.incidentId,
      details: { actor: input.actor, ...details },
    });
  }
}

export interface RotationResult {
  keyId: string;
  previousKeyId: string | null;
  /**
   * the token signing key made active (null only in a rotation recorded before token signing
   * keys existed), and the one it retired (still published: docs/tokens.md)
   */
  tokenKid: string | null;
  previousTokenKid: string | null;
  rotationId: number;
  rotatedAt: string;
  revokedChallenges: number;
}

/**
 * Makes a new data key active and retires the old one (kept: it still verifies the challenges
 * issued under it unless they are revoked). The token signing key turns over in the same
 * transaction (src/auth/tokenKeys.ts): tokens signed before stay verifiable until they expire,
 * since the retired key stays in the JWKS that long. With `revokeOutstanding`, every challenge
 * still open under an older key is revoked (reason key_rotation; revokeChallenges). Issues in
 * flight hold a share lock on the active key's row, so the retiring UPDATE waits for them and
 * the revocation sweep that follows sees them.
 */
export async function rotateKeys(
  deps: AdminDeps,
  input: ActorContext & { reason: string; revokeOutstanding: boolean },
): Promise<RotationResult> {
  const next = createDataKey(deps.keys.keyring);
  const nextToken = await createTokenKey(deps.tokenKeys.keyring);
  const cutOffs: AuditRow[] = [];
  const rotation = await deps.db.transaction(async (tx) => {
    const retired = await tx.query<{ id: string }>(
      `UPDATE signing_keys SET status = 'retired', retired_at = now() WHERE status = 'active' RETURNING id`,
    );
    const previousKeyId = retired.rows[0]?.id ?? null;
    await tx.query(
      `INSERT INTO signing_keys (id, kek_id, wrapped_pepper, wrapped_seal, status) VALUES ($1, $2, $3, $4, 'active')`,
      [next.id, next.kekId, next.wrappedPepper, next.wrappedSeal],
    );
    const token = await deps.tokenKeys.rotateIn(tx, nextToken);
    if (input.revokeOutstanding) {
      // unverifiable from this commit: everything issued before it, and all the retired key ever issued
      const cut = { reason: 'key_rotation' as const, actor: input.actor, incidentId: input.incidentId };
      cutOffs.push((await cutOffChallenges(tx, { ...cut, scope: 'all' })).audit);
      if (previousKeyId) {
        cutOffs.push(
          (await cutOffChallenges(tx, { ...cut, scope: 'key', subjects: [previousKeyId], wholeKey: true })).audit,
        );
      }
    }
    const { rows } = await tx.query<{ id: number; rotated_at: Date }>(
      `INSERT INTO key_rotations (from_key_id, to_key_id, reason, incident_id, rotated_by, from_token_kid, to_token_kid)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id::int AS id, rotated_at`,
      [
        previousKeyId,
        next.id,
        input.reason,
        input.incidentId ?? null,
        input.actor,
        token.retiredKid ?? null,
        token.activeKid,
      ],
    );
    const audit = await insertAudit(tx, {
      type: AuditEventType.keyRotated,
      outcome: 'rotated',
      reason: input.reason,
      incidentId: input.incidentId,
      details: {
        from_key_id: previousKeyId,
        to_key_id: next.id,
        kek_id: next.kekId,
        // kids only: public names, never key material
        from_token_kid: token.retiredKid ?? null,
        to_token_kid: token.activeKid,
        deleted_token_kids: token.deletedKids,
        token_kek_id: nextToken.kekId,
        revoke_outstanding: input.revokeOutstanding,
        actor: input.actor,
      },
    });
    return { previousKeyId, token, id: rows[0]!.id, rotatedAt: rows[0]!.rotated_at, audit };
  });
  logAudit(deps.logger, rotation.audit);
  for (const audit of cutOffs) logAudit(deps.logger, audit);
  deps.keys.invalidate();
  deps.tokenKeys.invalidate();

  let revokedChallenges = 0;
  if (input.revokeOutstanding) {
    // a challenge a user's cut-off already covers is being revoked for that reason: left to it
    const { rows } = await deps.db.query<{ id: string }>(
      `SELECT id FROM auth_challenges c WHERE key_id IS DISTINCT FROM $1 AND ${ACTIVE}
          AND NOT ${coveredByUserCutOff('c')}
        ORDER BY created_at`,
      [next.id],
    );
    const outcome = await revokeChallenges(
      deps,
      rows.map((r) => r.id),
      'key_rotation',
      { incidentId: input.incidentId, actor: input.actor },
    );
    revokedChallenges = outcome.revoked;
    await deps.db.write('UPDATE key_rotations SET revoked_challenges = $2 WHERE id = $1', [
      rotation.id,
      revokedChallenges,
    ]);
  }
  return {
    keyId: next.id,
    previousKeyId: rotation.previousKeyId,
    tokenKid: rotation.token.activeKid,
    previousTokenKid: rotation.token.retiredKid ?? null,
    rotationId: rotation.id,
    rotatedAt: rotation.rotatedAt.toISOString(),
    revokedChallenges,
  };
}

/**
 * The data keys and the token signing keys (ids, statuses and dates, never material) and the
 * last 50 rotations, newest first.
 */
export async function listKeys(db: Database) {
  const keys = await db.query<{
    id: string;
    kek_id: string;
    status: string;
    created_at: Date;
    retired_at: Date | null;
  }>('SELECT id, kek_id, status, created_at, retired_at FROM signing_keys ORDER BY created_at DESC');
  const tokenKeys = await db.query<{
    kid: string;
    alg: string;
    kek_id: string;
    status: string;
    created_at: Date;
    retired_at: Date | null;
    published_until: Date | null;
  }>(
    'SELECT kid, alg, kek_id, status, created_at, retired_at, published_until FROM token_signing_keys ORDER BY created_at DESC, kid',
  );
  const rotations = await db.query<{
    id: number;
    from_key_id: string | null;
    to_key_id: string;
    reason: string;
    incident_id: string | null;
    revoked_challenges: number;
    rotated_by: string;
    rotated_at: Date;
    from_token_kid: string | null;
    to_token_kid: string | null;
  }>(
    'SELECT id::int AS id, from_key_id, to_key_id, reason, incident_id, revoked_challenges, rotated_by, rotated_at, from_token_kid, to_token_kid FROM key_rotations ORDER BY id DESC LIMIT 50',
  );
  return { keys: keys.rows, tokenKeys: tokenKeys.rows, rotations: rotations.rows };
}
