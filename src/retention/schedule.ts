/**
 * Retention's schedule (src/temporal/schedules.ts says how every periodic workflow's is kept):
 * while one run is still deleting, the next is skipped.
 */
import type { Runtime } from '../runtime';
import { retentionScheduleId, retentionWorkflowId } from '../shared/retention';
import { ensureIntervalSchedule } from '../temporal/schedules';

export async function ensureRetentionSchedule(
  runtime: Pick<Runtime, 'config' | 'temporal' | 'logger'>,
): Promise<'off' | 'created' | 'updated'> {
  const { taskQueue } = runtime.config.temporal;
  return ensureIntervalSchedule(runtime, {
    scheduleId: retentionScheduleId(taskQueue),
    workflowType: 'retentionWorkflow',
    workflowId: retentionWorkflowId(taskQueue),
    taskQueue,
    intervalSeconds: runtime.config.retention.intervalSeconds,
    component: 'retention',
  });
}
