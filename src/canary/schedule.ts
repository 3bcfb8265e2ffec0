/**
 * The delivery canary's schedule, ensured by every worker at start when WARDEN_CANARY_USER is
 * set: created once, brought to the configured interval when it exists already (the same call
 * from each worker is harmless). Runs never overlap: a run still waiting makes the next skip.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Runtime } from '../runtime';
import { canaryScheduleId } from '../shared/canary';
import { CALLBACK_BASE } from '../api/callbacks/common';

export async function ensureCanarySchedule(
  runtime: Pick<Runtime, 'config' | 'temporal' | 'logger' | 'db'>,
): Promise<'off' | 'created' | 'updated'> {
  const { config } = runtime;
  const canary = config.canary;
  if (!canary) return 'off';
  const scheduleId = canaryScheduleId(config.temporal.taskQueue);
  const spec = { intervals: [{ every: `${canary.intervalSeconds}s` }] };
  const log = runtime.logger.child({ component: 'canary' });
  await registerSandboxInbound(runtime);
  try {
    await runtime.temporal.client.schedule.create({
      scheduleId,
      spec,
      action: {
        type: 'startWorkflow',
        workflowType: 'canaryWorkflow',
        workflowId: `canary-${config.temporal.taskQueue}`,
        taskQueue: config.temporal.taskQueue,
        args: [],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    });
    log.info({ scheduleId, intervalSeconds: canary.intervalSeconds }, 'canary schedule created');
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await runtime.temporal.client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec }));
    return 'updated';
  }
}

/**
 * In development the provider sandbox plays the canary's phone: messages to the canary user's
 * number come back to Warden through the inbound webhook of the provider that owns the number
 * (Twilio here), signed as that provider signs. With live SMS providers the operator points the
 * number's inbound webhook at the same URL instead.
 */
async function registerSandboxInbound(runtime: Pick<Runtime, 'config' | 'db' | 'logger'>): Promise<void> {
  const { config } = runtime;
  const p = config.providers;
  if (!config.canary || config.env !== 'development' || !p.twilio.sandbox) return;
  const { rows } = await runtime.db.query<{ phone: string | null }>('SELECT phone FROM users WHERE sub = $1', [
    config.canary.user,
  ]);
  const phone = rows[0]?.phone;
  if (!phone) {
    runtime.logger.warn({ component: 'canary' }, 'the canary user has no phone: its runs will time out');
    return;
  }
  const res = await fetch(`${p.sandboxUrl}/sandbox/inbound`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      number: phone,
      provider: 'twilio',
      url: `${config.delivery.callbackBaseUrl}${CALLBACK_BASE}/twilio/inbound`,
      auth_token: p.twilio.authToken,
    }),
    signal: AbortSignal.timeout(p.timeoutMs),
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`the sandbox refused the canary's inbound number: ${res.status}`);
}
