/**
 * The abuse runbook against the real API: abuse from many client addresses (X-Forwarded-For from
 * the trusted loopback proxy), then the runbook blocks, tightens, requires a CAPTCHA, watches
 * on durable timers (short windows through params) and restores what was there before.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunbookState } from '../../src/shared/runbooks';
import { initiate, post, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const HCAPTCHA_TEST_TOKEN = '10000000-aaaa-bbbb-cccc-000000000001';
// the "normal" limits of this deployment: deliberately not the defaults, so a restore to
// hard-coded values would show
const NORMAL = { per_user: { window_seconds: 300, max_attempts: 8 }, per_ip: { window_seconds: 300, max_attempts: 6 } };

describe('abuse-mitigation runbook', () => {
  let h: Harness;
  const admin = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: h.adminHeaders,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
  /** A verify on a challenge that does not exist: an enumeration attack, counted per IP. */
  const probe = (ip: string, extra: Record<string, unknown> = {}) =>
    post(h, '/otp/verify', { challenge_id: randomUUID(), otp: '123456', ...extra }, from(ip));
  const run = async (id: string) => (await admin('GET', `/runbooks/runs/${id}`)).json<RunbookState>();
  const until = (id: string, what: string, ok: (s: RunbookState) => boolean, ms = 60_000) =>
    waitFor(
      what,
      async () => {
        const s = await run(id);
        return s.status && ok(s) ? s : undefined;
      },
      ms,
    );
  const attackFrom = async (ip: string, requests: number) => {
    for (let i = 0; i < requests; i++) await probe(ip);
  };

  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_TRUSTED_PROXIES: '127.0.0.1' } });
    expect((await admin('PUT', '/ratelimits', NORMAL)).statusCode).toBe(200);
  });
  afterAll(async () => h?.close());

  it('blocks and tightens during an attack, requires a CAPTCHA, clears false positives, then restores the limits that were in force', async () => {
    const attackers = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5'];
    for (const ip of attackers) await attackFrom(ip, 20); // 6 allowed, 14 refused each
    await attackFrom('198.51.100.50', 10); // 4 refused: under the block threshold
    for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3'])
      for (let i = 0; i < 4; i++) await initiate(h, 'otp', 'alice', from(ip)); // alice over her limit: 4 refused
    for (let i = 0; i < 2; i++) await initiate(h, 'otp', 'bob', from('203.0.113.9')); // bob: allowed attempts only
    expect(
      (await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM rate_limit_attempts WHERE user_id = $1', ['bob']))[0]!
        .n,
    ).toBe(2);

    const start = await admin('POST', '/runbooks/abuse-mitigation', {
      severity: 'P1',
      by: 'oncall',
      approve: ['block_ips', 'tighten_limits', 'enable_captcha'],
      params: { blockThreshold: 10, pollSeconds: 1, quietMinutes: 0.1, quietRatePerMinute: 1 },
    });
    expect(start.statusCode).toBe(201);
    const id = start.json<{ workflow_id: string }>().workflow_id;
    const watching = await until(id, 'the watch', (s) => s.steps.find((x) => x.name === 'watch')?.status === 'running');

    // keep the attack going from fresh addresses until the checks are done, so the watch cannot end early
    let attacking = true;
    let next = 0;
    const trickle = (async () => {
      while (attacking) await attackFrom(`192.0.2.${(next++ % 250) + 1}`, 10);
    })();
    try {
      const top = watching.steps.find((x) => x.name === 'top_violators')!.result as {
        ips: Array<{ ip: string; violations: number }>;
        users: Array<{ user_id: string; violations: number }>;
      };
      expect(top.ips.slice(0, 5)).toEqual(attackers.map((ip) => ({ ip, violations: 14 })));
      expect(top.ips[5]).toEqual({ ip: '198.51.100.50', violations: 4 });
      expect(top.users).toEqual([{ user_id: 'alice', violations: 4 }]);

      const blocks = await h.sql<{ cidr: string; created_by: string; later: boolean }>(
        `SELECT host(cidr) AS cidr, created_by, expires_at > now() + interval '50 minutes' AS later FROM ip_blocklist WHERE removed_at IS NULL ORDER BY cidr`,
      );
      expect(blocks).toEqual(attackers.map((cidr) => ({ cidr, created_by: `${id}/block_ips`, later: true })));
      expect((await probe('198.51.100.3')).json()).toMatchObject({ error: 'blocked' });

      expect((await admin('GET', '/ratelimits')).json()).toEqual({
        per_user: { window_seconds: 300, max_attempts: 3 },
        per_ip: { window_seconds: 300, max_attempts: 6 },
      });

      // 198.51.100.50 failed 4 times: no answer without a solved CAPTCHA
      const required = await initiate(h, 'otp', 'test-user', from('198.51.100.50'));
      expect(required.statusCode).toBe(403);
      expect(required.json()).toMatchObject({ error: 'captcha_required', captcha: { provider: 'hcaptcha' } });
      const invalid = await post(
        h,
        '/otp/initiate',
        { user_id: 'test-user', captcha_token: 'not-a-solved-captcha' },
        from('198.51.100.50'),
      );
      expect(invalid.json()).toMatchObject({ error: 'captcha_invalid' });
      const solved = await post(
        h,
        '/otp/initiate',
        { user_id: 'test-user', captcha_token: HCAPTCHA_TEST_TOKEN },
        from('198.51.100.50'),
      );
      expect(solved.statusCode).toBe(202);
      // alice's own failures flag her from any address; a fresh client for another user is not asked
      expect((await initiate(h, 'otp', 'alice', from('203.0.113.200'))).json()).toMatchObject({
        error: 'captcha_required',
      });
      expect((await initiate(h, 'otp', 'test-user-2', from('203.0.113.201'))).statusCode).toBe(202);

      const marked = await admin('POST', `/runbooks/runs/${id}/false-positives`, { by: 'oncall', users: ['bob'] });
      expect(marked.statusCode).toBe(200);
      await until(
        id,
        'bob cleared',
        (s) => s.steps.find((x) => x.name === 'clear_false_positives')?.status === 'succeeded',
      );
      expect(
        (
          await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM rate_limit_attempts WHERE user_id = $1', ['bob'])
        )[0]!.n,
      ).toBe(0);
      expect(
        (
          await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM rate_limit_attempts WHERE user_id = $1', ['alice'])
        )[0]!.n,
      ).toBeGreaterThan(0);
      expect((await run(id)).status).toBe('running');
    } finally {
      attacking = false;
      await trickle;
    }

    const done = await until(id, 'the runbook to finish', (s) => s.status !== 'running', 120_000);
    expect(done.status).toBe('completed');
    expect(done.steps.map((s) => [s.name, s.status])).toEqual([
      ['top_violators', 'succeeded'],
      ['block_ips', 'succeeded'],
      ['tighten_limits', 'succeeded'],
      ['enable_captcha', 'succeeded'],
      ['clear_false_positives', 'succeeded'],
      ['watch', 'succeeded'],
      ['restore_limits', 'succeeded'],
    ]);
    expect((await admin('GET', '/ratelimits')).json()).toEqual(NORMAL);
    const captcha = await h.sql<{ value: { enabled: boolean } }>(
      `SELECT value FROM runtime_settings WHERE key = 'auth.captcha'`,
    );
    expect(captcha[0]!.value.enabled).toBe(false);
    expect((await initiate(h, 'otp', 'test-user-3', from('198.51.100.50'))).statusCode).toBe(202);
    // the blocks were temporary: they stay until they expire
    expect((await probe('198.51.100.1')).json()).toMatchObject({ error: 'blocked' });
    expect(done.log.map((l) => l.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^restore_limits: rate_limiting restored to .*"max_attempts":8/)]),
    );
    expect(await h.runtime.registry.metrics()).toMatch(
      /^warden_runbook_steps_total\{runbook="abuse-mitigation",step="restore_limits",outcome="succeeded"[^}]*\} 1$/m,
    );
  }, 240_000);

  it('cancelled mid-watch, puts back the limits and the CAPTCHA setting and lifts only the blocks it added', async () => {
    for (const ip of ['198.51.100.101', '198.51.100.102']) await attackFrom(ip, 20);
    const start = await admin('POST', '/runbooks/abuse-mitigation', {
      severity: 'P0',
      by: 'oncall',
      params: { blockThreshold: 10, pollSeconds: 1, quietMinutes: 60 },
    });
    const id = start.json<{ workflow_id: string }>().workflow_id;
    const watching = await until(id, 'the watch', (s) => s.steps.find((x) => x.name === 'watch')?.status === 'running');
    const blocked = watching.steps.find((x) => x.name === 'block_ips')!.result as {
      blocked: string[];
      alreadyBlocked: string[];
    };
    expect(blocked.blocked).toEqual(['198.51.100.101/32', '198.51.100.102/32']);
    expect(blocked.alreadyBlocked.length).toBe(5); // the first run's blocks are not this run's to lift
    expect((await admin('GET', '/ratelimits')).json()).toMatchObject({ per_user: { max_attempts: 3 } });

    const cancel = await admin('POST', `/runbooks/runs/${id}/cancel`, {
      by: 'oncall',
      reason: 'false alarm: a partner load test',
    });
    expect(cancel.statusCode).toBe(202);
    const done = await until(id, 'cancellation', (s) => s.status !== 'running');
    expect(done.status).toBe('cancelled');
    expect(done.steps.filter((s) => s.status === 'compensated').map((s) => s.name)).toEqual([
      'block_ips',
      'tighten_limits',
      'enable_captcha',
    ]);
    expect((await admin('GET', '/ratelimits')).json()).toEqual(NORMAL);
    expect(
      (
        await h.sql<{ value: { enabled: boolean } }>(`SELECT value FROM runtime_settings WHERE key = 'auth.captcha'`)
      )[0]!.value.enabled,
    ).toBe(false);
    const active = await h.sql<{ cidr: string }>(
      'SELECT host(cidr) AS cidr FROM ip_blocklist WHERE removed_at IS NULL ORDER BY cidr',
    );
    expect(active.map((r) => r.cidr)).toEqual([
      '198.51.100.1',
      '198.51.100.2',
      '198.51.100.3',
      '198.51.100.4',
      '198.51.100.5',
    ]);
    expect(
      (await admin('POST', `/runbooks/runs/${id}/cancel`, { by: 'oncall', reason: 'again' })).json(),
    ).toMatchObject({ error: 'runbook_finished' });
  }, 120_000);
});
