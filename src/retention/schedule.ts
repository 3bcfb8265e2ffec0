/**
 * Retention's schedule, ensured by every worker at start (and by `npm start`): created once,
 * brought to the configured interval when it exists already (the same call from each worker is
 * harmless). Runs never overlap: while one is still deleting, the next is skipped.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Runtime } from '../runtime';
import { retentionScheduleId, retentionWorkflowId } from '../shared/retention';

export async function ensureRetentionSchedule(
  runtime: Pick<Runtime, 'config' | 'temporal' | 'logger'>,
): Promise<'created' | 'updated'> {
  const { config } = runtime;
  const { taskQueue } = config.temporal;
  const scheduleId = retentionScheduleId(taskQueue);
  const spec = { intervals: [{ every: `${config.retention.intervalSeconds}s` }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' };
  const log = runtime.logger.child({ component: 'retention' });
  try {
    await runtime.temporal.client.schedule.create({
      scheduleId,
      spec,
      action: {
        type: 'startWorkflow',
        workflowType: 'retentionWorkflow',
        workflowId: retentionWorkflowId(taskQueue),
        taskQueue,
        args: [],
      },
      policies,
    });
    log.info({ scheduleId, intervalSeconds: config.retention.intervalSeconds }, 'retention schedule created');
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await runtime.temporal.client.schedule
      .getHandle(scheduleId)
      .update((previous) => ({ ...previous, spec, policies: { ...previous.policies, ...policies } }));
    return 'updated';
  }
}
