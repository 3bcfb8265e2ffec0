/**
 * The database control plane: the desired state every Warden process (API and worker) applies
 * to its own Postgres handle: forced read-only, a temporary pool size, and the endpoint pinned
 * as primary. It lives in a Temporal workflow, not in Postgres, because it must reach every
 * process while Postgres itself is down. Imported by the workflow, the API and the processes.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { RunbookParams } from './runbookRegistry';

export const DATABASE_CONTROL_WORKFLOW_TYPE = 'databaseControlWorkflow';
/** the memo key processes read through DescribeWorkflowExecution (no worker needed to answer) */
export const DATABASE_CONTROL_MEMO = 'databaseControl';

/** One control workflow per task queue: a deployment's processes share their task queue. */
export function databaseControlWorkflowId(taskQueue: string): string {
  return `database-control-${taskQueue}`;
}

/** A pool size: open connections at most, idle connections kept. */
export interface PoolSize {
  max: number;
  maxIdle: number;
}

export const POOL_LIMITS = { max: 500 } as const;

export interface DatabaseControlState {
  readOnly: { on: boolean; reason?: string; by?: string; since?: string };
  /** null: every process uses its configured pool (WARDEN_DB_POOL_MAX / _MAX_IDLE) */
  pool: PoolSize | null;
  /**
   * `host:port` of the endpoint every process must use as primary; null: each process picks
   * the writable candidate itself. Endpoints are named, never given as URLs: URLs carry passwords.
   */
  primary: string | null;
  /** grows with every change, so a process can tell it has seen the latest */
  generation: number;
  updatedAt?: string;
  updatedBy?: string;
}

export interface DatabaseControlChange {
  by: string;
  reason?: string;
  readOnly?: boolean;
  /** a pool size, or null to go back to the configured defaults */
  pool?: PoolSize | null;
  /** an endpoint `host:port`, or null to unpin */
  primary?: string | null;
}

export interface DatabaseControlEvent {
  at: string;
  by: string;
  change: string;
}

export const INITIAL_DATABASE_CONTROL: DatabaseControlState = {
  readOnly: { on: false },
  pool: null,
  primary: null,
  generation: 0,
};

/** Invalid changes, refused by the workflow's validator (the API maps them to 400). */
export const DATABASE_CONTROL_INVALID = 'InvalidDatabaseControlChange';

export const ENDPOINT_PATTERN = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

/** Why a change is invalid, or undefined. Shared by the workflow validator and the API. */
export function invalidControlChange(change: DatabaseControlChange): string | undefined {
  if (!change.by) return 'by is required';
  if (change.pool) {
    const { max, maxIdle } = change.pool;
    if (!Number.isInteger(max) || max < 1 || max > POOL_LIMITS.max)
      return `pool.max must be an integer in 1..${POOL_LIMITS.max}`;
    if (!Number.isInteger(maxIdle) || maxIdle < 0 || maxIdle > max)
      return 'pool.max_idle must be an integer in 0..pool.max';
  }
  if (change.primary !== undefined && change.primary !== null && !ENDPOINT_PATTERN.test(change.primary))
    return 'primary must be host:port';
  if (change.readOnly === undefined && change.pool === undefined && change.primary === undefined)
    return 'nothing to change';
  return undefined;
}

export const changeDatabaseControlUpdate = defineUpdate<DatabaseControlState, [DatabaseControlChange]>(
  'changeDatabaseControl',
);
export const databaseControlQuery = defineQuery<{ state: DatabaseControlState; history: DatabaseControlEvent[] }>(
  'databaseControl',
);

/** Activity failures no retry can fix (the failover runbook's nonRetryableErrorTypes). */
export const DB_OPS_PERMANENT_ERRORS = ['PromotionRefusedError', 'InvalidControlChangeError', 'UnknownEndpointError'];

/** Parameters of the db-failover runbook; an incident's child runs with all defaults. */
export type DbFailoverParams = RunbookParams<'db-failover'>;
export const DB_FAILOVER_DEFAULTS: Required<Omit<DbFailoverParams, 'replica'>> = {
  pool: { max: 50, maxIdle: 10 },
  readOnly: 'auto',
  failover: 'auto',
};
