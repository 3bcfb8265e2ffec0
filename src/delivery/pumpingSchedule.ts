/**
 * The SMS pumping evaluation's schedule, ensured by every worker at start (and by `npm start`):
 * created once, brought to the configured interval when it exists already (the same call from
 * each worker is harmless), deleted when WARDEN_SMS_PUMPING_INTERVAL is `off`. Runs never
 * overlap: while one still counts, the next is skipped.
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Runtime } from '../runtime';
import { smsPumpingScheduleId, smsPumpingWorkflowId } from '../shared/smsPumping';

export async function ensureSmsPumpingSchedule(
  runtime: Pick<Runtime, 'config' | 'temporal' | 'logger'>,
): Promise<'off' | 'created' | 'updated'> {
  const { config } = runtime;
  const { taskQueue } = config.temporal;
  const scheduleId = smsPumpingScheduleId(taskQueue);
  const handle = runtime.temporal.client.schedule.getHandle(scheduleId);
  const { intervalSeconds } = config.smsPumping;
  if (intervalSeconds === null) {
    await handle.delete().catch((err: unknown) => {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    });
    return 'off';
  }
  const spec = { intervals: [{ every: `${intervalSeconds}s` }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' };
  try {
    await runtime.temporal.client.schedule.create({
      scheduleId,
      spec,
      action: {
        type: 'startWorkflow',
        workflowType: 'smsPumpingWorkflow',
        workflowId: smsPumpingWorkflowId(taskQueue),
        taskQueue,
        args: [],
      },
      policies,
    });
    runtime.logger
      .child({ component: 'sms-pumping' })
      .info({ scheduleId, intervalSeconds }, 'SMS pumping schedule created');
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await handle.update((previous) => ({ ...previous, spec, policies: { ...previous.policies, ...policies } }));
    return 'updated';
  }
}
