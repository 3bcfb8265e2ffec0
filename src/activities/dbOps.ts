import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { changeDatabaseControl, readDatabaseControl } from '../db/failoverControl';
import {
  checkConsistency,
  databaseHealth,
  investigate,
  poolMetrics,
  promoteReplica,
  type ConsistencyReport,
  type HealthReport,
  type Investigation,
  type PromotionResult,
} from '../db/failoverChecks';
import { cleanupConsistency, type CleanupResult } from '../db/failoverCleanup';
import type { TopologySnapshot } from '../db/topologyWatcher';
import type { Runtime } from '../runtime';
import { insertRun, recordStep } from '../runbooks/projection';
import type { DatabaseControlState, PoolSize } from '../shared/database';
import type { Severity } from '../shared/incidents';
import type { StepStatus } from '../shared/runbooks';

export interface DatabaseHealth {
  ok: boolean;
  latencyMs: number;
  connections: number | null;
  pool: { total: number; idle: number; waiting: number; max: number };
  readOnly: boolean;
}

export interface FailoverHealth extends HealthReport {
  /** this worker's view, the readyz equivalent: its server, role, read-only state and pool */
  thisProcess: Pick<TopologySnapshot, 'current' | 'role' | 'readOnly' | 'pool'> & { ping: 'ok' | string };
  /** the control plane before the runbook changed anything (compensation restores it) */
  control: DatabaseControlState | null;
}

export interface SwitchResult {
  endpoint: string;
  /** topology probe connections on the new primary, by process (application_name) */
  processes: Record<string, number>;
}

const samePool = (a: PoolSize | null | undefined, b: PoolSize | null) =>
  (a ?? null) === b || (a != null && b != null && a.max === b.max && a.maxIdle === b.maxIdle);

/**
 * Database operations: the health probe of the health-check workflow, and the failover
 * runbook's steps (src/workflows/runbooks/dbFailover.ts). Each does one thing and is safe to
 * repeat: control-plane changes are skipped when already in force, promotion of a server that
 * is already primary is a no-op, cleanup only touches rows still open.
 */
export function createDbOpsActivities(
  runtime: Pick<Runtime, 'db' | 'topology' | 'config' | 'temporal' | 'logger' | 'registry' | 'keys'>,
) {
  const { db, topology, config, temporal, logger } = runtime;
  const control = { client: temporal.client, taskQueue: config.temporal.taskQueue };
  const log = logger.child({ component: 'db-failover' });

  async function change(input: Parameters<typeof changeDatabaseControl>[1]): Promise<void> {
    await changeDatabaseControl(control, input);
    // this process at once; every other one within WARDEN_DB_WATCH_INTERVAL_MS
    await topology.refresh();
  }

  return {
    /** The runbook's health check: SELECT 1, connections to this database, our pool's state. */
    async checkDatabaseHealth(): Promise<DatabaseHealth> {
      const started = performance.now();
      const result = await db.query<{ connections: string }>(
        'SELECT count(*) AS connections FROM pg_stat_activity WHERE datname = current_database()',
      );
      return {
        ok: true,
        latencyMs: Math.round(performance.now() - started),
        connections: Number(result.rows[0]?.connections ?? 0),
        pool: db.stats(),
        readOnly: db.readOnly,
      };
    },

    /** pg_isready (connect + SELECT 1) and the connection count on every candidate, and readyz here. */
    async dbFailoverHealth(): Promise<FailoverHealth> {
      const report = await databaseHealth(topology.endpoints);
      const ping = await db.ping().then(
        () => 'ok',
        (err: unknown) => (err instanceof Error ? err.message.slice(0, 200) : 'failed'),
      );
      const snap = await topology.refresh();
      return {
        ...report,
        thisProcess: { current: snap.current, role: snap.role, readOnly: snap.readOnly, pool: snap.pool, ping },
        control: await readDatabaseControl(control),
      };
    },

    /** Slow queries (pg_stat_statements), lock contention, and the db_connections metric. */
    async dbFailoverInvestigate(): Promise<Investigation> {
      return investigate(topology.endpoints, () =>
        poolMetrics(() => runtime.registry.metrics(), config.incidents.checklistMetricsUrls),
      );
    },

    /** Sets (or with null, resets) every process's pool size through the control plane. */
    async dbFailoverSetPool(input: {
      pool: PoolSize | null;
      by: string;
      reason: string;
    }): Promise<{ changed: boolean }> {
      const now = await readDatabaseControl(control);
      if (samePool(now?.pool, input.pool)) return { changed: false };
      await change({ by: input.by, reason: input.reason, pool: input.pool });
      return { changed: true };
    },

    /** Forced read-only on or off in every process. */
    async dbFailoverSetReadOnly(input: { on: boolean; by: string; reason: string }): Promise<{ changed: boolean }> {
      const now = await readDatabaseControl(control);
      if ((now?.readOnly.on ?? false) === input.on) return { changed: false };
      await change({ by: input.by, reason: input.reason, readOnly: input.on });
      return { changed: true };
    },

    /** `SELECT pg_promote()` on the standby (the given endpoint, or the most advanced one). */
    async dbFailoverPromote(input: { endpoint?: string }): Promise<PromotionResult> {
      const result = await promoteReplica(topology.endpoints, input.endpoint);
      log.warn(
        { endpoint: result.endpoint, promoted: result.promoted, timeline: result.timeline },
        'database replica promotion',
      );
      return result;
    },

    /**
     * Pins the new primary in the control plane, so every API and worker process moves to it,
     * checks that this worker did, then reports which processes have arrived (each process
     * keeps one `<application>-topology` connection to the server it uses).
     */
    async dbFailoverSwitch(input: { endpoint: string; by: string; reason: string }): Promise<SwitchResult> {
      const target = topology.endpoint(input.endpoint);
      if (!target)
        throw ApplicationFailure.nonRetryable(
          `${input.endpoint} is not a configured database endpoint`,
          'UnknownEndpointError',
        );
      const now = await readDatabaseControl(control);
      if (now?.primary !== input.endpoint)
        await change({ by: input.by, reason: input.reason, primary: input.endpoint });
      const snap = await topology.refresh();
      if (snap.current !== input.endpoint || snap.role !== 'primary') {
        throw new Error(
          `this worker is on ${snap.current} (${snap.role}), not yet on the new primary ${input.endpoint}`,
        );
      }
      // give every other process one watch interval (and a margin) to follow
      const waitMs = 2 * config.database.watchIntervalMs + 500;
      for (let waited = 0; waited < waitMs; waited += 250) {
        Context.current().heartbeat();
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const { rows } = await db.query<{ application_name: string; n: number }>(
        `SELECT application_name, count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE '%-topology' GROUP BY 1 ORDER BY 1`,
      );
      return {
        endpoint: input.endpoint,
        processes: Object.fromEntries(rows.map((r) => [r.application_name.replace(/-topology$/, ''), r.n])),
      };
    },

    /** The consistency queries: orphaned challenges, expired challenges not cleaned up. */
    async dbFailoverConsistency(): Promise<ConsistencyReport> {
      return checkConsistency(db);
    },

    /**
     * The framework's projection rows of this run, once Postgres takes writes again: a run that
     * started in the outage could not write them (its bookkeeping skips while writes are
     * refused). Upserts: a second call changes nothing.
     */
    async dbFailoverRecordRun(input: {
      workflowId: string;
      runbook: string;
      incidentId: string;
      severity: Severity;
      startedBy: string | null;
      steps: Array<{ step: string; status: StepStatus; summary: string | null }>;
    }): Promise<void> {
      await db.maintenance(async (tx) => {
        await insertRun(tx, input);
        for (const s of input.steps) await recordStep(tx, { workflowId: input.workflowId, ...s });
      });
    },

    /** One batch of cleanup (see src/db/failoverCleanup.ts for what it means per row). */
    async dbFailoverCleanup(input: { incidentId?: string }): Promise<CleanupResult> {
      const ctx = Context.current();
      return cleanupConsistency(
        { db, client: temporal.client, logger: logger.child({ component: 'audit' }), keys: runtime.keys },
        { incidentId: input.incidentId || undefined, heartbeat: () => ctx.heartbeat() },
      );
    },
  };
}

export type { CleanupResult, ConsistencyReport, Investigation, PromotionResult };
