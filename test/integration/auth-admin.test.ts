/** Responder actions: key rotation, per-user revocation and resets, audit export, admin input checks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataKeyStore } from '../../src/auth/keys';
import { challengeRow, initiate, post, secretFor, waitForStatus } from '../helpers/authClient';
import { raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('auth admin actions', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());

  const admin = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: h.adminHeaders,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  it('rotates the data key, revokes challenges under the old key and ends their workflows, and verifies new ones', async () => {
    const old = [];
    for (const user of ['test-user', 'alice']) {
      const { challenge_id } = (await initiate(h, 'otp', user)).json<{ challenge_id: string }>();
      old.push({ challenge_id, code: await secretFor(h, challenge_id) });
    }
    const before = (await challengeRow(h, old[0]!.challenge_id))!.key_id;

    const res = await admin('POST', '/keys/rotate', {
      reason: 'suspected token leak',
      revoke_outstanding: true,
      incident_id: 'INC-2025-01-15-01',
    });
    expect(res.statusCode).toBe(200);
    const rotated = res.json<{ key_id: string; previous_key_id: string; revoked_challenges: number }>();
    expect(rotated.previous_key_id).toBe(before);
    expect(rotated.key_id).not.toBe(before);
    expect(rotated.revoked_challenges).toBe(2);

    for (const { challenge_id, code } of old) {
      const row = await waitForStatus(h, challenge_id, 'revoked');
      expect(row).toMatchObject({ end_reason: 'key_rotation', sealed_secret: null });
      const late = await post(h, '/otp/verify', { challenge_id, otp: code });
      expect(late.statusCode).toBe(410);
      expect(late.json()).toMatchObject({ error: 'revoked' });
    }
    // the rotation's cut-offs: everything issued before it, and whatever the old key ever issued
    expect(
      await h.sql(
        `SELECT scope, subject, reason, revoked_before = 'infinity' AS whole FROM challenge_cutoffs ORDER BY scope`,
      ),
    ).toEqual([
      { scope: 'all', subject: '', reason: 'key_rotation', whole: false },
      { scope: 'key', subject: before, reason: 'key_rotation', whole: true },
    ]);
    const rotations = await h.sql(
      'SELECT from_key_id, to_key_id, reason, incident_id, revoked_challenges, rotated_by FROM key_rotations',
    );
    expect(rotations).toEqual([
      {
        from_key_id: before,
        to_key_id: rotated.key_id,
        reason: 'suspected token leak',
        incident_id: 'INC-2025-01-15-01',
        revoked_challenges: 2,
        rotated_by: 'admin-api',
      },
    ]);
    const invalidated = await h.sql(
      `SELECT reason, incident_id FROM audit_events WHERE event_type = 'identity.auth.token_invalidated' AND challenge_id = $1`,
      [old[0]!.challenge_id],
    );
    expect(invalidated).toEqual([{ reason: 'key_rotation', incident_id: 'INC-2025-01-15-01' }]);

    const { challenge_id } = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>();
    expect((await challengeRow(h, challenge_id))!.key_id).toBe(rotated.key_id);
    const ok = await post(h, '/otp/verify', { challenge_id, otp: await secretFor(h, challenge_id) });
    expect(ok.statusCode).toBe(200);

    const keys = await admin('GET', '/keys');
    const listed = keys.json<{ keys: Array<{ id: string; status: string }> }>().keys;
    expect(listed.map((k) => [k.id, k.status])).toEqual([
      [rotated.key_id, 'active'],
      [before, 'retired'],
    ]);
    expect(keys.body).not.toMatch(/wrapped|pepper/);
  });

  it('reaches other processes through Postgres: an unknown key id is fetched at once, the active key within the staleness bound', async () => {
    const kek = h.runtime.keys.keyring;
    // another process's cache that would not refresh on its own for a minute
    const other = new DataKeyStore(h.runtime.db, kek, 60_000);
    const before = await other.active();
    const res = await admin('POST', '/keys/rotate', { reason: 'cross-process check' });
    const { key_id } = res.json<{ key_id: string }>();
    expect((await other.get(key_id)).id).toBe(key_id);
    expect((await other.active()).id).toBe(key_id);
    expect((await other.get(before.id)).status).toBe('retired');
    const soon = new DataKeyStore(h.runtime.db, kek, 100);
    await soon.active();
    await admin('POST', '/keys/rotate', { reason: 'staleness check' });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await soon.active()).id).not.toBe(key_id);
    expect(h.logs.records('data key unseal success').length).toBeGreaterThan(0);
  });

  it('keeps verifying challenges under a retired key when the rotation does not revoke them', async () => {
    const { challenge_id } = (await initiate(h, 'magic-link', 'bob')).json<{ challenge_id: string }>();
    const token = await secretFor(h, challenge_id);
    const res = await admin('POST', '/keys/rotate', { reason: 'scheduled' });
    expect(res.json()).toMatchObject({ revoked_challenges: 0 });
    const ok = await h.public.inject({
      method: 'POST',
      url: '/browser/api/v1/identity/auth/magic-link/verify',
      payload: { challenge: challenge_id, token },
    });
    expect(ok.statusCode).toBe(200);
  });

  it("revokes a user's active challenges, forces a password reset and audits both", async () => {
    const ids = [];
    for (let i = 0; i < 2; i += 1)
      ids.push(
        (await initiate(h, i ? 'magic-link' : 'otp', 'test-user-3')).json<{ challenge_id: string }>().challenge_id,
      );
    const other = (await initiate(h, 'otp', 'test-user-2')).json<{ challenge_id: string }>().challenge_id;

    const revoked = await admin('POST', '/users/revoke-challenges', {
      user_ids: ['test-user-3'],
      reason: 'security_incident',
      incident_id: 'INC-2025-01-15-02',
    });
    expect(revoked.statusCode).toBe(200);
    const answer = revoked.json<{ revoked_before: string }>();
    expect(answer).toEqual({ revoked: 2, workflows_ended: 2, revoked_before: expect.stringMatching(/^\d{4}-.+Z$/) });
    // the cut-off came first: from its instant on, nothing of the user's verifies
    expect(
      await h.sql(
        `SELECT subject, reason, incident_id, set_by, revoked_before FROM challenge_cutoffs WHERE scope = 'user'`,
      ),
    ).toEqual([
      {
        subject: 'test-user-3',
        reason: 'security_incident',
        incident_id: 'INC-2025-01-15-02',
        set_by: 'admin-api',
        revoked_before: new Date(answer.revoked_before),
      },
    ]);
    for (const id of ids)
      expect(await challengeRow(h, id)).toMatchObject({
        status: 'revoked',
        end_reason: 'security_incident',
        sealed_secret: null,
      });
    expect((await challengeRow(h, other))!.status).not.toBe('revoked');

    const reset = await admin('POST', '/users/force-password-reset', { user_ids: ['test-user-3', 'bob', 'nobody'] });
    expect(reset.json()).toEqual({ updated: ['bob', 'test-user-3'] });
    const users = await h.sql(`SELECT sub FROM users WHERE force_password_reset ORDER BY sub`);
    expect(users.map((u) => u.sub)).toEqual(['bob', 'test-user-3']);
    const actions = await h.sql(
      `SELECT outcome, user_id FROM audit_events WHERE event_type = 'identity.admin.user_action' ORDER BY id`,
    );
    expect(actions).toEqual([
      { outcome: 'revoke_challenges', user_id: 'test-user-3' },
      { outcome: 'force_password_reset', user_id: 'test-user-3' },
      { outcome: 'force_password_reset', user_id: 'bob' },
      { outcome: 'force_password_reset', user_id: 'nobody' },
    ]);
  });

  it('audits every event with masked facts only, as rows and JSON log lines, and exports them as NDJSON', async () => {
    const { challenge_id } = (await initiate(h, 'otp', 'test-user', { ip: '203.0.113.77' })).json<{
      challenge_id: string;
    }>();
    const code = await secretFor(h, challenge_id);
    await post(
      h,
      '/otp/verify',
      { challenge_id, otp: code === '000000' ? '000001' : '000000' },
      { ip: '2001:db8:1:2:3:4:5:6' },
    );
    await post(h, '/otp/verify', { challenge_id, otp: code }, { ip: '203.0.113.77' });

    const rows = await h.sql(
      `SELECT event_type, outcome, reason, user_id, method, ip_masked, phone_last4, email_domain FROM audit_events WHERE challenge_id = $1 ORDER BY id`,
      [challenge_id],
    );
    const base = { user_id: 'test-user', method: 'sms_otp', phone_last4: '0100', email_domain: null };
    expect(rows).toEqual([
      {
        ...base,
        event_type: 'identity.auth.token_generated',
        outcome: 'issued',
        reason: null,
        ip_masked: '203.0.113.0/24',
      },
      {
        ...base,
        event_type: 'identity.auth.validation_attempt',
        outcome: 'invalid_otp',
        reason: null,
        ip_masked: '2001:db8:1:2::/64',
      },
      {
        ...base,
        event_type: 'identity.auth.token_invalidated',
        outcome: 'verified',
        reason: 'used',
        ip_masked: '203.0.113.0/24',
      },
      {
        ...base,
        event_type: 'identity.auth.validation_attempt',
        outcome: 'success',
        reason: null,
        ip_masked: '203.0.113.0/24',
      },
    ]);
    const lines = h.logs.records('identity.auth.validation_attempt').filter((r) => r.challenge_id === challenge_id);
    expect(lines.map((l) => l.outcome)).toEqual(['invalid_otp', 'success']);
    // the end's row carries the workflow's count of attempts (the wrong one and the right one)
    const [invalidated] = await h.sql<{ details: unknown }>(
      `SELECT details FROM audit_events WHERE challenge_id = $1 AND event_type = 'identity.auth.token_invalidated'`,
      [challenge_id],
    );
    expect(invalidated!.details).toEqual({ attempts: 2 });

    const res = await admin('GET', '/audit/export?since=24h');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const exported = res.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const mine = exported.filter((e) => e.challenge_id === challenge_id);
    expect(mine.map((e) => e.event)).toEqual(rows.map((r) => r.event_type));
    const total = await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM audit_events');
    expect(exported).toHaveLength(total[0]!.n);

    const iso = await admin(
      'GET',
      `/audit/export?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&until=${encodeURIComponent(new Date(Date.now() + 120_000).toISOString())}`,
    );
    expect(iso.statusCode).toBe(200);
    expect(iso.body).toBe('');
    const typed = await admin('GET', '/audit/export?since=1h&type=identity.auth.token_generated');
    expect(
      typed.body
        .trim()
        .split('\n')
        .every((l) => (JSON.parse(l) as { event: string }).event === 'identity.auth.token_generated'),
    ).toBe(true);

    const metrics = await h.runtime.registry.metrics();
    expect(metrics).toMatch(/warden_auth_tokens_generated_total\{[^}]*method="sms_otp"[^}]*\} [1-9]/);
    expect(metrics).toMatch(
      /warden_auth_validation_attempts_total\{[^}]*method="sms_otp",outcome="success"[^}]*\} [1-9]/,
    );
    expect(metrics).toMatch(/warden_auth_validation_duration_seconds_count\{[^}]*method="sms_otp"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/warden_auth_generation_duration_seconds_count\{[^}]*method="sms_otp"[^}]*\} [1-9]/);
    expect(metrics).not.toContain('test-user');
  });

  it('answers malformed admin requests with 400 JSON and requires the bearer token', async () => {
    const cases: Array<['GET' | 'POST' | 'PUT', string, unknown]> = [
      ['POST', '/keys/rotate', {}],
      ['POST', '/keys/rotate', { reason: '' }],
      ['POST', '/keys/rotate', { reason: 'x', revoke_outstanding: 'yes' }],
      ['POST', '/users/revoke-challenges', { user_ids: [] }],
      ['POST', '/users/revoke-challenges', { user_ids: ['a'], reason: 'because' }],
      ['POST', '/users/force-password-reset', { user_ids: 'alice' }],
      ['POST', '/users/clear-rate-limits', {}],
      ['PUT', '/auth/settings', { otp_ttl_seconds: 0 }],
      ['PUT', '/auth/settings', { max_attempts: 'five' }],
      ['PUT', '/auth/settings', {}],
      ['GET', '/audit/export?since=yesterday', undefined],
      ['GET', '/audit/export?since=90d', undefined],
      ['GET', '/audit/export?since=1h&until=2h', undefined],
    ];
    for (const [method, url, payload] of cases) {
      const res = await admin(method, url, payload);
      expect(res.statusCode, `${method} ${url} ${JSON.stringify(payload)}`).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request', message: expect.any(String) });
    }
    const anonymous = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/keys/rotate',
      payload: { reason: 'x' },
    });
    expect(anonymous.statusCode).toBe(401);
  });
});
