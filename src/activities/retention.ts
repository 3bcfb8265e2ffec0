/**
 * Retention's side effects (docs/operations.md#retention): what a run deletes, a batch at a
 * time. Each batch is one statement that deletes at most `limit` of a table's oldest rows older
 * than the run's horizon, found through the index on the table's time column (an index range
 * scan, never a scan of the table; migrations/0130_retention.sql), and skips rows another
 * transaction holds (SKIP LOCKED): a batch never waits on a sign-in, and a sign-in never waits
 * on more than the rows of one batch, which it does not touch anyway (they are old and ended).
 */
import type { Runtime } from '../runtime';
import { CHALLENGE_OPEN } from '../shared/auth';
import type { RetentionCounts, RetentionPlan, RetentionTable } from '../shared/retention';
import { RETENTION_TABLES } from '../shared/retention';

/** `t`'s challenge is still open: its rows are kept whatever their age. */
const CHALLENGE_IS_OPEN = `EXISTS (SELECT 1 FROM auth_challenges c WHERE c.id = t.challenge_id AND c.status = '${CHALLENGE_OPEN}')`;

interface TableSpec {
  /** the indexed time column a row's age is read from */
  time: string;
  /** rows kept whatever their age (SQL on `t`) */
  keep?: string;
}

/** Every table but the audit trail, which has a function of its own (warden_audit_retention). */
const TABLES: Record<Exclude<RetentionTable, 'audit_events'>, TableSpec> = {
  challenge_validation_attempts: { time: 'last_attempt_at', keep: CHALLENGE_IS_OPEN },
  delivery_failures: { time: 'last_attempt_at', keep: CHALLENGE_IS_OPEN },
  // the ledger of a live challenge's sends is what keeps a retried send from going out twice
  delivery_attempts: { time: 'last_attempt_at', keep: CHALLENGE_IS_OPEN },
  canary_runs: { time: 'started_at', keep: "t.status = 'waiting'" },
  // a challenge that has not ended has no ended_at; the status check says it again
  auth_challenges: { time: 'ended_at', keep: `t.status = '${CHALLENGE_OPEN}'` },
  rate_limit_attempts: { time: 'attempted_at' },
  slack_request_signatures: { time: 'seen_at' },
};

/**
 * The batch statement of a table: $1 the horizon (timestamptz), $2 the batch size. The rows are
 * picked (and locked) through the time index, then deleted by their physical address (a TID
 * scan): with `IN (SELECT ...)` the planner may hash the batch and scan the whole table for it.
 */
export function retentionStatement(table: RetentionTable): string {
  if (table === 'audit_events') return 'SELECT warden_audit_retention($1, $2)::bigint AS n';
  const { time, keep } = TABLES[table];
  return `DELETE FROM ${table} WHERE ctid = ANY (ARRAY (
            SELECT t.ctid FROM ${table} t
             WHERE t.${time} < $1${keep ? ` AND NOT ${keep}` : ''}
             ORDER BY t.${time} LIMIT $2
               FOR UPDATE OF t SKIP LOCKED))`;
}

export type RetentionStart = { status: 'ready'; plan: RetentionPlan } | { status: 'read_only' };

export function createRetentionActivities(runtime: Pick<Runtime, 'db' | 'config' | 'metrics' | 'logger' | 'settings'>) {
  const { db, config, metrics } = runtime;
  const log = runtime.logger.child({ component: 'retention' });

  return {
    /**
     * What this run deletes: per table with a horizon, the time before which its rows go, on the
     * database's clock (the one that stamped them). Rate-limit attempts are kept at least as
     * long as the longest rate-limit window, whatever the horizon says: the limiter counts them.
     */
    async planRetention(): Promise<RetentionStart> {
      if (db.readOnly) return { status: 'read_only' };
      const { rows } = await db.query<{ now: Date }>('SELECT now() AS now');
      const now = rows[0]!.now.getTime();
      const limits = await runtime.settings.rateLimits();
      const longestWindowMs = Math.max(limits.per_user.window_seconds, limits.per_ip.window_seconds) * 1000;
      const { horizonsMs, batch } = config.retention;
      const targets = RETENTION_TABLES.flatMap((table) => {
        const horizon = horizonsMs[table];
        if (horizon === null) return [];
        const keptMs = table === 'rate_limit_attempts' ? Math.max(horizon, longestWindowMs) : horizon;
        return [{ table, before: new Date(now - keptMs).toISOString() }];
      });
      return { status: 'ready', plan: { batch, targets } };
    },

    /** Deletes at most `limit` rows of `table` older than `before`; returns how many it deleted. */
    async deleteRetentionBatch(input: { table: RetentionTable; before: string; limit: number }): Promise<number> {
      const { table, before, limit } = input;
      if (!RETENTION_TABLES.includes(table)) throw new Error(`retention knows no table ${String(table)}`);
      const result = await db.write<{ n: string }>(retentionStatement(table), [new Date(before), limit]);
      const deleted = table === 'audit_events' ? Number(result.rows[0]?.n ?? 0) : (result.rowCount ?? 0);
      if (deleted > 0) metrics.retentionDeleted.inc({ table }, deleted);
      return deleted;
    },

    /** The run's one log line and the last-run time. */
    async finishRetentionRun(input: {
      deleted: RetentionCounts;
      batches: RetentionCounts;
      runs: number;
    }): Promise<void> {
      metrics.retentionLastRun.set(Date.now() / 1000);
      log.info({ deleted: input.deleted, batches: input.batches, runs: input.runs }, 'retention run finished');
    },
  };
}
