/**
 * The one way Warden keeps a periodic workflow's schedule: ensured by every worker at start (and
 * by `npm start`), created once, brought to the configured interval when it exists already (the
 * same call from each worker is harmless), deleted when the interval is `null` (switched off).
 * Runs never overlap: while one still runs, the next is skipped.
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Runtime } from '../runtime';

export interface IntervalSchedule {
  scheduleId: string;
  workflowType: string;
  workflowId: string;
  taskQueue: string;
  /** null: the schedule is switched off, and deleted if it exists */
  intervalSeconds: number | null;
  /** the logger component and the log line's subject */
  component: string;
}

export async function ensureIntervalSchedule(
  runtime: Pick<Runtime, 'temporal' | 'logger'>,
  schedule: IntervalSchedule,
): Promise<'off' | 'created' | 'updated'> {
  const { scheduleId, intervalSeconds } = schedule;
  const handle = runtime.temporal.client.schedule.getHandle(scheduleId);
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
        workflowType: schedule.workflowType,
        workflowId: schedule.workflowId,
        taskQueue: schedule.taskQueue,
        args: [],
      },
      policies,
    });
    runtime.logger
      .child({ component: schedule.component })
      .info({ scheduleId, intervalSeconds }, `${schedule.component} schedule created`);
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await handle.update((previous) => ({ ...previous, spec, policies: { ...previous.policies, ...policies } }));
    return 'updated';
  }
}
