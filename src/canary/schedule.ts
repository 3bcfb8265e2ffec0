/**
 * The delivery canary's schedule, ensured by every worker at start when WARDEN_CANARY_USER is
 * set: created once, brought to the configured interval when it exists already (the same call
 * from each worker is harmless). Runs never overlap: a run still waiting makes the next skip.
 * Each run signs in on every canary channel (WARDEN_CANARY_CHANNELS, else the canary user's).
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Runtime } from '../runtime';
import { CANARY_CHANNELS, canaryScheduleId } from '../shared/canary';
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
 * In development the provider sandbox plays the canary's phone and mailbox: messages to the
 * canary user's number come back to Warden through the inbound webhook of the provider that
 * owns the number (Twilio here), signed as that provider signs; emails to its address come
 * back through the receiving side of the provider that sent them (a SendGrid Inbound Parse
 * post, an SES receipt through SNS). With live providers the operator points the number's
 * inbound webhook and the mailbox's receiving at the same URLs instead.
 */
async function registerSandboxInbound(runtime: Pick<Runtime, 'config' | 'db' | 'logger'>): Promise<void> {
  const { config } = runtime;
  const p = config.providers;
  if (!config.canary || config.env !== 'development') return;
  const log = runtime.logger.child({ component: 'canary' });
  const { rows } = await runtime.db.query<{ phone: string | null; email: string | null }>(
    'SELECT phone, email FROM users WHERE sub = $1',
    [config.canary.user],
  );
  const user = rows[0];
  const channels = config.canary.channels ?? CANARY_CHANNELS.filter((c) => (c === 'sms' ? user?.phone : user?.email));
  const control = async (path: string, body: Record<string, string>, what: string) => {
    const res = await fetch(`${p.sandboxUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(p.timeoutMs),
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`the sandbox refused the canary's ${what}: ${res.status}`);
  };
  const base = `${config.delivery.callbackBaseUrl}${CALLBACK_BASE}`;

  if (!user?.phone && !user?.email) log.warn('the canary user has neither phone nor email: its runs will fail');
  if (channels.includes('sms') && p.twilio.sandbox && user?.phone)
    await control(
      '/sandbox/inbound',
      { number: user.phone, provider: 'twilio', url: `${base}/twilio/inbound`, auth_token: p.twilio.authToken },
      'inbound number',
    );
  if (!channels.includes('email') || !user?.email || !(p.sendgrid.sandbox || p.ses.sandbox)) return;
  const { sendgridInboundToken, sesSnsToken, sesSnsSigningCert } = config.delivery;
  let mailboxes = 0;
  if (p.sendgrid.sandbox && sendgridInboundToken) {
    await control(
      '/sandbox/mailboxes',
      { address: user.email, provider: 'sendgrid', url: `${base}/sendgrid/inbound/${sendgridInboundToken}` },
      'mailbox',
    );
    mailboxes++;
  }
  // the sandbox signs SNS messages with a key of its own: Warden checks them only without a pinned certificate
  if (p.ses.sandbox && sesSnsToken && !sesSnsSigningCert) {
    await control(
      '/sandbox/mailboxes',
      { address: user.email, provider: 'ses', url: `${base}/ses/${sesSnsToken}/inbound` },
      'mailbox',
    );
    mailboxes++;
  }
  if (mailboxes === 0)
    log.warn(
      'no inbound email endpoint for the sandbox to hand the canary email back to (SENDGRID_INBOUND_TOKEN, or SES_SNS_TOKEN without SES_SNS_SIGNING_CERT): its email runs will time out',
    );
}
