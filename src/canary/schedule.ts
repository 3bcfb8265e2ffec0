/**
 * The delivery canary's schedule, ensured by every worker at start when WARDEN_CANARY_USER is
 * set (src/temporal/schedules.ts says how): a run still waiting makes the next skip.
 * Each run signs in on every canary channel (WARDEN_CANARY_CHANNELS, else the canary user's).
 */
import type { Runtime } from '../runtime';
import { CANARY_CHANNELS, canaryScheduleId } from '../shared/canary';
import { CALLBACK_BASE } from '../api/callbacks/common';
import { ensureIntervalSchedule } from '../temporal/schedules';

export async function ensureCanarySchedule(
  runtime: Pick<Runtime, 'config' | 'temporal' | 'logger' | 'db'>,
): Promise<'off' | 'created' | 'updated'> {
  const { config } = runtime;
  const canary = config.canary;
  if (!canary) return 'off';
  await registerSandboxInbound(runtime);
  return ensureIntervalSchedule(runtime, {
    scheduleId: canaryScheduleId(config.temporal.taskQueue),
    workflowType: 'canaryWorkflow',
    workflowId: `canary-${config.temporal.taskQueue}`,
    taskQueue: config.temporal.taskQueue,
    intervalSeconds: canary.intervalSeconds,
    component: 'canary',
  });
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
