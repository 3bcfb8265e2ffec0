/**
 * Retention's shapes, shared by its workflow (deterministic code: nothing but types and
 * constants here), its activities and its schedule (docs/operations.md#retention).
 */

/**
 * The tables retention trims, in the order a run trims them: the rows that name a challenge
 * (validation attempts, delivery records, canary runs) before the challenges, so a row that
 * refers to a challenge is never left behind by a run that got as far as the challenges. Tables
 * that reference a challenge by foreign key declare ON DELETE CASCADE and go with it. The audit
 * trail comes last: it is the longest kept, and nothing refers to it.
 */
export const RETENTION_TABLES = [
  'challenge_validation_attempts',
  'delivery_failures',
  'delivery_attempts',
  'canary_runs',
  'auth_challenges',
  'rate_limit_attempts',
  'slack_request_signatures',
  'audit_events',
] as const;
export type RetentionTable = (typeof RETENTION_TABLES)[number];

/** One table of a run: rows older than `before` (ISO time, the database's clock) go. */
export interface RetentionTarget {
  table: RetentionTable;
  before: string;
}

/** What a run does, fixed when it starts: later rows wait for the next run. */
export interface RetentionPlan {
  batch: number;
  targets: RetentionTarget[];
}

/** Counts per table; a table the run did not trim is absent. */
export type RetentionCounts = Partial<Record<RetentionTable, number>>;

/** A run's state, carried across continue-as-new. */
export interface RetentionProgress {
  plan: RetentionPlan;
  /** index of the target being trimmed */
  next: number;
  deleted: RetentionCounts;
  batches: RetentionCounts;
  /** workflow runs of this retention run so far (1 + continue-as-new count) */
  runs: number;
}

export interface RetentionInput {
  /** set by continue-as-new only */
  progress?: RetentionProgress;
  /** continue as new once the history has this many events (default RETENTION_HISTORY_LIMIT) */
  historyLimit?: number;
}

export interface RetentionResult {
  /** `read_only`: the database refused writes (failover degradation, a standby); nothing was done */
  status: 'done' | 'read_only';
  deleted: RetentionCounts;
  batches: RetentionCounts;
  runs: number;
}

/** About 1,600 batches a run: far below Temporal's limits, and still a short replay. */
export const RETENTION_HISTORY_LIMIT = 10_000;

/** One schedule per task queue, so parallel Wardens on one Temporal never share it. */
export function retentionScheduleId(taskQueue: string): string {
  return `warden-retention-${taskQueue}`;
}

/** The workflow id of every run the schedule starts (overlap: skip, so one at a time). */
export function retentionWorkflowId(taskQueue: string): string {
  return `retention-${taskQueue}`;
}
