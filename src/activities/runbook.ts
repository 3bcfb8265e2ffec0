import type { Runtime } from '../runtime';
import type { Severity } from '../shared/incidents';
import { bestEffort, finishRun, insertRun, recordStep } from '../runbooks/projection';
import type { StepStatus } from '../shared/runbooks';
import { createForensicsActivities } from './forensics';
import { createLeakScanActivities } from './forensicsLeakScan';
import { createRunbookAbuseActivities } from './runbookAbuse';
import { createRunbookAuthActivities } from './runbookAuth';

/**
 * The runbook framework's bookkeeping: the run's row and policy at start, one row per step
 * outcome (and the step counter), the run's end, all through src/runbooks/projection.ts and
 * skipped while Postgres refuses writes. The metric moves only when a row's status really
 * changes, so retries and replays count nothing twice.
 */
export function createRunbookActivities(
  runtime: Pick<
    Runtime,
    'db' | 'logger' | 'metrics' | 'config' | 'providers' | 'temporal' | 'registry' | 'keys' | 'tokenKeys' | 'settings'
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
      await bestEffort(() => insertRun(db.writer, input));
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
      const changed = await bestEffort(() =>
        recordStep(db.writer, { workflowId: input.workflowId, step, status: input.status, summary: input.summary }),
      );
      if (changed) metrics.runbookSteps.inc({ runbook: input.runbook, step: input.step, outcome: input.status });
    },

    async finishRunbookRun(input: {
      workflowId: string;
      status: 'completed' | 'failed' | 'cancelled';
      summary: string;
    }): Promise<void> {
      await bestEffort(() => finishRun(db.writer, input));
    },
  };
}
