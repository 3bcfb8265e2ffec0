import { DatabaseReadOnlyError } from '../db/database';
import type { Runtime } from '../runtime';
import type { Severity } from '../shared/incidents';
import type { StepStatus } from '../shared/runbooks';
import { createForensicsActivities } from './forensics';
import { createLeakScanActivities } from './forensicsLeakScan';
import { createRunbookAbuseActivities } from './runbookAbuse';
import { createRunbookAuthActivities } from './runbookAuth';

/**
 * The projection is best effort: while Postgres refuses writes (read-only degradation, or only
 * a standby reachable: the db-failover runbook runs in exactly that state) the row is skipped
 * instead of failing or stalling the run. runbookStateQuery stays the source of truth.
 */
async function projection<T>(write: () => Promise<T>): Promise<T | undefined> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof DatabaseReadOnlyError) return undefined;
    throw err;
  }
}

/**
 * The runbook framework's bookkeeping: the run's row and policy at start, one row per step
 * outcome (and the step counter), the run's end. Each write is an upsert keyed by the workflow
 * id, and the metric moves only when a row's status really changes, so retries and replays
 * count nothing twice.
 */
export function createRunbookActivities(
  runtime: Pick<
    Runtime,
    'db' | 'logger' | 'metrics' | 'config' | 'providers' | 'temporal' | 'registry' | 'keys' | 'settings'
  >,
) {
  const { db, metrics, config } = runtime;
  return {
    ...createRunbookAuthActivities(runtime),
    ...createRunbookAbuseActivities(runtime),
    ...createForensicsActivities(runtime),
    ...createLeakScanActivities(runtime),
    async startRunbookRun(input: {
      workflowId: string;
      runbook: string;
      incidentId: string;
      severity: Severity;
      startedBy: string | null;
      approvalSeverities: Severity[] | null;
    }): Promise<{ approvalSeverities: Severity[] }> {
      await projection(() =>
        db.write(
          `INSERT INTO runbook_runs (workflow_id, runbook, incident_id, severity, status, started_by)
         VALUES ($1, $2, NULLIF($3, ''), $4, 'running', $5)
         ON CONFLICT (workflow_id) DO NOTHING`,
          [input.workflowId, input.runbook, input.incidentId, input.severity, input.startedBy],
        ),
      );
      return { approvalSeverities: input.approvalSeverities ?? config.runbooks.approvalSeverities };
    },

    async recordRunbookStep(input: {
      workflowId: string;
      runbook: string;
      step: string;
      run: number;
      status: StepStatus;
      summary: string | null;
    }): Promise<void> {
      const step = input.run > 1 ? `${input.step}#${input.run}` : input.step;
      const written = await projection(() =>
        db.write(
          `INSERT INTO runbook_steps (workflow_id, step, status, summary) VALUES ($1, $2, $3, $4)
         ON CONFLICT (workflow_id, step) DO UPDATE SET status = EXCLUDED.status, summary = EXCLUDED.summary, updated_at = now()
           WHERE runbook_steps.status IS DISTINCT FROM EXCLUDED.status
         RETURNING 1`,
          [input.workflowId, step, input.status, input.summary?.slice(0, 2000) ?? null],
        ),
      );
      if (written?.rows.length)
        metrics.runbookSteps.inc({ runbook: input.runbook, step: input.step, outcome: input.status });
    },

    async finishRunbookRun(input: {
      workflowId: string;
      status: 'completed' | 'failed' | 'cancelled';
      summary: string;
    }): Promise<void> {
      await projection(() =>
        db.write(
          `UPDATE runbook_runs SET status = $2, summary = $3, ended_at = COALESCE(ended_at, now()) WHERE workflow_id = $1`,
          [input.workflowId, input.status, input.summary.slice(0, 4000)],
        ),
      );
    },
  };
}
