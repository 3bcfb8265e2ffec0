/**
 * The provider-outage runbook against the real stack: the sandbox fails Twilio (and its status page says
 * so), the runbook scopes the failures, routes SMS to Plivo, polls the status page on durable
 * timers, restores Twilio once the page says "none" for N checks, resends the outage's
 * failures whose challenges are still open (once each) and validates with test-user's
 * synthetic flows through the public API. Both SMS providers down turns SMS OTP off while
 * magic links keep working; cancelling mid-watch puts back what the run changed. Users refused
 * by the per-user limit while retrying failed SMS get the limit raised for the run and their
 * rate-limit state cleared; the limits go back at the end (or on cancellation).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/process';
import type { RunbookState } from '../../src/shared/runbooks';
import { initiate, messagesFor, putSettings, waitFor, waitForStatus } from '../helpers/authClient';
import { clearFaults, deliveryOutcome, raiseRateLimits, resetDelivery, setFault } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('provider-outage runbook', () => {
  let h: Harness;
  const admin = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: h.adminHeaders,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const stepOf = (s: RunbookState, name: string) => s.steps.find((x) => x.name === name)!;
  const until = (id: string, what: string, ok: (s: RunbookState) => boolean, ms = 90_000) =>
    waitFor(
      what,
      async () => {
        const res = await admin('GET', `/runbooks/runs/${id}`);
        const s = res.json<RunbookState>();
        return res.statusCode === 200 && s.steps && ok(s) ? s : undefined;
      },
      ms,
    );
  const setStatus = async (provider: string, indicator: string) => {
    const res = await fetch(`${h.sandbox.url}/sandbox/status`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider, indicator }),
    });
    expect(res.status).toBe(200);
  };
  const route = async (channel: string) =>
    (await admin('GET', `/delivery/routes/${channel}`)).json<{
      mode: string;
      enabled: boolean;
      primary_provider: string;
      updated_by: string;
    }>();
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
    h = await startHarness({
      listen: true,
      env: { WARDEN_PUBLIC_PORT: String(await freePort()), WARDEN_TRUSTED_PROXIES: '127.0.0.1' },
    });
    await raiseRateLimits(h);
  }, 60_000);
  afterAll(async () => h?.close());
  afterEach(async () => {
    for (const p of ['twilio', 'plivo', 'sendgrid', 'ses']) await setStatus(p, 'none');
    await resetDelivery(h);
  });

  it('Twilio down: switches SMS to Plivo, polls, restores Twilio, resends the open failures once each and validates', async () => {
    // the outage's first minutes: nothing gets through, on either channel
    for (const provider of ['twilio', 'plivo', 'sendgrid', 'ses'])
      await setFault(h, { provider, mode: 'error', status: 503 });
    await setStatus('twilio', 'major');
    const [alice, bob] = [await failed('otp', 'alice'), await failed('otp', 'bob')];
    const email = await failed('magic-link', 'test-user-3');
    await putSettings(h, { otp_ttl_seconds: 5 });
    const expired = await failed('otp', 'test-user-2').finally(() => putSettings(h, { otp_ttl_seconds: 300 }));
    await waitForStatus(h, expired, 'expired', 30_000);
    await clearFaults(h);
    await setFault(h, { provider: 'twilio', mode: 'error', status: 503 }); // Twilio alone stays down

    const start = await admin('POST', '/runbooks/provider-outage', {
      severity: 'P0',
      by: 'oncall',
      params: { provider: 'twilio', pollSeconds: 1, healthyChecks: 3 },
    });
    expect(start.statusCode, start.body).toBe(201);
    const id = start.json<{ workflow_id: string }>().workflow_id;

    let s = await until(
      id,
      'the watch',
      (x) => stepOf(x, 'watch').status === 'running' && Number((x.detail?.watch as { checks?: number })?.checks) >= 2,
    );
    const scope = stepOf(s, 'scope').result as {
      provider: string;
      failures: Array<{ channel: string; unresolved: number }>;
      attempts: Array<{ provider: string; failedCalls: number }>;
    };
    expect(scope.provider).toBe('twilio');
    expect(scope.failures.filter((f) => f.channel === 'sms').reduce((n, f) => n + f.unresolved, 0)).toBe(3);
    expect(scope.attempts.find((a) => a.provider === 'twilio')?.failedCalls).toBeGreaterThan(0);
    expect(stepOf(s, 'status_page').summary).toContain('twilio status page: major');
    expect(stepOf(s, 'switch_to_backup')).toMatchObject({
      status: 'succeeded',
      approval: { how: 'auto_p0_containment' },
    });
    expect(stepOf(s, 'disable_channel').status).toBe('pending');
    expect(s.detail?.watch).toMatchObject({ provider: 'twilio', indicator: 'major', streak: 0, pollSeconds: 1 });
    expect(await route('sms')).toMatchObject({ mode: 'backup', enabled: true, updated_by: `workflow:${id}` });
    // a new code goes straight to Plivo: Twilio is not even tried
    const during = await delivered('test-user');
    expect(during.provider).toBe('plivo');
    const twilioTried = await h.sql('SELECT 1 FROM delivery_attempts WHERE idempotency_key = $1 AND provider = $2', [
      during.idempotency_key,
      'twilio',
    ]);
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
      const sent = await waitFor(
        `the resend of ${challenge}`,
        async () => {
          const m = await messagesFor(h, challenge);
          return m.length > 0 ? m : undefined;
        },
        30_000,
      );
      expect(sent.map((m) => [m.provider, m.idempotency_key])).toEqual([['twilio', `challenge-${challenge}/send-2`]]);
    }
    expect(await messagesFor(h, expired)).toEqual([]);
    expect(await messagesFor(h, email)).toEqual([]);
    // validated through the public API: test-user got an OTP and a link, both verified
    expect(stepOf(s, 'validate')).toMatchObject({
      status: 'succeeded',
      summary: 'test-user: SMS OTP delivered and verified, magic link delivered and verified',
    });
    const validated = await h.sql<{ method: string; status: string }>(
      `SELECT method, status FROM auth_challenges WHERE user_id = 'test-user' AND status = 'verified' ORDER BY created_at`,
    );
    expect(validated.map((r) => r.method)).toEqual(['sms_otp', 'magic_link']);
    // and every step is in the run's log; nothing is resent twice by a second look
    for (const step of [
      'scope',
      'status_page',
      'switch_to_backup',
      'watch',
      'restore_primary',
      'resend_failed',
      'validate',
    ]) {
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
    const start = await admin('POST', '/runbooks/provider-outage', {
      severity: 'P0',
      by: 'oncall',
      params: { provider: 'twilio', pollSeconds: 1, healthyChecks: 2 },
    });
    expect(start.statusCode, start.body).toBe(201);
    const id = start.json<{ workflow_id: string }>().workflow_id;
    const s = await until(
      id,
      'the degradation',
      (x) => stepOf(x, 'disable_channel').status === 'succeeded' && stepOf(x, 'watch').status === 'running',
    );
    expect(stepOf(s, 'disable_channel').summary).toContain(
      'SMS OTP off (initiate answers 503 channel_disabled), magic link stays on',
    );
    expect(stepOf(s, 'switch_to_backup').status).toBe('pending'); // the backup is down too: no switch
    expect(await route('sms')).toMatchObject({ enabled: false, mode: 'auto' });
    expect(await route('email')).toMatchObject({ enabled: true });

    const refused = await initiate(h, 'otp', 'alice');
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ error: 'channel_disabled' });
    const link = await initiate(h, 'magic-link', 'alice');
    expect(link.statusCode).toBe(202);
    const linkId = link.json<{ challenge_id: string }>().challenge_id;
    expect((await waitFor('the magic link', async () => (await messagesFor(h, linkId))[0], 30_000)).provider).toBe(
      'sendgrid',
    );

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
    const start = await admin('POST', '/runbooks/provider-outage', {
      severity: 'P0',
      by: 'oncall',
      params: { provider: 'sendgrid', pollSeconds: 1, healthyChecks: 1 },
    });
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
    const opened = await admin('POST', '/incidents', {
      type: 'provider_outage',
      severity: 'P1',
      title: 'Twilio failing',
      affected: { providers: ['twilio'] },
    });
    expect(opened.statusCode, opened.body).toBe(201);
    const incident = opened.json<{ id: string }>().id;
    const id = `${incident}-runbook`;

    let s = await until(id, 'the switch gate', (x) => stepOf(x, 'switch_to_backup').status === 'awaiting_approval');
    expect(s.detail?.params).toMatchObject({ pollSeconds: 30, healthyChecks: 3 });
    expect(await route('sms')).toMatchObject({ mode: 'auto' }); // nothing changes before the approval
    expect(
      (await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'switch_to_backup', by: 'pat' })).statusCode,
    ).toBe(200);
    s = await until(
      id,
      'the first check',
      (x) => Number((x.detail?.watch as { checks?: number } | undefined)?.checks) >= 1,
    );
    const watch = s.detail!.watch as {
      pollSeconds: number;
      lastCheckAt: string;
      nextCheckAt: string;
      indicator: string;
    };
    expect(watch).toMatchObject({ pollSeconds: 30, indicator: 'major' });
    expect(Date.parse(watch.nextCheckAt) - Date.parse(watch.lastCheckAt)).toBe(30_000);
    expect(await route('sms')).toMatchObject({ mode: 'backup', enabled: true });

    // Plivo goes down during the watch: the next check (30 s later, a durable timer) turns SMS off, after approval
    await setStatus('plivo', 'major');
    await until(id, 'the degradation gate', (x) => stepOf(x, 'disable_channel').status === 'awaiting_approval', 90_000);
    expect(
      (await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'disable_channel', by: 'pat' })).statusCode,
    ).toBe(200);
    await until(id, 'the degradation', (x) => stepOf(x, 'disable_channel').status === 'succeeded');
    expect((await initiate(h, 'otp', 'bob')).json()).toMatchObject({ error: 'channel_disabled' });

    const cancel = await admin('POST', `/runbooks/runs/${id}/cancel`, {
      by: 'pat',
      reason: 'Twilio confirmed the fix',
    });
    expect(cancel.statusCode, cancel.body).toBe(202);
    s = await until(id, 'the cancellation', (x) => x.status === 'cancelled');
    expect(stepOf(s, 'switch_to_backup')).toMatchObject({
      status: 'compensated',
      compensationSummary: 'sms routed back to its primary',
    });
    expect(stepOf(s, 'disable_channel')).toMatchObject({
      status: 'compensated',
      compensationSummary: 'SMS OTP back on',
    });
    expect(stepOf(s, 'resend_failed').compensation).toEqual({
      compensable: false,
      why: 'a sent message cannot be unsent: the resends stay sent',
    });
    expect(await route('sms')).toMatchObject({ mode: 'auto', enabled: true });
    expect((await initiate(h, 'otp', 'bob')).statusCode).toBe(202);
    const timeline = (await admin('GET', `/incidents/${incident}`))
      .json<{ timeline: Array<{ message: string }> }>()
      .timeline.map((e) => e.message);
    expect(timeline.some((m) => m.includes('undone: sms routed back to its primary'))).toBe(true);
    expect(timeline.some((m) => m.includes('twilio status page: major'))).toBe(true);
  }, 180_000);

  // Room to retry for users whose deliveries failed: the per-user limit raised for the run.
  // These run last: the refusals they cause stay in the window of any later run's scope.
  describe('retry relief', () => {
    // this deployment's normal limits (not the defaults, so a restore to hard-coded values would show)
    const NORMAL = {
      per_user: { window_seconds: 300, max_attempts: 4 },
      per_ip: { window_seconds: 300, max_attempts: 10_000 },
    };
    const RAISED = { per_user: { window_seconds: 300, max_attempts: 8 }, per_ip: NORMAL.per_ip };
    const limits = async () => (await admin('GET', '/ratelimits')).json<typeof NORMAL>();
    const addUser = (sub: string, n: number) =>
      h.sql('INSERT INTO users (sub, phone, email) VALUES ($1, $2, $3) ON CONFLICT (sub) DO NOTHING', [
        sub,
        `+155555501${40 + n}`,
        `${sub}@example.com`,
      ]);
    const rows = async (user: string) =>
      (await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM rate_limit_attempts WHERE user_id = $1', [user]))[0]!
        .n;
    /** During a Twilio outage: the user's SMS fails on both providers, then retries until the per-user limit answers 429. */
    const refusedRetrying = async (user: string) => {
      for (const provider of ['twilio', 'plivo']) await setFault(h, { provider, mode: 'error', status: 503 });
      await setStatus('twilio', 'major');
      await failed('otp', user);
      const refused = await waitFor(
        `${user} refused by the per-user limit`,
        async () => {
          const res = await initiate(h, 'otp', user);
          if (res.statusCode !== 429) expect(res.statusCode, res.body).toBe(202);
          return res.statusCode === 429 ? res : undefined;
        },
        30_000,
      );
      expect(refused.json()).toMatchObject({ error: 'rate_limited' });
      const audit = await h.sql<{ outcome: string }>(
        `SELECT outcome FROM audit_events WHERE event_type = 'identity.ratelimit.exceeded' AND user_id = $1`,
        [user],
      );
      expect(audit.map((a) => a.outcome)).toContain('user');
      await clearFaults(h);
      await setFault(h, { provider: 'twilio', mode: 'error', status: 503 }); // Twilio alone stays down
    };

    beforeEach(async () => {
      expect((await admin('PUT', '/ratelimits', NORMAL)).statusCode).toBe(200);
    });
    afterAll(async () => raiseRateLimits(h));

    it('a user refused while retrying a failed SMS can initiate again at once; the raised per-user limit goes back when the run ends', async () => {
      await addUser('relief-1', 1);
      await addUser('relief-check', 2);
      await refusedRetrying('relief-1');
      expect((await initiate(h, 'otp', 'relief-1')).statusCode).toBe(429);

      const start = await admin('POST', '/runbooks/provider-outage', {
        severity: 'P0',
        by: 'oncall',
        params: { provider: 'twilio', pollSeconds: 1, healthyChecks: 2, validationUser: 'relief-check' },
      });
      expect(start.statusCode, start.body).toBe(201);
      const id = start.json<{ workflow_id: string }>().workflow_id;
      const s = await until(
        id,
        'the relief',
        (x) => stepOf(x, 'relieve_retries').status === 'succeeded' && stepOf(x, 'watch').status === 'running',
      );
      expect(stepOf(s, 'scope').result).toMatchObject({ rateLimited: { perUser: 1 } });
      const relief = stepOf(s, 'relieve_retries');
      expect(relief.approval).toMatchObject({ how: 'not_required' }); // P0: not a containment step, and P0 is not an approval severity
      expect(relief.result).toMatchObject({ users: ['relief-1'], truncated: false, previous: NORMAL, applied: RAISED });
      expect(relief.summary).toContain('per-user limit 4 -> 8 per 300 s until the end of the run (per IP unchanged)');
      expect(await limits()).toEqual(RAISED);
      expect(await rows('relief-1')).toBe(0);
      // relief-1 retries at once, and more often than the normal limit allows
      for (let i = 0; i < NORMAL.per_user.max_attempts + 1; i++) {
        const res = await initiate(h, 'otp', 'relief-1');
        expect(res.statusCode, `retry ${i + 1}: ${res.body}`).toBe(202);
      }
      const cleared = await h.sql<{ details: { reason: string } }>(
        `SELECT details FROM audit_events WHERE outcome = 'clear_rate_limits' AND user_id = 'relief-1'`,
      );
      expect(cleared).toHaveLength(1);
      expect(cleared[0]!.details.reason).toContain(
        'refused by the per-user rate limit while retrying failed deliveries',
      );

      await clearFaults(h);
      await setStatus('twilio', 'none');
      const done = await until(id, 'the run to complete', (x) => x.status !== 'running', 120_000);
      expect(done.status, JSON.stringify(done.steps)).toBe('completed');
      // put back after the primary is restored and the resends are done, before the validation
      const at = (step: string) => done.log.findIndex((l) => l.message.startsWith(`${step}: `));
      expect(at('restore_primary')).toBeGreaterThan(-1);
      expect(at('resend_failed')).toBeGreaterThan(at('restore_primary'));
      expect(at('restore_limits')).toBeGreaterThan(at('resend_failed'));
      expect(at('validate')).toBeGreaterThan(at('restore_limits'));
      expect(stepOf(done, 'restore_limits')).toMatchObject({
        status: 'succeeded',
        summary: 'rate limits back to per user 4, per IP 10000 (as before the run)',
      });
      expect(stepOf(done, 'validate').status).toBe('succeeded');
      expect(await limits()).toEqual(NORMAL);
      expect(done.log.some((l) => l.message.startsWith('relieve_retries: per-user limit 4 -> 8'))).toBe(true);
      // the normal limit is in force again: relief-1's five retries count against it
      expect((await initiate(h, 'otp', 'relief-1')).statusCode).toBe(429);
    }, 240_000);

    it('at P1 the relief waits for a responder; cancelling mid-watch puts the limits back with the route', async () => {
      await addUser('relief-2', 3);
      await refusedRetrying('relief-2');
      const opened = await admin('POST', '/incidents', {
        type: 'provider_outage',
        severity: 'P1',
        title: 'Twilio failing, users retrying',
        affected: { providers: ['twilio'] },
      });
      expect(opened.statusCode, opened.body).toBe(201);
      const incident = opened.json<{ id: string }>().id;
      const id = `${incident}-runbook`;

      await until(id, 'the switch gate', (x) => stepOf(x, 'switch_to_backup').status === 'awaiting_approval');
      expect(
        (await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'switch_to_backup', by: 'pat' })).statusCode,
      ).toBe(200);
      await until(id, 'the relief gate', (x) => stepOf(x, 'relieve_retries').status === 'awaiting_approval');
      expect(await limits()).toEqual(NORMAL); // nothing changes before the approval
      expect((await initiate(h, 'otp', 'relief-2')).statusCode).toBe(429);
      expect(
        (await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'relieve_retries', by: 'pat' })).statusCode,
      ).toBe(200);
      let s = await until(id, 'the relief', (x) => stepOf(x, 'relieve_retries').status === 'succeeded');
      expect(stepOf(s, 'relieve_retries').result).toMatchObject({
        users: expect.arrayContaining(['relief-2']),
        applied: RAISED,
      });
      expect(await limits()).toEqual(RAISED);
      expect((await initiate(h, 'otp', 'relief-2')).statusCode).toBe(202);

      const cancel = await admin('POST', `/runbooks/runs/${id}/cancel`, {
        by: 'pat',
        reason: 'Twilio confirmed the fix',
      });
      expect(cancel.statusCode, cancel.body).toBe(202);
      s = await until(id, 'the cancellation', (x) => x.status === 'cancelled');
      expect(stepOf(s, 'relieve_retries')).toMatchObject({
        status: 'compensated',
        compensationSummary: 'rate limits back to per user 4, per IP 10000 (as before the run)',
      });
      expect(stepOf(s, 'switch_to_backup')).toMatchObject({ status: 'compensated' });
      expect(stepOf(s, 'restore_limits').status).toBe('skipped');
      expect(await limits()).toEqual(NORMAL);
      const timeline = (await admin('GET', `/incidents/${incident}`)).json<{
        timeline: Array<{ kind: string; message: string }>;
      }>().timeline;
      expect(timeline).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            kind: 'runbook',
            message: expect.stringContaining('relieve_retries: per-user limit 4 -> 8'),
          }),
          expect.objectContaining({ message: expect.stringContaining('undone: rate limits back to per user 4') }),
        ]),
      );
    }, 180_000);
  });
});
