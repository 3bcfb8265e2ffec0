/**
 * The SMS pumping evaluation's schedule (src/temporal/schedules.ts says how every periodic
 * workflow's is kept), deleted when WARDEN_SMS_PUMPING_INTERVAL is `off`.
 */
import type { Runtime } from '../runtime';
import { smsPumpingScheduleId, smsPumpingWorkflowId } from '../shared/smsPumping';
import { ensureIntervalSchedule } from '../temporal/schedules';

export async function ensureSmsPumpingSchedule(
  runtime: Pick<Runtime, 'config' | 'temporal' | 'logger'>,
): Promise<'off' | 'created' | 'updated'> {
  const { taskQueue } = runtime.config.temporal;
  return ensureIntervalSchedule(runtime, {
    scheduleId: smsPumpingScheduleId(taskQueue),
    workflowType: 'smsPumpingWorkflow',
    workflowId: smsPumpingWorkflowId(taskQueue),
    taskQueue,
    intervalSeconds: runtime.config.smsPumping.intervalSeconds,
    component: 'sms-pumping',
  });
}
