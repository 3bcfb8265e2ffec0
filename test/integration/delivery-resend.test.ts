/**
 * After an outage: the failed deliveries of a window are listed (the responders' query) and resent
 * through their challenge workflows, each exactly once and only while the challenge is open;
 * and the public challenge state, which never gives a decoy away.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resendFailedDelivery } from '../../src/delivery/resend';
import {
  challengeRow,
  initiate,
  messagesFor,
  post,
  putSettings,
  secretFor,
  waitFor,
  waitForStatus,
} from '../helpers/authClient';
import {
  clearFaults,
  deliveryOutcome,
  publicState,
  raiseRateLimits,
  resetDelivery,
  setFault,
} from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('resending failed deliveries and the public challenge state', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_TRUSTED_PROXIES: '127.0.0.1' } });
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());
  afterEach(async () => resetDelivery(h));

  const outage = async () => {
    for (const provider of ['twilio', 'plivo', 'sendgrid', 'ses'])
      await setFault(h, { provider, mode: 'error', status: 503 });
  };
  const start = async (method: 'otp' | 'magic-link', user: string) => {
    const res = await initiate(h, method, user);
    expect(res.statusCode).toBe(202);
    const { challenge_id } = res.json<{ challenge_id: string }>();
    expect(await deliveryOutcome(h, challenge_id)).toMatchObject({ delivery_outcome: 'failed' });
    return challenge_id;
  };

  it('resends the failures of an outage window once each, only for challenges still open', async () => {
    const since = new Date(Date.now() - 1000).toISOString();
    await outage();
    const sms = await start('otp', 'test-user');
    const email = await start('magic-link', 'test-user-3');
    const ended = await start('otp', 'bob');
    const revoke = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/users/revoke-challenges',
      headers: h.adminHeaders,
      payload: { user_ids: ['bob'] },
    });
    expect(revoke.statusCode).toBe(200);
    await waitForStatus(h, ended, 'revoked');
    await clearFaults(h);

    const listed = await h.admin.inject({
      method: 'GET',
      url: `/admin/api/v1/delivery/failures?since=${encodeURIComponent(since)}`,
      headers: h.adminHeaders,
    });
    expect(listed.statusCode).toBe(200);
    const failures = listed.json<{
      failures: Array<{
        id: string;
        challenge_id: string;
        user_id: string;
        resendable: boolean;
        failed_attempts: number;
        phone_number: string | null;
        email: string | null;
      }>;
    }>().failures;
    expect(failures.map((f) => [f.user_id, f.resendable])).toEqual([
      ['test-user', true],
      ['test-user-3', true],
      ['bob', false],
    ]);
    expect(failures[0]).toMatchObject({ phone_number: '+15555550100', email: null, failed_attempts: 6 });
    expect(failures[1]).toMatchObject({ phone_number: null, email: 'test-user-3@example.com' });

    const resent = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/delivery/failures/resend',
      headers: h.adminHeaders,
      payload: { since, incident_id: 'INC-2026-01-15-03' },
    });
    expect(resent.statusCode, resent.body).toBe(200);
    expect(resent.json()).toMatchObject({
      resent: 2,
      results: [
        expect.objectContaining({ outcome: 'queued', send_number: 2 }),
        expect.objectContaining({ outcome: 'queued', send_number: 2 }),
      ],
    });

    // the resent code and link work; the revoked challenge got nothing
    const code = await secretFor(h, sms, 2);
    expect((await post(h, '/otp/verify', { challenge_id: sms, otp: code })).statusCode).toBe(200);
    const token = await secretFor(h, email, 2);
    expect(
      (
        await h.public.inject({
          method: 'POST',
          url: '/browser/api/v1/identity/auth/magic-link/verify',
          payload: { challenge: email, token },
        })
      ).statusCode,
    ).toBe(200);
    expect(await messagesFor(h, ended)).toEqual([]);

    // again: nothing is resendable any more, and a direct resend answers what was done
    const again = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/delivery/failures/resend',
      headers: h.adminHeaders,
      payload: { since },
    });
    expect(again.json()).toEqual({ resent: 0, results: [] });
    const one = await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/delivery/failures/${failures[0]!.id}/resend`,
      headers: h.adminHeaders,
    });
    expect(one.json()).toMatchObject({ outcome: 'already_resent', send_number: 2 });
    const gone = await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/delivery/failures/${failures[2]!.id}/resend`,
      headers: h.adminHeaders,
    });
    expect(gone.json()).toMatchObject({ outcome: 'challenge_ended', challenge_status: 'revoked' });
    expect(await messagesFor(h, sms)).toHaveLength(1);
    const audit = await h.sql(
      `SELECT challenge_id, incident_id FROM audit_events WHERE event_type = 'identity.delivery.resent' ORDER BY id`,
    );
    expect(audit).toEqual([
      { challenge_id: sms, incident_id: 'INC-2026-01-15-03' },
      { challenge_id: email, incident_id: 'INC-2026-01-15-03' },
    ]);
    const missing = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/delivery/failures/999999/resend',
      headers: h.adminHeaders,
    });
    expect(missing.statusCode).toBe(404);
  });

  it('does not resend a failure whose challenge has expired: a new code would be useless', async () => {
    await outage();
    await putSettings(h, { otp_ttl_seconds: 8 });
    let challenge: string;
    try {
      challenge = await start('otp', 'alice');
    } finally {
      await putSettings(h, { otp_ttl_seconds: 300 });
    }
    await clearFaults(h);
    await waitForStatus(h, challenge, 'expired', 30_000);
    const [failure] = await h.sql<{ id: string }>(
      'SELECT id::text AS id FROM delivery_failures WHERE challenge_id = $1',
      [challenge],
    );
    const res = await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/delivery/failures/${failure!.id}/resend`,
      headers: h.adminHeaders,
      payload: { incident_id: 'INC-2026-01-15-04' },
    });
    expect(res.json()).toEqual({
      failure_id: failure!.id,
      outcome: 'challenge_ended',
      send_number: null,
      challenge_status: 'expired',
    });
    expect(await messagesFor(h, challenge)).toEqual([]);
  });

  it('sends one message when the same failure is resent concurrently and repeatedly', async () => {
    await outage();
    const challenge = await start('otp', 'test-user-2');
    await clearFaults(h);
    const [failure] = await h.sql<{ id: string }>(
      'SELECT id::text AS id FROM delivery_failures WHERE challenge_id = $1',
      [challenge],
    );
    const ctx = { actor: 'test' };
    const results = await Promise.all([1, 2, 3].map(() => resendFailedDelivery(h.runtime, failure!.id, ctx)));
    for (const r of results) expect(['queued', 'already_resent']).toContain(r.outcome);
    expect(new Set(results.map((r) => ('sendNumber' in r ? r.sendNumber : undefined)))).toEqual(new Set([2]));
    await secretFor(h, challenge, 2);
    expect(await resendFailedDelivery(h.runtime, failure!.id, ctx)).toMatchObject({
      outcome: 'already_resent',
      sendNumber: 2,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await messagesFor(h, challenge)).map((m) => m.idempotency_key)).toEqual([`challenge-${challenge}/send-2`]);
    expect((await challengeRow(h, challenge))?.delivery_status).toBe('delivered');
    expect(
      await h.sql('SELECT resolved_at IS NOT NULL AS resolved, resend_outcome FROM delivery_failures WHERE id = $1', [
        failure!.id,
      ]),
    ).toEqual([{ resolved: true, resend_outcome: 'queued' }]);
  });

  it('gives the public a challenge state without secrets, and a decoy reads like a real challenge', async () => {
    expect(
      (await h.public.inject({ method: 'GET', url: '/browser/api/v1/identity/auth/challenges/not-a-uuid' })).json(),
    ).toMatchObject({ error: 'invalid_request' });
    const unknown = await h.public.inject({
      method: 'GET',
      url: '/browser/api/v1/identity/auth/challenges/00000000-0000-4000-8000-000000000000',
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'not_found' });

    // pending while the provider has not answered yet
    await setFault(h, { provider: 'twilio', mode: 'delay', delay_ms: 3000, count: 1 });
    const slow = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>().challenge_id;
    expect((await publicState(h, slow)).body).toMatchObject({ status: 'pending' });
    await deliveryOutcome(h, slow);

    const real = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>().challenge_id;
    const decoy = (await initiate(h, 'otp', 'no-such-user-4711')).json<{ challenge_id: string }>().challenge_id;
    await deliveryOutcome(h, real);
    await deliveryOutcome(h, decoy);
    const a = await publicState(h, real);
    const b = await publicState(h, decoy);
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(200);
    expect(Object.keys(a.body).sort()).toEqual(['challenge_id', 'expires_at', 'method', 'status']);
    expect(Object.keys(b.body).sort()).toEqual(Object.keys(a.body).sort());
    expect([a.body.status, b.body.status]).toEqual(['delivered', 'delivered']);
    expect(await h.sql('SELECT delivery_outcome FROM auth_challenges WHERE id = $1', [decoy])).toEqual([
      { delivery_outcome: 'no_recipient' },
    ]);

    // ended states
    for (let i = 0; i < 5; i += 1) await post(h, '/otp/verify', { challenge_id: decoy, otp: '000000' });
    await waitForStatus(h, decoy, 'locked');
    expect((await publicState(h, decoy)).body).toMatchObject({ status: 'locked' });
    const revoke = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/users/revoke-challenges',
      headers: h.adminHeaders,
      payload: { user_ids: ['test-user'] },
    });
    expect(revoke.statusCode).toBe(200);
    await waitFor('the revocation', async () =>
      (await publicState(h, real)).body.status === 'revoked' ? true : undefined,
    );
  });

  it('shows a decoy as failed while every provider of its channel is out, like a real challenge', async () => {
    await h.sql(`UPDATE provider_circuits SET state = 'open', opened_at = now() WHERE channel = 'email'`);
    const decoy = (await initiate(h, 'magic-link', 'phone-only')).json<{ challenge_id: string }>().challenge_id;
    await deliveryOutcome(h, decoy);
    expect((await publicState(h, decoy)).body).toMatchObject({ status: 'failed' });
  });
});
