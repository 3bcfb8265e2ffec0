import type { Runtime } from '../runtime';
import type { Severity } from '../shared/incidents';
import type { StepStatus } from '../shared/runbooks';

/**
 * The runbook framework's bookkeeping: the run's row and policy at start, one row per step
 * outcome (and the step counter), the run's end. Each write is an upsert keyed by the workflow
 * id, and the metric moves only when a row's status really changes, so retries and replays
 * count nothing twice.
 */
export function createRunbookActivities({ db, metrics, config }: Pick<Runtime, 'db' | 'metrics' | 'config'>) {
  return {
    async startRunbookRun(input: {
      workflowId: string;
      runbook: string;
      incidentId: string;
      severity: Severity;
      startedBy: string | null;
      approvalSeverities: Severity[] | null;
    }): Promise<{ approvalSeverities: Severity[] }> {
      await db.write(
        `INSERT INTO runbook_runs (workflow_id, runbook, incident_id, severity, status, started_by)
         VALUES ($1, $2, NULLIF($3, ''), $4, 'running', $5)
         ON CONFLICT (workflow_id) DO NOTHING`,
        [input.workflowId, input.runbook, input.incidentId, input.severity, input.startedBy],
      );
      return { approvalSeverities: input.approvalSeverities ?? config.runbooks.approvalSeverities };
    },

    async recordRunbookStep(input: { workflowId: string; runbook: string; step: string; run: number; status: StepStatus; summary: string | null }): Promise<void> {
      const step = input.run > 1 ? `${input.step}#${input.run}` : input.step;
      const { rows } = await db.write(
        `INSERT INTO runbook_steps (workflow_id, step, status, summary) VALUES ($1, $2, $3, $4)
         ON CONFLICT (workflow_id, step) DO UPDATE SET status = EXCLUDED.status, summary = EXCLUDED.summary, updated_at = now()
           WHERE runbook_steps.status IS DISTINCT FROM EXCLUDED.status
         RETURNING 1`,
        [input.workflowId, step, input.status, input.summary?.slice(0, 2000) ?? null],
      );
      if (rows.length) metrics.runbookSteps.inc({ runbook: input.runbook, step: input.step, outcome: input.status });
    },

    async finishRunbookRun(input: { workflowId: string; status: 'completed' | 'failed' | 'cancelled'; summary: string }): Promise<void> {
      await db.write(
        `UPDATE runbook_runs SET status = $2, summary = $3, ended_at = COALESCE(ended_at, now()) WHERE workflow_id = $1`,
        [input.workflowId, input.status, input.summary.slice(0, 4000)],
      );
    },
  };
}
