import { continueAsNew, workflowInfo } from '@temporalio/workflow';
import {
  RETENTION_HISTORY_LIMIT,
  type RetentionInput,
  type RetentionProgress,
  type RetentionResult,
} from '../../shared/retention';
import { opsActivities } from '../opsActivities';

/**
 * One retention run, started by the retention schedule (src/retention/schedule.ts; overlap
 * skip, so runs never overlap): table after table in RETENTION_TABLES' order (a challenge's rows
 * before the challenges), batch after batch until a batch deletes fewer rows than the batch
 * size. The horizons are fixed when the run starts. A long run continues as new, carrying its
 * progress, before its history grows long. The activities run on the ops task queue, so they
 * never take an activity slot a sign-in needs.
 */
export async function retentionWorkflow(input: RetentionInput = {}): Promise<RetentionResult> {
  const { planRetention, deleteRetentionBatch, finishRetentionRun } = opsActivities({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
  });
  let progress: RetentionProgress;
  if (input.progress) {
    progress = { ...input.progress, runs: input.progress.runs + 1 };
  } else {
    const start = await planRetention();
    if (start.status === 'read_only') return { status: 'read_only', deleted: {}, batches: {}, runs: 1 };
    progress = { plan: start.plan, next: 0, deleted: {}, batches: {}, runs: 1 };
  }
  const limit = input.historyLimit ?? RETENTION_HISTORY_LIMIT;
  const { plan } = progress;
  for (; progress.next < plan.targets.length; progress.next++) {
    const { table, before } = plan.targets[progress.next]!;
    for (;;) {
      const info = workflowInfo();
      if (info.continueAsNewSuggested || info.historyLength >= limit) {
        await continueAsNew<typeof retentionWorkflow>({ ...input, progress });
      }
      const deleted = await deleteRetentionBatch({ table, before, limit: plan.batch });
      progress.deleted[table] = (progress.deleted[table] ?? 0) + deleted;
      progress.batches[table] = (progress.batches[table] ?? 0) + 1;
      if (deleted < plan.batch) break;
    }
  }
  const { deleted, batches, runs } = progress;
  await finishRetentionRun({ deleted, batches, runs });
  return { status: 'done', deleted, batches, runs };
}
