import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/process';
import type { RunbookState } from '../../src/shared/runbooks';
import { initiate, messagesFor, putSettings, waitFor, waitForStatus } from '../helpers/authClient';
import { clearFaults, deliveryOutcome, raiseRateLimits, resetDelivery, setFault } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

/**
 * Seed section 2 against the real stack: the sandbox fails Twilio (and its status page says
 * so), the runbook scopes the failures, routes SMS to Plivo, polls the status page on durable
 * timers, restores Twilio once the page says "none" for N checks, resends the outage's
 * failures whose challenges are still open (once each) and validates with test-user's
 * synthetic flows through the public API. Both SMS providers down turns SMS OTP off while
 * magic links keep working; cancelling mid-watch puts back what the run changed.
 */
describe('provider-outage runbook', () => {
  let h: Harness;
  const admin = (method: 'GET' | 'POST', url: string, payload?: unknown) =>
    h.admin.inject({ method, url: `/admin/api/v1${url}`, headers: h.adminHeaders, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
  const stepOf = (s: RunbookState, name: string) => s.steps.find((x) => x.name === name)!;
  const until = (id: string, what: string, ok: (s: RunbookState) => boolean, ms = 90_000) =>
    waitFor(what, async () => {
      const res = await admin('GET', `/runbooks/runs/${id}`);
      const s = res.json<RunbookState>();
      return res.statusCode === 200 && s.steps && ok(s) ? s : undefined;
    }, ms);
  const setStatus = async (provider: string, indicator: string) => {
    const res = await fetch(`${h.sandbox.url}/sandbox/status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ provider, indicator }) });
    expect(res.status).toBe(200);
  };
  const route = async (channel: string) => (await admin('GET', `/delivery/routes/${channel}`)).json<{ mode: string; enabled: boolean; primary_provider: string; updated_by: string }>();
  /** An initiation whose every send fails: a delivery_failures row. */
  const failed = async (method: 'otp' | 'magic-link', user: string) => {
    const res = await initiate(h, method, user);
    expect(res.statusCode).toBe(202);
    const id = res.json<{ challenge_id: string }>().challenge_id;
    expect(await deliveryOutcome(h, id, 1, 60_000)).toMatchObject({ delivery_outcome: 'failed' });
    return id;
  };
  const delivered = async (user: string) => {
    const res = await initiate(h, 'otp', user);
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json<{ challenge_id: string }>().challenge_id;
    return waitFor(`the code of ${id}`, async () => (await messagesFor(h, id))[0], 30_000);
  };

  beforeAll(async () => {
    h = await startHarness({ listen: true, env: { WARDEN_PUBLIC_PORT: String(await freePort()), WARDEN_TRUSTED_PROXIES: '127.0.0.1' } });
    await raiseRateLimits(h);
  }, 60_000);
  afterAll(async () => h?.close());
  afterEach(async () => {
    for (const p of ['twilio', 'plivo', 'sendgrid', 'ses']) await setStatus(p, 'none');
    await resetDelivery(h);
  });

  it('Twilio down: switches SMS to Plivo, polls, restores Twilio, resends the open failures once each and validates', async () => {
    // the outage's first minutes: nothing gets through, on either channel
    for (const provider of ['twilio', 'plivo', 'sendgrid', 'ses']) await setFault(h, { provider, mode: 'error', status: 503 });
    await setStatus('twilio', 'major');
    const [alice, bob] = [await failed('otp', 'alice'), await failed('otp', 'bob')];
    const email = await failed('magic-link', 'test-user-3');
    await putSettings(h, { otp_ttl_seconds: 5 });
    const expired = await failed('otp', 'test-user-2').finally(() => putSettings(h, { otp_ttl_seconds: 300 }));
    await waitForStatus(h, expired, 'expired', 30_000);
    await clearFaults(h);
    await setFault(h, { provider: 'twilio', mode: 'error', status: 503 }); // Twilio alone stays down

    const start = await admin('POST', '/runbooks/provider-outage', { severity: 'P0', by: 'oncall', params: { provider: 'twilio', pollSeconds: 1, healthyChecks: 3 } });
    expect(start.statusCode, start.body).toBe(201);
    const id = start.json<{ workflow_id: string }>().workflow_id;

    let s = await until(id, 'the watch', (x) => stepOf(x, 'watch').status === 'running' && Number((x.detail?.watch as { checks?: number })?.checks) >= 2);
    const scope = stepOf(s, 'scope').result as { provider: string; failures: Array<{ channel: string; unresolved: number }>; attempts: Array<{ provider: string; failedCalls: number }> };
    expect(scope.provider).toBe('twilio');
    expect(scope.failures.filter((f) => f.channel === 'sms').reduce((n, f) => n + f.unresolved, 0)).toBe(3);
    expect(scope.attempts.find((a) => a.provider === 'twilio')?.failedCalls).toBeGreaterThan(0);
    expect(stepOf(s, 'status_page').summary).toContain('twilio status page: major');
    expect(stepOf(s, 'switch_to_backup')).toMatchObject({ status: 'succeeded', approval: { how: 'auto_p0_containment' } });
    expect(stepOf(s, 'disable_channel').status).toBe('pending');
    expect(s.detail?.watch).toMatchObject({ provider: 'twilio', indicator: 'major', streak: 0, pollSeconds: 1 });
    expect(await route('sms')).toMatchObject({ mode: 'backup', enabled: true, updated_by: `workflow:${id}` });
    // a new code goes straight to Plivo: Twilio is not even tried
    const during = await delivered('test-user');
    expect(during.provider).toBe('plivo');
    const twilioTried = await h.sql('SELECT 1 FROM delivery_attempts WHERE idempotency_key = $1 AND provider = $2', [during.idempotency_key, 'twilio']);
    expect(twilioTried).toEqual([]);

    // Twilio recovers and says so
    await clearFaults(h);
    await setStatus('twilio', 'none');
    s = await until(id, 'the run to complete', (x) => x.status !== 'running', 120_000);
    expect(s.status, JSON.stringify(s.steps)).toBe('completed');
    expect(stepOf(s, 'watch').summary).toContain('for 3 consecutive checks');
    expect(stepOf(s, 'restore_primary').summary).toContain('sms routed back to its primary');
    expect(await route('sms')).toMatchObject({ mode: 'auto', enabled: true, primary_provider: 'twilio' });

    // resent once each: the open SMS failures; not the expired one, not the email one
    expect(stepOf(s, 'resend_failed').result).toMatchObject({ failures: 2, outcomes: { queued: 2 } });
    for (const challenge of [alice, bob]) {
      const sent = await waitFor(`the resend of ${challenge}`, async () => {
        const m = await messagesFor(h, challenge);
        return m.length > 0 ? m : undefined;
      }, 30_000);
      expect(sent.map((m) => [m.provider, m.idempotency_key])).toEqual([['twilio', `challenge-${challenge}/send-2`]]);
    }
    expect(await messagesFor(h, expired)).toEqual([]);
    expect(await messagesFor(h, email)).toEqual([]);
    // validated through the public API: test-user got an OTP and a link, both verified
    expect(stepOf(s, 'validate')).toMatchObject({ status: 'succeeded', summary: 'test-user: SMS OTP delivered and verified, magic link delivered and verified' });
    const validated = await h.sql<{ method: string; status: string }>(
      `SELECT method, status FROM auth_challenges WHERE user_id = 'test-user' AND status = 'verified' ORDER BY created_at`,
    );
    expect(validated.map((r) => r.method)).toEqual(['sms_otp', 'magic_link']);
    // and every step is in the run's log; nothing is resent twice by a second look
    for (const step of ['scope', 'status_page', 'switch_to_backup', 'watch', 'restore_primary', 'resend_failed', 'validate']) {
      expect(s.log.some((l) => l.message.includes(step) || l.message.includes(stepOf(s, step).title))).toBe(true);
    }
    await new Promise((r) => setTimeout(r, 1000));
    for (const challenge of [alice, bob]) expect(await messagesFor(h, challenge)).toHaveLength(1);
  }, 240_000);

  it('both SMS providers down: SMS OTP answers 503 channel_disabled while magic links work, then SMS comes back', async () => {
    for (const provider of ['twilio', 'plivo']) {
      await setFault(h, { provider, mode: 'error', status: 503 });
      await setStatus(provider, 'major');
    }
    const start = await admin('POST', '/runbooks/provider-outage', { severity: 'P0', by: 'oncall', params: { provider: 'twilio', pollSeconds: 1, healthyChecks: 2 } });
    expect(start.statusCode, start.body).toBe(201);
    const id = start.json<{ workflow_id: string }>().workflow_id;
    const s = await until(id, 'the degradation', (x) => stepOf(x, 'disable_channel').status === 'succeeded' && stepOf(x, 'watch').status === 'running');
    expect(stepOf(s, 'disable_channel').summary).toContain('SMS OTP off (initiate answers 503 channel_disabled), magic link stays on');
    expect(stepOf(s, 'switch_to_backup').status).toBe('pending'); // the backup is down too: no switch
    expect(await route('sms')).toMatchObject({ enabled: false, mode: 'auto' });
    expect(await route('email')).toMatchObject({ enabled: true });

    const refused = await initiate(h, 'otp', 'alice');
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ error: 'channel_disabled' });
    const link = await initiate(h, 'magic-link', 'alice');
    expect(link.statusCode).toBe(202);
    const linkId = link.json<{ challenge_id: string }>().challenge_id;
    expect((await waitFor('the magic link', async () => (await messagesFor(h, linkId))[0], 30_000)).provider).toBe('sendgrid');

    await clearFaults(h);
    for (const provider of ['twilio', 'plivo']) await setStatus(provider, 'none');
    const done = await until(id, 'the run to complete', (x) => x.status !== 'running', 120_000);
    expect(done.status, JSON.stringify(done.steps)).toBe('completed');
    expect(stepOf(done, 'restore_primary').summary).toBe('SMS OTP back on');
    expect(await route('sms')).toMatchObject({ enabled: true, mode: 'auto' });
    expect((await delivered('alice')).provider).toBe('twilio');
    expect(stepOf(done, 'validate').status).toBe('succeeded');
  }, 180_000);

  it('both email providers down: magic links answer 503 channel_disabled while SMS OTP works (the symmetric case)', async () => {
    for (const provider of ['sendgrid', 'ses']) {
      await setFault(h, { provider, mode: 'error', status: 503 });
      await setStatus(provider, 'critical');
    }
    const start = await admin('POST', '/runbooks/provider-outage', { severity: 'P0', by: 'oncall', params: { provider: 'sendgrid', pollSeconds: 1, healthyChecks: 1 } });
    const id = start.json<{ workflow_id: string }>().workflow_id;
    await until(id, 'the degradation', (x) => stepOf(x, 'disable_channel').status === 'succeeded');
    expect(await route('email')).toMatchObject({ enabled: false });
    expect((await initiate(h, 'magic-link', 'bob')).json()).toMatchObject({ error: 'channel_disabled' });
    expect((await delivered('bob')).provider).toBe('twilio');
    await clearFaults(h);
    for (const provider of ['sendgrid', 'ses']) await setStatus(provider, 'none');
    const done = await until(id, 'the run to complete', (x) => x.status !== 'running', 120_000);
    expect(done.status, JSON.stringify(done.steps)).toBe('completed');
    expect(stepOf(done, 'restore_primary').summary).toBe('magic link back on');
    expect(await route('email')).toMatchObject({ enabled: true });
  }, 180_000);

  it('opened as an incident at P1: waits for approvals, polls every 30 s by default, and cancelling mid-watch puts the route and the channel back', async () => {
    await setFault(h, { provider: 'twilio', mode: 'error', status: 503 });
    await setStatus('twilio', 'major');
    const opened = await admin('POST', '/incidents', { type: 'provider_outage', severity: 'P1', title: 'Twilio failing', affected: { providers: ['twilio'] } });
    expect(opened.statusCode, opened.body).toBe(201);
    const incident = opened.json<{ id: string }>().id;
    const id = `${incident}-runbook`;

    let s = await until(id, 'the switch gate', (x) => stepOf(x, 'switch_to_backup').status === 'awaiting_approval');
    expect(s.detail?.params).toMatchObject({ pollSeconds: 30, healthyChecks: 3 });
    expect(await route('sms')).toMatchObject({ mode: 'auto' }); // nothing changes before the approval
    expect((await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'switch_to_backup', by: 'pat' })).statusCode).toBe(200);
    s = await until(id, 'the first check', (x) => Number((x.detail?.watch as { checks?: number } | undefined)?.checks) >= 1);
    const watch = s.detail!.watch as { pollSeconds: number; lastCheckAt: string; nextCheckAt: string; indicator: string };
    expect(watch).toMatchObject({ pollSeconds: 30, indicator: 'major' });
    expect(Date.parse(watch.nextCheckAt) - Date.parse(watch.lastCheckAt)).toBe(30_000);
    expect(await route('sms')).toMatchObject({ mode: 'backup', enabled: true });

    // Plivo goes down during the watch: the next check (30 s later, a durable timer) turns SMS off, after approval
    await setStatus('plivo', 'major');
    await until(id, 'the degradation gate', (x) => stepOf(x, 'disable_channel').status === 'awaiting_approval', 90_000);
    expect((await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'disable_channel', by: 'pat' })).statusCode).toBe(200);
    await until(id, 'the degradation', (x) => stepOf(x, 'disable_channel').status === 'succeeded');
    expect((await initiate(h, 'otp', 'bob')).json()).toMatchObject({ error: 'channel_disabled' });

    const cancel = await admin('POST', `/runbooks/runs/${id}/cancel`, { by: 'pat', reason: 'Twilio confirmed the fix' });
    expect(cancel.statusCode, cancel.body).toBe(202);
    s = await until(id, 'the cancellation', (x) => x.status === 'cancelled');
    expect(stepOf(s, 'switch_to_backup')).toMatchObject({ status: 'compensated', compensationSummary: 'sms routed back to its primary' });
    expect(stepOf(s, 'disable_channel')).toMatchObject({ status: 'compensated', compensationSummary: 'SMS OTP back on' });
    expect(stepOf(s, 'resend_failed').compensation).toEqual({ compensable: false, why: 'a sent message cannot be unsent: the resends stay sent' });
    expect(await route('sms')).toMatchObject({ mode: 'auto', enabled: true });
    expect((await initiate(h, 'otp', 'bob')).statusCode).toBe(202);
    const timeline = (await admin('GET', `/incidents/${incident}`)).json<{ timeline: Array<{ message: string }> }>().timeline.map((e) => e.message);
    expect(timeline.some((m) => m.includes('undone: sms routed back to its primary'))).toBe(true);
    expect(timeline.some((m) => m.includes('twilio status page: major'))).toBe(true);
  }, 180_000);
});
