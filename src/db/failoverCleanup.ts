/**
 * Cleanup after the consistency checks. Challenge rows belong to their challenge workflows, so
 * the cleanup only touches a row directly when its workflow is gone (lost with an old primary,
 * terminated, or ended while its last write failed); a live workflow is asked (revokeSignal)
 * or left to its own expiry timer. Direct changes run in db.maintenance(), which works while
 * the application is still held read-only, and write the same audit event (same dedupe key)
 * the workflow would have written, so nothing is recorded twice.
 *
 * - open challenges past expiry (plus grace) whose workflow is gone: marked expired, sealed
 *   secret wiped, identity.auth.token_invalidated (expired).
 * - orphans with a message sent (the user row disappeared): revoked (manual_revoke).
 *   Decoys (unknown users, never sent) are left alone: revoking them would make the answer to
 *   a guess differ from a real user's, the enumeration the decoys exist to prevent.
 * - ended challenges that still hold a sealed secret: wiped.
 * Rows are never deleted: the anomaly queries and forensic exports read them.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type pg from 'pg';
import { signalRevocations } from '../auth/admin';
import { logAudit } from '../auth/audit';
import { ACTIVE_CHALLENGE_STATUSES, endChallengeRow } from '../auth/end';
import type { DataKeyStore } from '../auth/keys';
import { challengeWorkflowId } from '../shared/auth';
import type { Logger } from '../telemetry/logger';
import type { Database } from './database';
import { EXPIRY_GRACE_SECONDS } from './failoverChecks';

export interface CleanupDeps {
  db: Database;
  client: Client;
  logger: Logger;
  keys: DataKeyStore;
}

export interface CleanupResult {
  expiredMarked: number;
  /** open past expiry, but their workflow runs: it ends them itself */
  leftToWorkflows: number;
  orphansRevoked: number;
  /** orphans whose workflow took the revoke signal; it ends them when writes are allowed */
  orphansSignalled: number;
  secretsWiped: number;
  /** more rows remain than one call handles; run the step again */
  more: boolean;
}

const BATCH = 500;

async function workflowRunning(client: Client, challengeId: string): Promise<boolean> {
  try {
    const d = await client.workflow.getHandle(challengeWorkflowId(challengeId)).describe();
    return d.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** Ends one open row the way its workflow would have; false when it was no longer open. */
async function endRow(
  deps: CleanupDeps,
  challengeId: string,
  status: 'expired' | 'revoked',
  reason: 'expired' | 'manual_revoke',
  incidentId?: string,
): Promise<boolean> {
  const ended = await deps.db.maintenance((tx: pg.PoolClient) =>
    endChallengeRow(tx, { challengeId, status, reason, incidentId, by: 'db-failover cleanup' }),
  );
  if (!ended) return false;
  logAudit(deps.logger, ended.audit);
  return true;
}

export async function cleanupConsistency(
  deps: CleanupDeps,
  input: { incidentId?: string; heartbeat?: () => void },
): Promise<CleanupResult> {
  const { db } = deps;
  const beat = input.heartbeat ?? (() => {});
  const result: CleanupResult = {
    expiredMarked: 0,
    leftToWorkflows: 0,
    orphansRevoked: 0,
    orphansSignalled: 0,
    secretsWiped: 0,
    more: false,
  };

  const stale = await db.query<{ id: string }>(
    `SELECT id FROM auth_challenges WHERE status = ANY($1::text[]) AND expires_at < now() - make_interval(secs => $2)
      ORDER BY expires_at LIMIT $3`,
    [ACTIVE_CHALLENGE_STATUSES, EXPIRY_GRACE_SECONDS, BATCH + 1],
  );
  result.more ||= stale.rows.length > BATCH;
  for (const { id } of stale.rows.slice(0, BATCH)) {
    beat();
    if (await workflowRunning(deps.client, id)) result.leftToWorkflows += 1;
    else if (await endRow(deps, id, 'expired', 'expired', input.incidentId)) result.expiredMarked += 1;
  }

  const orphans = await db.query<{ id: string }>(
    `SELECT ac.id FROM auth_challenges ac LEFT JOIN users u ON ac.user_id = u.sub
      WHERE u.sub IS NULL AND ac.delivery_provider IS NOT NULL AND ac.status = ANY($1::text[])
      ORDER BY ac.created_at LIMIT $2`,
    [ACTIVE_CHALLENGE_STATUSES, BATCH + 1],
  );
  result.more ||= orphans.rows.length > BATCH;
  const live: string[] = [];
  for (const { id } of orphans.rows.slice(0, BATCH)) {
    beat();
    if (await workflowRunning(deps.client, id)) live.push(id);
    else if (await endRow(deps, id, 'revoked', 'manual_revoke', input.incidentId)) result.orphansRevoked += 1;
  }
  if (live.length) {
    const outcome = await signalRevocations({ db, client: deps.client }, live, 'manual_revoke', input.incidentId);
    result.orphansSignalled += outcome.signalled;
    result.orphansRevoked += outcome.revoked;
  }

  const wiped = await db.maintenance((tx) =>
    tx.query(
      `UPDATE auth_challenges SET sealed_secret = NULL WHERE NOT status = ANY($1::text[]) AND sealed_secret IS NOT NULL`,
      [ACTIVE_CHALLENGE_STATUSES],
    ),
  );
  result.secretsWiped = wiped.rowCount ?? 0;
  return result;
}
