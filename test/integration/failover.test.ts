/**
 * Per-message failover through the real SDKs into the sandbox: Twilio -> Plivo and
 * SendGrid -> SES, with the error classification of src/delivery/policy.ts. Real worker, real
 * dev server, real Postgres; the sandbox's request log shows every provider call.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initiate, messagesFor, post, secretFor } from '../helpers/authClient';
import {
  clearFaults,
  deliveryOutcome,
  metric,
  publicState,
  raiseRateLimits,
  requestsFor,
  resetDelivery,
  sendKey,
  setFault,
} from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('delivery with failover', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());
  afterEach(async () => resetDelivery(h));

  it('sends through the healthy primary: one Twilio call, outcome sent, ledger row sent', async () => {
    const { challenge_id } = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>();
    const code = await secretFor(h, challenge_id);
    const row = await deliveryOutcome(h, challenge_id);
    expect(row).toMatchObject({
      delivery_status: 'delivered',
      delivery_provider: 'twilio',
      delivery_outcome: 'sent',
      delivery_error_class: null,
    });
    expect((await requestsFor(h, sendKey(challenge_id))).map((r) => [r.provider, r.outcome])).toEqual([
      ['twilio', 'accepted'],
    ]);
    const ledger = await h.sql(
      'SELECT provider, status, attempts, failed_calls FROM delivery_attempts WHERE challenge_id = $1',
      [challenge_id],
    );
    expect(ledger).toEqual([{ provider: 'twilio', status: 'sent', attempts: 1, failed_calls: 0 }]);
    expect((await publicState(h, challenge_id)).body).toMatchObject({ status: 'delivered' });
    const verified = await post(h, '/otp/verify', { challenge_id, otp: code });
    expect(verified.statusCode, verified.body).toBe(200);
    expect((await publicState(h, challenge_id)).body).toMatchObject({ status: 'verified' });
  });

  it('moves a send to Plivo when Twilio answers 503 to every call, and the code verifies', async () => {
    // The retry policy makes this fast: three Twilio calls 250 ms and 500 ms apart (~0.8 s plus
    // activity round trips), then Plivo's first call. Nothing here times it: the bound is the
    // policy's (src/delivery/policy.ts), the benchmark measures it.
    await setFault(h, { provider: 'twilio', mode: 'error', status: 503 });
    const failoversBefore = await metric(h, 'warden_delivery_failovers_total', {
      from: 'twilio',
      to: 'plivo',
      scope: 'message',
    });
    const { challenge_id } = (await initiate(h, 'otp', 'test-user-2')).json<{ challenge_id: string }>();
    const code = await secretFor(h, challenge_id);

    const [sms, ...more] = await messagesFor(h, challenge_id);
    expect(more).toEqual([]);
    expect(sms).toMatchObject({ provider: 'plivo', to: '+15555550102', idempotency_key: sendKey(challenge_id) });
    const calls = await requestsFor(h, sendKey(challenge_id));
    expect(calls.map((r) => [r.provider, r.outcome, r.status])).toEqual([
      ['twilio', 'faulted', 503],
      ['twilio', 'faulted', 503],
      ['twilio', 'faulted', 503],
      ['plivo', 'accepted', 202],
    ]);
    expect(await deliveryOutcome(h, challenge_id)).toMatchObject({
      delivery_status: 'delivered',
      delivery_provider: 'plivo',
      delivery_outcome: 'failed_over',
    });
    const ok = await post(h, '/otp/verify', { challenge_id, otp: code });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: 'verified' });

    expect(await metric(h, 'warden_delivery_failovers_total', { from: 'twilio', to: 'plivo', scope: 'message' })).toBe(
      failoversBefore + 1,
    );
    expect(
      await metric(h, 'warden_delivery_failures_total', { provider: 'twilio', error_class: 'transient' }),
    ).toBeGreaterThanOrEqual(3);
    expect(await metric(h, 'warden_delivery_attempts_total', { provider: 'plivo' })).toBeGreaterThanOrEqual(1);
    expect(
      await metric(h, 'warden_delivery_send_duration_seconds_count', { provider: 'twilio' }),
    ).toBeGreaterThanOrEqual(3);
    expect(h.logs.lines.some((l) => l.includes('failed to send sms via twilio'))).toBe(true);
  });

  it('does not fail over a permanent error: one Twilio call, failed permanently, recorded for a resend', async () => {
    await setFault(h, { provider: 'twilio', mode: 'permanent' });
    const { challenge_id } = (await initiate(h, 'otp', 'alice')).json<{ challenge_id: string }>();
    const row = await deliveryOutcome(h, challenge_id);
    expect(row).toMatchObject({
      delivery_status: 'failed',
      delivery_provider: 'twilio',
      delivery_outcome: 'failed',
      delivery_error_class: 'permanent',
    });
    expect((await requestsFor(h, sendKey(challenge_id))).map((r) => [r.provider, r.status])).toEqual([['twilio', 400]]);
    expect(await messagesFor(h, challenge_id)).toEqual([]);
    const failures = await h.sql(
      'SELECT user_id, channel, provider, phone_number, email, error_class, error_code, failed_attempts FROM delivery_failures WHERE challenge_id = $1',
      [challenge_id],
    );
    expect(failures).toEqual([
      {
        user_id: 'alice',
        channel: 'sms',
        provider: 'twilio',
        phone_number: '+15555550111',
        email: null,
        error_class: 'permanent',
        error_code: '21211',
        failed_attempts: 1,
      },
    ]);
    // a refused number is about the person: the public state does not tell (no enumeration)
    expect((await publicState(h, challenge_id)).body).toMatchObject({ status: 'delivered' });
    const circuit = await h.sql(`SELECT consecutive_failures FROM provider_circuits WHERE provider = 'twilio'`);
    expect(circuit).toEqual([{ consecutive_failures: 0 }]);
  });

  it('honours Retry-After on a 429: the next call to Twilio comes no earlier than it said', async () => {
    await setFault(h, { provider: 'twilio', mode: 'error', status: 429, retry_after: 1, count: 1 });
    const { challenge_id } = (await initiate(h, 'otp', 'bob')).json<{ challenge_id: string }>();
    await secretFor(h, challenge_id);
    const calls = await requestsFor(h, sendKey(challenge_id));
    expect(calls.map((r) => [r.provider, r.status])).toEqual([
      ['twilio', 429],
      ['twilio', 201],
    ]);
    const waited = Date.parse(calls[1]!.created_at) - Date.parse(calls[0]!.created_at);
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(await deliveryOutcome(h, challenge_id)).toMatchObject({
      delivery_provider: 'twilio',
      delivery_outcome: 'sent',
    });
  });

  it('moves an email to SES when SendGrid fails, and the link verifies', async () => {
    await setFault(h, { provider: 'sendgrid', mode: 'error', status: 500 });
    const { challenge_id } = (await initiate(h, 'magic-link', 'test-user-3')).json<{ challenge_id: string }>();
    const token = await secretFor(h, challenge_id);
    const [email] = await messagesFor(h, challenge_id);
    expect(email).toMatchObject({ provider: 'ses', to: 'test-user-3@example.com' });
    expect((await requestsFor(h, sendKey(challenge_id))).map((r) => r.provider)).toEqual([
      'sendgrid',
      'sendgrid',
      'sendgrid',
      'ses',
    ]);
    const ok = await h.public.inject({
      method: 'POST',
      url: '/browser/api/v1/identity/auth/magic-link/verify',
      payload: { challenge: challenge_id, token },
    });
    expect(ok.statusCode).toBe(200);
  });

  it('records a send that both providers fail in delivery_failures, and the challenge state says failed', async () => {
    await setFault(h, { provider: 'twilio', mode: 'error', status: 503 });
    await setFault(h, { provider: 'plivo', mode: 'error', status: 502 });
    const before = new Date(Date.now() - 1000).toISOString();
    const { challenge_id } = (await initiate(h, 'otp', 'phone-only')).json<{ challenge_id: string }>();
    const row = await deliveryOutcome(h, challenge_id);
    expect(row).toMatchObject({
      delivery_status: 'failed',
      delivery_outcome: 'failed',
      delivery_provider: 'plivo',
      delivery_error_class: 'transient',
    });
    expect(await messagesFor(h, challenge_id)).toEqual([]);
    expect((await publicState(h, challenge_id)).body).toMatchObject({
      challenge_id,
      method: 'sms_otp',
      status: 'failed',
    });

    // the responders' query finds it
    const seed = await h.sql(
      'SELECT user_id, phone_number, email, failed_attempts, last_attempt_at FROM delivery_failures WHERE last_attempt_at BETWEEN $1 AND $2',
      [before, new Date(Date.now() + 1000).toISOString()],
    );
    expect(seed).toEqual([
      {
        user_id: 'phone-only',
        phone_number: '+15555550113',
        email: null,
        failed_attempts: 6,
        last_attempt_at: expect.any(Date),
      },
    ]);
    const audit = await h.sql(
      `SELECT outcome, details FROM audit_events WHERE event_type = 'identity.delivery.failed' AND challenge_id = $1`,
      [challenge_id],
    );
    expect(audit).toEqual([
      { outcome: 'transient', details: expect.objectContaining({ channel: 'sms', provider: 'plivo' }) },
    ]);
    expect(h.logs.lines.some((l) => l.includes('failed to send: no provider took the message'))).toBe(true);

    // the challenge itself stays open: a resend after the outage can still reach the user
    await clearFaults(h);
    const listed = await h.admin.inject({
      method: 'GET',
      url: `/admin/api/v1/delivery/failures?since=${encodeURIComponent(before)}&resendable=true`,
      headers: h.adminHeaders,
    });
    expect(listed.statusCode).toBe(200);
    expect(listed.json<{ failures: Array<{ challenge_id: string; resendable: boolean }> }>().failures).toEqual([
      expect.objectContaining({ challenge_id, resendable: true }),
    ]);
  });
});
