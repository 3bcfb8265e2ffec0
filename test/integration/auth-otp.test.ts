/** SMS OTP end to end: real dev server, real Postgres, Twilio SDK into the sandbox. */
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AuditEventType } from '../../src/auth/audit';
import { createDataConverter } from '../../src/temporal/client';
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
import { raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('SMS OTP challenges', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_TRUSTED_PROXIES: '127.0.0.1' } });
    // this file makes many challenges for one user from one address
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());

  const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

  it('sends a 6-digit code by SMS and verifies it once; the row keeps only a $2b$ hash', async () => {
    const res = await initiate(h, 'otp', 'test-user');
    expect(res.statusCode).toBe(202);
    const body = res.json<{ challenge_id: string; expires_at: string }>();
    expect(Object.keys(body).sort()).toEqual(['challenge_id', 'expires_at']);
    expect(body.challenge_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(body.expires_at) - Date.now()).toBeGreaterThan(250_000);

    const code = await secretFor(h, body.challenge_id);
    const [sms] = await messagesFor(h, body.challenge_id);
    expect(sms).toMatchObject({
      channel: 'sms',
      provider: 'twilio',
      to: '+15555550100',
      idempotency_key: `challenge-${body.challenge_id}/send-1`,
    });
    const row = await challengeRow(h, body.challenge_id);
    expect(row!.secret_hash).toMatch(/^\$2b\$10\$/);
    expect(row!.sealed_secret).not.toBeNull();

    const ok = await post(h, '/otp/verify', { challenge_id: body.challenge_id, otp: code });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: 'verified' });
    const ended = await challengeRow(h, body.challenge_id);
    expect(ended).toMatchObject({ status: 'verified', end_reason: 'used', sealed_secret: null });

    const again = await post(h, '/otp/verify', { challenge_id: body.challenge_id, otp: code });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'already_used' });
  });

  it('answers a wrong code with 401 and the remaining attempts, and locks after 5 (423)', async () => {
    const { challenge_id } = (await initiate(h, 'otp', 'test-user-2')).json<{ challenge_id: string }>();
    const code = await secretFor(h, challenge_id);
    for (let i = 1; i <= 4; i += 1) {
      const res = await post(h, '/otp/verify', { challenge_id, otp: wrong(code) });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: 'invalid_otp', remaining_attempts: 5 - i });
    }
    const fifth = await post(h, '/otp/verify', { challenge_id, otp: wrong(code) });
    expect(fifth.statusCode).toBe(423);
    expect(fifth.json()).toMatchObject({ error: 'locked' });
    // even the right code is refused now
    const right = await post(h, '/otp/verify', { challenge_id, otp: code });
    expect(right.statusCode).toBe(423);
    expect(right.json()).toMatchObject({ error: 'locked' });
    const row = await waitForStatus(h, challenge_id, 'locked');
    expect(row).toMatchObject({ attempts: 5, sealed_secret: null, end_reason: 'locked' });
    const audit = await h.sql<{ reason: string }>(
      `SELECT reason FROM audit_events WHERE challenge_id = $1 AND event_type = 'identity.auth.token_invalidated'`,
      [challenge_id],
    );
    expect(audit).toEqual([{ reason: 'locked' }]);
  });

  it('lets exactly one of several concurrent correct verifies succeed', async () => {
    const { challenge_id } = (await initiate(h, 'otp', 'alice')).json<{ challenge_id: string }>();
    const code = await secretFor(h, challenge_id);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => post(h, '/otp/verify', { challenge_id, otp: code })),
    );
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
    const successes = await h.sql(
      `SELECT 1 FROM audit_events WHERE challenge_id = $1 AND event_type = 'identity.auth.validation_attempt' AND outcome = 'success'`,
      [challenge_id],
    );
    expect(successes).toHaveLength(1);
  });

  it('expires a challenge after its TTL: 410, the row says expired and the forensic table flags the attempt', async () => {
    await putSettings(h, { otp_ttl_seconds: 4 });
    try {
      const res = await initiate(h, 'otp', 'bob');
      const { challenge_id, expires_at } = res.json<{ challenge_id: string; expires_at: string }>();
      expect(Date.parse(expires_at) - Date.now()).toBeLessThanOrEqual(4000);
      const code = await secretFor(h, challenge_id);
      expect((await post(h, '/otp/verify', { challenge_id, otp: wrong(code) })).statusCode).toBe(401);
      const row = await waitForStatus(h, challenge_id, 'expired', 20_000);
      expect(row).toMatchObject({ sealed_secret: null, end_reason: 'expired' });
      // the expiry itself flags the attempts made while the challenge was live (src/auth/end.ts)
      expect(
        await h.sql(
          'SELECT challenge_expired, validation_attempts FROM challenge_validation_attempts WHERE challenge_id = $1',
          [challenge_id],
        ),
      ).toEqual([{ challenge_expired: true, validation_attempts: 1 }]);
      const late = await post(h, '/otp/verify', { challenge_id, otp: code });
      expect(late.statusCode).toBe(410);
      expect(late.json()).toMatchObject({ error: 'expired' });
      const forensic = await h.sql(
        'SELECT challenge_id, user_id, validation_attempts, last_attempt_at FROM challenge_validation_attempts WHERE challenge_expired = true AND challenge_id = $1',
        [challenge_id],
      );
      expect(forensic).toEqual([expect.objectContaining({ user_id: 'bob', validation_attempts: 2 })]);
    } finally {
      await putSettings(h, { otp_ttl_seconds: 300 });
    }
  });

  it('refuses a resend within the 30 s cooldown with 429 and Retry-After', async () => {
    const { challenge_id } = (await initiate(h, 'otp', 'test-user-3')).json<{ challenge_id: string }>();
    const early = await post(h, '/otp/resend', { challenge_id });
    expect(early.statusCode).toBe(429);
    expect(early.json()).toMatchObject({ error: 'resend_cooldown', retry_after_seconds: expect.any(Number) });
    const retryAfter = Number(early.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    await secretFor(h, challenge_id, 1);
    expect(await messagesFor(h, challenge_id)).toHaveLength(1);
  });

  it('resends the same challenge with the same attempt budget, up to the cap', async () => {
    await putSettings(h, { resend_cooldown_seconds: 0, max_sends: 3 });
    try {
      const { challenge_id } = (await initiate(h, 'otp', 'test-user-3')).json<{ challenge_id: string }>();
      const first = await secretFor(h, challenge_id, 1);
      for (let i = 0; i < 2; i += 1) {
        const bad = await post(h, '/otp/verify', { challenge_id, otp: wrong(first) });
        expect(bad.statusCode).toBe(401);
      }
      const resent = await post(h, '/otp/resend', { challenge_id });
      expect(resent.statusCode).toBe(202);
      expect(resent.json()).toMatchObject({ challenge_id, sends_remaining: 1 });
      // the same secret goes out again: the challenge is the same
      expect(await secretFor(h, challenge_id, 2)).toBe(first);
      const third = await post(h, '/otp/verify', { challenge_id, otp: wrong(first) });
      expect(third.json()).toMatchObject({ error: 'invalid_otp', remaining_attempts: 2 });

      expect((await post(h, '/otp/resend', { challenge_id })).json()).toMatchObject({ sends_remaining: 0 });
      await secretFor(h, challenge_id, 3);
      const capped = await post(h, '/otp/resend', { challenge_id });
      expect(capped.statusCode).toBe(409);
      expect(capped.json()).toMatchObject({ error: 'resend_limit_reached' });
      expect(await messagesFor(h, challenge_id)).toHaveLength(3);
      expect((await challengeRow(h, challenge_id))!.sends).toBe(3);

      const ok = await post(h, '/otp/verify', { challenge_id, otp: first });
      expect(ok.statusCode).toBe(200);
      const afterEnd = await post(h, '/otp/resend', { challenge_id });
      expect(afterEnd.statusCode).toBe(409);
      expect(afterEnd.json()).toMatchObject({ error: 'already_used' });
    } finally {
      await putSettings(h, { resend_cooldown_seconds: 30, max_sends: 5 });
    }
  });

  it('replays every finished challenge history deterministically with the current workflow code', async () => {
    const finished = await h.sql<{ id: string }>(
      `SELECT id FROM auth_challenges WHERE status IN ('verified', 'locked', 'expired') ORDER BY created_at`,
    );
    expect(finished.length).toBeGreaterThanOrEqual(4);
    for (const { id } of finished) {
      const workflowId = `challenge-${id}`;
      const history = await h.runtime.temporal.client.workflow.getHandle(workflowId).fetchHistory();
      await Worker.runReplayHistory(
        {
          workflowBundle: { codePath: inject('workflowBundlePath') },
          dataConverter: createDataConverter(h.config, h.runtime.subjectKeys),
          replayName: 'auth-replay',
        },
        history,
        workflowId,
      );
    }
  });

  it('runs a challenge in few steps: no patch marker, local issue and attempts, one send activity, a workflow task per step', async () => {
    const { challenge_id } = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>();
    const code = await secretFor(h, challenge_id);
    expect((await post(h, '/otp/verify', { challenge_id, otp: wrong(code) })).statusCode).toBe(401);
    expect((await post(h, '/otp/verify', { challenge_id, otp: code })).statusCode).toBe(200);
    const handle = h.runtime.temporal.client.workflow.getHandle(`challenge-${challenge_id}`);
    expect(await handle.result()).toEqual({ status: 'verified', reason: 'used', attempts: 2, sends: 1 });
    const { events } = await handle.fetchHistory();
    const { EventType } = temporal.api.enums.v1;
    const markerData = (name: string, key: string) =>
      events!
        .filter((e) => e.markerRecordedEventAttributes?.markerName === name)
        .map(
          (e) =>
            JSON.parse(
              Buffer.from(e.markerRecordedEventAttributes!.details![key]!.payloads![0]!.data!).toString('utf8'),
            ) as Record<string, unknown>,
        );
    // no release has shipped: the workflow carries no patch() gate
    expect(markerData('core_patch', 'patch-data')).toEqual([]);
    expect(markerData('core_local_activity', 'data').map((d) => d.activity_type)).toEqual([
      'issueChallenge',
      'attemptChallenge',
      'attemptChallenge',
    ]);
    expect(
      events!
        .filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name),
    ).toEqual(['sendDelivery']);
    // at most: start + issue, the send's completion, one per verify (a verify arriving with the
    // send's completion shares its task); the local activities add none
    expect(
      events!.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED).length,
    ).toBeLessThanOrEqual(4);
    expect(await challengeRow(h, challenge_id)).toMatchObject({
      status: 'verified',
      end_reason: 'used',
      attempts: 2,
      sends: 1,
      delivery_outcome: 'sent',
      sealed_secret: null,
    });
    // each verify request: one forensic count and one validation_attempt audit row, written in one statement
    expect(
      await h.sql('SELECT validation_attempts FROM challenge_validation_attempts WHERE challenge_id = $1', [
        challenge_id,
      ]),
    ).toEqual([{ validation_attempts: 2 }]);
    const audited = await h.sql<{ outcome: string }>(
      `SELECT outcome FROM audit_events WHERE event_type = $1 AND challenge_id = $2 ORDER BY id`,
      [AuditEventType.validationAttempt, challenge_id],
    );
    expect(audited.map((r) => r.outcome)).toEqual(['invalid_otp', 'success']);
  });

  it('answers an unknown challenge with 404 not_found', async () => {
    const res = await post(h, '/otp/verify', { challenge_id: '00000000-0000-4000-8000-000000000000', otp: '123456' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
    await waitFor('the not_found audit event', async () => {
      const rows = await h.sql(
        `SELECT 1 FROM audit_events WHERE outcome = 'not_found' AND challenge_id = '00000000-0000-4000-8000-000000000000'`,
      );
      return rows.length === 1 ? true : undefined;
    });
  });

  it('answers malformed input on every OTP route with a 400 JSON error', async () => {
    const cases: Array<[string, unknown]> = [
      ['/otp/initiate', {}],
      ['/otp/initiate', { user_id: '' }],
      ['/otp/initiate', { user_id: 42 }],
      ['/otp/initiate', { user_id: 'x'.repeat(129) }],
      ['/otp/initiate', { user_id: 'a\u0000b' }],
      ['/otp/verify', { challenge_id: 'not-a-uuid', otp: '123456' }],
      ['/otp/verify', { challenge_id: '00000000-0000-4000-8000-000000000000', otp: '12345' }],
      ['/otp/verify', { challenge_id: '00000000-0000-4000-8000-000000000000', otp: '12345a' }],
      ['/otp/verify', { challenge_id: '00000000-0000-4000-8000-000000000000' }],
      ['/otp/resend', {}],
      ['/otp/resend', { challenge_id: "'; DROP TABLE users; --" }],
    ];
    for (const [path, payload] of cases) {
      const res = await post(h, path, payload);
      expect(res.statusCode, `${path} ${JSON.stringify(payload)}`).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request', message: expect.any(String) });
    }
    const broken = await h.public.inject({
      method: 'POST',
      url: '/browser/api/v1/identity/auth/otp/initiate',
      headers: { 'content-type': 'application/json' },
      payload: '{"user_id":',
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json()).toHaveProperty('error');
    const noBody = await h.public.inject({ method: 'POST', url: '/browser/api/v1/identity/auth/otp/verify' });
    expect(noBody.statusCode).toBe(400);
  });
});
