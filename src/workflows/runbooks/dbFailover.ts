/**
 * Database connectivity (docs/incident-response.md): check health (every candidate server: connect and
 * SELECT 1, connections; this worker's readyz), raise the pool 25 -> 50 (idle 5 -> 10) in every
 * process, degrade to read-only while no server takes writes, look for slow queries and lock
 * contention, promote the replica (`pg_promote()`), move every API and worker process to it
 * (the control plane pins it), validate consistency and clean up, lift read-only, put the pool
 * back. Pool, read-only and primary are changed through the database control plane
 * (src/db/failoverControl.ts), so every process follows, not just the worker running this.
 *
 * Promotion and cleanup are destructive: at P1-P3 they wait for an admin's approval, at P0
 * they are approved automatically when an admin or an alert asked for the run (approvalPolicy.ts).
 * Cancelling puts the pool and the read-only flag back as they
 * were before the run; a promotion is never undone.
 */
import { isCancellation, type ActivityOptions } from '@temporalio/workflow';
import {
  DB_FAILOVER_DEFAULTS,
  DB_OPS_PERMANENT_ERRORS,
  type DbFailoverParams,
  type PoolSize,
} from '../../shared/database';
import type { RunbookResult, RunbookStartInput } from '../../shared/runbooks';
import { opsActivities } from '../opsActivities';
import { runRunbook, type StepContext, type StepDef } from './framework';
import {
  cleanupSummary,
  consistencySummary,
  healthSummary,
  investigationSummary,
  needsCleanup,
  type Before,
} from './dbFailoverText';

const STEPS: StepDef[] = [
  { name: 'health', title: 'Check database health' },
  {
    name: 'increase_pool',
    title: 'Temporary connection pool increase',
    containment: true,
    compensable: 'every process gets the pool it had before the run',
    undoOnFailure: true,
  },
  {
    name: 'read_only',
    title: 'Graceful degradation (read-only)',
    containment: true,
    compensable: 'writes are allowed again (as before the run)',
    undoOnFailure: true,
  },
  { name: 'investigate', title: 'Slow queries, lock contention, connection pools', optional: true },
  {
    name: 'promote',
    title: 'Promote the replica',
    destructive: true,
    containment: true,
    notCompensable: 'a promoted replica cannot be demoted: the old primary has to be rebuilt from it as a new standby',
  },
  {
    name: 'switch_primary',
    title: 'Switch API and workers to the new primary',
    containment: true,
    notCompensable: 'processes stay on the promoted server: the old primary is down or behind it',
  },
  { name: 'consistency', title: 'Validate data consistency' },
  {
    name: 'cleanup',
    title: 'Clean up inconsistent challenges',
    destructive: true,
    // approved automatically at P0 like the failover itself
    containment: true,
    timeline: 'step',
    notCompensable: 'ended challenges stay ended and their wiped secrets are gone',
  },
  { name: 'leave_read_only', title: 'Leave read-only' },
  { name: 'restore_pool', title: 'Restore connection pool defaults' },
];

// reads and probes: a few quick retries
const inspect: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
};
// control-plane changes: Temporal is up when Postgres is not, but keep trying through a blip
const control: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 10,
    nonRetryableErrorTypes: DB_OPS_PERMANENT_ERRORS,
  },
};
// pg_promote waits up to 60 s; a refusal (another primary is up, no standby) is final
const promote: ActivityOptions = {
  startToCloseTimeout: '90 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '15 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: DB_OPS_PERMANENT_ERRORS,
  },
};
// waits for the other processes to follow, heartbeating
const switchOver: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 10,
    nonRetryableErrorTypes: DB_OPS_PERMANENT_ERRORS,
  },
};
const cleanup: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
};
const CLEANUP_BATCHES = 20;
// bookkeeping: a few tries, never a reason to fail the run
const projection: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
};

export async function dbFailoverRunbook(input: RunbookStartInput<DbFailoverParams>): Promise<RunbookResult> {
  const p = { ...DB_FAILOVER_DEFAULTS, ...(input.params ?? {}) };
  const incidentId = input.incidentId || undefined;

  return runRunbook('db-failover', input, STEPS, async (rb) => {
    const by = `runbook ${rb.state.workflowId}`;

    const health = await rb.step('health', async (ctx) => {
      const report = await ctx.activities(inspect).dbFailoverHealth();
      return {
        summary: healthSummary(report),
        result: { primary: report.primary, standbys: report.standbys, servers: report.servers },
        value: report,
      };
    });
    // the state before this run: what compensation and the final steps put back
    const before: Before = { pool: health!.control?.pool ?? null, readOnly: health!.control?.readOnly.on ?? false };
    const primaryDown = health!.primary === null;

    const setPool = (ctx: StepContext, pool: PoolSize | null, reason: string, suffix?: string) =>
      ctx.activities(control, suffix).dbFailoverSetPool({ pool, by, reason });
    await rb.step(
      'increase_pool',
      async (ctx) => {
        await setPool(ctx, p.pool, 'db-failover: temporary pool increase');
        return {
          summary: `every process: max_open_conns ${p.pool.max}, max_idle_conns ${p.pool.maxIdle} (was ${before.pool ? `${before.pool.max}/${before.pool.maxIdle}` : 'the configured defaults'})`,
        };
      },
      {
        compensate: async (ctx) => (
          await setPool(ctx, before.pool, 'db-failover undone', 'undo'),
          'pool put back as before the run'
        ),
      },
    );

    const degrade = p.readOnly === 'always' || (p.readOnly === 'auto' && primaryDown);
    if (degrade) {
      await rb.step(
        'read_only',
        async (ctx) => {
          await ctx.activities(control).dbFailoverSetReadOnly({
            on: true,
            by,
            reason: primaryDown ? 'db-failover: the primary is unavailable' : 'db-failover',
          });
          return {
            summary: 'every process refuses writes (503 read_only) and serves reads from whatever server answers',
          };
        },
        {
          compensate: async (ctx) => (
            await ctx
              .activities(control, 'undo')
              .dbFailoverSetReadOnly({ on: before.readOnly, by, reason: 'db-failover undone' }),
            before.readOnly ? 'read-only kept (it was on before the run)' : 'writes allowed again'
          ),
        },
      );
    } else {
      await rb.skip(
        'read_only',
        p.readOnly === 'never' ? 'not wanted (readOnly: never)' : `the primary ${health!.primary} takes writes`,
      );
    }

    await rb.step('investigate', async (ctx) => {
      const found = await ctx.activities(inspect).dbFailoverInvestigate();
      return { summary: investigationSummary(found), result: found };
    });

    if (primaryDown && p.failover === 'auto') {
      const promoted = await rb.step('promote', async (ctx) => {
        const result = await ctx.activities(promote).dbFailoverPromote({ endpoint: p.replica });
        return { summary: result.note, result, value: result };
      });
      if (promoted) {
        await rb.step('switch_primary', async (ctx) => {
          const result = await ctx.activities(switchOver).dbFailoverSwitch({
            endpoint: promoted.endpoint,
            by,
            reason: `db-failover: ${promoted.endpoint} promoted`,
          });
          const processes =
            Object.entries(result.processes)
              .map(([name, n]) => `${name} ${n}`)
              .join(', ') || 'none seen yet';
          return {
            summary: `every process pinned to ${result.endpoint}; processes connected there: ${processes}`,
            result,
          };
        });
      } else {
        await rb.skip('switch_primary', 'the promotion was rejected');
      }
    } else {
      const why = primaryDown ? 'not wanted (failover: never)' : `the primary ${health!.primary} takes writes`;
      await rb.skip('promote', why);
      await rb.skip('switch_primary', why);
    }

    const report = await rb.step('consistency', async (ctx) => {
      const found = await ctx.activities(inspect).dbFailoverConsistency();
      return { summary: consistencySummary(found), result: found, value: found };
    });
    if (report && needsCleanup(report)) {
      await rb.step('cleanup', async (ctx) => {
        const totals = {
          expiredMarked: 0,
          leftToWorkflows: 0,
          orphansRevoked: 0,
          orphansSignalled: 0,
          secretsWiped: 0,
          more: true,
        };
        for (let batch = 1; totals.more && batch <= CLEANUP_BATCHES; batch++) {
          const done = await ctx.activities(cleanup, `b${batch}`).dbFailoverCleanup({ incidentId });
          for (const k of [
            'expiredMarked',
            'leftToWorkflows',
            'orphansRevoked',
            'orphansSignalled',
            'secretsWiped',
          ] as const)
            totals[k] += done[k];
          totals.more = done.more;
        }
        return { summary: cleanupSummary(totals), result: totals };
      });
    } else {
      await rb.skip('cleanup', 'nothing to clean up');
    }

    if (degrade) {
      await rb.step('leave_read_only', async (ctx) => {
        await ctx
          .activities(control)
          .dbFailoverSetReadOnly({ on: before.readOnly, by, reason: 'db-failover: recovered' });
        return {
          summary: before.readOnly
            ? 'read-only kept: it was on before the run'
            : 'writes allowed again in every process',
        };
      });
    } else {
      await rb.skip('leave_read_only', 'read-only was not applied');
    }
    await rb.step('restore_pool', async (ctx) => {
      await setPool(ctx, before.pool, 'db-failover: restore pool defaults');
      return {
        summary: before.pool
          ? `pool back to ${before.pool.max}/${before.pool.maxIdle} (as before the run)`
          : 'every process back to the configured pool (max_open_conns 25, max_idle_conns 5 by default)',
      };
    });

    // the projection rows the run could not write while Postgres refused writes; best effort
    const s = rb.state;
    await opsActivities(projection)
      .dbFailoverRecordRun({
        workflowId: s.workflowId,
        runbook: s.runbook,
        incidentId: s.incidentId,
        severity: s.severity,
        startedBy: s.startedBy ?? null,
        steps: s.steps
          .filter((x) => x.runs > 0 || x.status === 'skipped')
          .map((x) => ({ step: x.name, status: x.status, summary: x.summary ?? x.error ?? null })),
      })
      .catch((err: unknown) => {
        if (isCancellation(err)) throw err;
      });
  });
}
