/**
 * IPv6 clients through the real API, their addresses in X-Forwarded-For from the trusted
 * loopback proxy: the per-IP limit counts each /64, a /48 has a budget of its own, the CAPTCHA
 * trigger counts the /64, and the abuse runbook blocks the /64 of an offender.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAPTCHA_SETTINGS_KEY } from '../../src/runbooks/captcha';
import type { RunbookState } from '../../src/shared/runbooks';
import { post, putRateLimits, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

describe('IPv6 buckets', () => {
  let h: Harness;
  beforeAll(async () => {
    // a factor other than the default, so the test shows it is the configured one that counts
    h = await startHarness({
      env: { WARDEN_TRUSTED_PROXIES: '127.0.0.1,::1', WARDEN_RATE_LIMIT_V6_48_FACTOR: '3' },
    });
  });
  afterAll(async () => h?.close());

  const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
  /** A verify of a challenge that does not exist: counted against the client only. */
  const probe = (ip: string) => post(h, '/otp/verify', { challenge_id: randomUUID(), otp: '123456' }, from(ip));
  const limits = (perIp: number) =>
    putRateLimits(h, { per_user: { max_attempts: 1000 }, per_ip: { window_seconds: 300, max_attempts: perIp } });
  const attempts = (within: string) =>
    h.sql<{ ip: string; exceeded: boolean; n: number }>(
      `SELECT abbrev(ip) AS ip, exceeded, count(*)::int AS n FROM rate_limit_attempts
        WHERE ip <<= $1::inet GROUP BY ip, exceeded ORDER BY masklen(ip), ip, exceeded`,
      [within],
    );
  const refusals = (masked: string) =>
    h.sql<{ outcome: string; details: Record<string, unknown>; count: number }>(
      `SELECT outcome, details, count::int AS count FROM audit_trail
        WHERE event_type = 'identity.ratelimit.exceeded' AND ip_masked = $1 ORDER BY id`,
      [masked],
    );

  it('holds every address of one /64 to one per-IP limit', async () => {
    await limits(4);
    const statuses = [];
    for (const ip of [
      '2001:db8:a:1::1',
      '2001:db8:a:1:a:b:c:d',
      '2001:db8:a:1:ffff:ffff:ffff:ffff',
      '2001:0db8:000a:0001:0000:0000:0000:0007',
      '2001:db8:a:1::1234',
    ])
      statuses.push((await probe(ip)).statusCode);
    expect(statuses).toEqual([404, 404, 404, 404, 429]);
    // the neighbouring /64 has a limit of its own
    expect((await probe('2001:db8:a:2::1')).statusCode).toBe(404);

    expect(await attempts('2001:db8:a::/48')).toEqual([
      { ip: '2001:db8:a::/48', exceeded: false, n: 5 },
      { ip: '2001:db8:a:1::/64', exceeded: false, n: 4 },
      { ip: '2001:db8:a:1::/64', exceeded: true, n: 1 },
      { ip: '2001:db8:a:2::/64', exceeded: false, n: 1 },
    ]);
    // the audit row keeps the masked address (here the /64 itself), no full address
    expect(await refusals('2001:db8:a:1::/64')).toEqual([
      {
        outcome: 'ip',
        details: { scope: 'ip', action: 'verify', limit: 4, window_seconds: 300 },
        count: 1,
      },
    ]);
    expect(await h.sql(`SELECT 1 FROM audit_events WHERE details::text LIKE '%2001:db8:a:1::1234%'`)).toEqual([]);
  });

  it('counts an IPv4-mapped address as the IPv4 address it carries', async () => {
    await limits(2);
    expect((await probe('203.0.113.5')).statusCode).toBe(404);
    expect((await probe('::ffff:203.0.113.5')).statusCode).toBe(404);
    expect((await probe('::ffff:cb00:7105')).statusCode).toBe(429);
    expect(await attempts('203.0.113.5/32')).toEqual([
      { ip: '203.0.113.5', exceeded: false, n: 2 },
      { ip: '203.0.113.5', exceeded: true, n: 1 },
    ]);
    // a block of the IPv4 address holds in either spelling
    const blocked = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/blocklist/ip',
      headers: h.adminHeaders,
      payload: { ip: '203.0.113.6', reason: 'mapped', expires_at: new Date(Date.now() + 600_000).toISOString() },
    });
    expect(blocked.statusCode).toBe(201);
    for (const ip of ['203.0.113.6', '::ffff:203.0.113.6', '::ffff:cb00:7106'])
      expect((await probe(ip)).json(), ip).toMatchObject({ error: 'blocked' });
  });

  it('holds the /64s of one /48 to the /48 budget, a multiple of the per-IP limit', async () => {
    await limits(2);
    // 3 x 2 = 6 attempts for the /48: three /64s use it up
    for (const net of ['1', '2', '3'])
      for (const host of ['1', '2']) expect((await probe(`2001:db8:b:${net}::${host}`)).statusCode).toBe(404);
    const refused = await probe('2001:db8:b:4::1');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'rate_limited', retry_after_seconds: expect.any(Number) });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(300);
    // a fresh /64 of the same /48 is refused too; one of another /48 is not
    expect((await probe('2001:db8:b:ff00::1')).statusCode).toBe(429);
    expect((await probe('2001:db8:c:1::1')).statusCode).toBe(404);
    // a full /64 is refused by its own limit first
    expect((await probe('2001:db8:b:1::9')).statusCode).toBe(429);

    expect(await refusals('2001:db8:b:4::/64')).toEqual([
      {
        outcome: 'ip_prefix',
        details: { scope: 'ip_prefix', action: 'verify', limit: 6, window_seconds: 300, prefix: '2001:db8:b::/48' },
        count: 1,
      },
    ]);
    expect((await refusals('2001:db8:b:1::/64')).map((r) => r.outcome)).toEqual(['ip']);
    // the refusals are recorded on the client's /64, where the CAPTCHA gate and the runbook look
    const rows = await attempts('2001:db8:b::/48');
    expect(rows.filter((r) => r.exceeded)).toEqual([
      { ip: '2001:db8:b:1::/64', exceeded: true, n: 1 },
      { ip: '2001:db8:b:4::/64', exceeded: true, n: 1 },
      { ip: '2001:db8:b:ff00::/64', exceeded: true, n: 1 },
    ]);
    expect(rows.find((r) => r.ip === '2001:db8:b::/48')).toEqual({ ip: '2001:db8:b::/48', exceeded: false, n: 6 });
    expect(await h.runtime.registry.metrics()).toMatch(
      /warden_ratelimit_exceeded_total\{[^}]*scope="ip_prefix"[^}]*action="verify"[^}]*\} 2/,
    );
  });

  it('does not let a concurrent burst from many addresses overshoot the /64 or the /48', async () => {
    await limits(5);
    const inOne64 = await Promise.all(
      Array.from({ length: 20 }, (_, i) => probe(`2001:db8:d0:1::${(i + 1).toString(16)}`)),
    );
    expect(inOne64.filter((r) => r.statusCode === 404)).toHaveLength(5);
    expect(inOne64.filter((r) => r.statusCode === 429)).toHaveLength(15);

    await limits(2);
    // ten /64s of another /48, three addresses each: the /48 admits 3 x 2 = 6
    const inOne48 = await Promise.all(
      Array.from({ length: 30 }, (_, i) => probe(`2001:db8:d1:${Math.floor(i / 3) + 1}::${(i % 3) + 1}`)),
    );
    expect(inOne48.filter((r) => r.statusCode === 404)).toHaveLength(6);
    expect(inOne48.filter((r) => r.statusCode === 429)).toHaveLength(24);
  });

  it('asks for a CAPTCHA from a /64 whose failures are spread across its addresses', async () => {
    await limits(1);
    await h.runtime.settings.put(CAPTCHA_SETTINGS_KEY, { enabled: true, threshold: 3, window_seconds: 900 }, 'test');
    try {
      expect((await probe('2001:db8:e0:1::1')).statusCode).toBe(404);
      // one refusal each from three addresses: three failures of the /64
      for (const host of ['2', '3', '4']) expect((await probe(`2001:db8:e0:1::${host}`)).statusCode).toBe(429);
      const asked = await probe('2001:db8:e0:1:aaaa::5');
      expect(asked.statusCode).toBe(403);
      expect(asked.json()).toMatchObject({ error: 'captcha_required', captcha: { provider: 'hcaptcha' } });
      // the neighbouring /64 has no failures: it is not asked
      expect((await probe('2001:db8:e0:2::1')).statusCode).toBe(404);
      const audit = await h.sql<{ outcome: string; ip_masked: string }>(
        `SELECT outcome, ip_masked FROM audit_events WHERE event_type = 'identity.auth.captcha'`,
      );
      expect(audit).toEqual([{ outcome: 'required', ip_masked: '2001:db8:e0:1::/64' }]);
    } finally {
      await h.runtime.settings.put(CAPTCHA_SETTINGS_KEY, { enabled: false, threshold: 3, window_seconds: 900 }, 'test');
    }
  });

  it("blocks an operator's IPv6 address or CIDR exactly as given", async () => {
    await limits(1000);
    const block = (ip: string) =>
      h.admin.inject({
        method: 'POST',
        url: '/admin/api/v1/blocklist/ip',
        headers: h.adminHeaders,
        payload: { ip, reason: 'one host', expires_at: new Date(Date.now() + 600_000).toISOString() },
      });
    expect((await block('2001:db8:f:1::7')).json()).toMatchObject({ entry: { cidr: '2001:db8:f:1::7/128' } });
    expect((await block('2001:db8:f:200::/56')).json()).toMatchObject({ entry: { cidr: '2001:db8:f:200::/56' } });
    expect((await probe('2001:db8:f:1::7')).json()).toMatchObject({ error: 'blocked' });
    expect((await probe('2001:db8:f:1::8')).statusCode).toBe(404);
    expect((await probe('2001:db8:f:2ff:1::1')).json()).toMatchObject({ error: 'blocked' });
    expect((await probe('2001:db8:f:300::1')).statusCode).toBe(404);
  });

  it('has the abuse runbook block an IPv6 offender as its /64, not the neighbouring /64, and spare a /64 holding a never-block address', async () => {
    await limits(2);
    // only this test's refusals: the floods of the tests above would be blocked too
    await h.sql('DELETE FROM rate_limit_attempts');
    for (let i = 0; i < 12; i++) await probe('2001:db8:d:1::1'); // 2 allowed, 10 refused: one address
    for (let i = 0; i < 3; i++) await probe('2001:db8:d:2::1'); // 1 refused: under the threshold
    // (4 of the 6 attempts of 2001:db8:d::/48 spent: 2 left for the neighbours below)
    for (let i = 0; i < 12; i++) await probe('2001:db8:5d:5::1');

    const admin = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
      h.admin.inject({ method, url: `/admin/api/v1${url}`, headers: h.adminHeaders, payload });
    const start = await admin('POST', '/runbooks/abuse-mitigation', {
      severity: 'P1',
      by: 'oncall',
      approve: ['block_ips', 'tighten_limits', 'enable_captcha'],
      params: { blockThreshold: 5, pollSeconds: 1, quietMinutes: 60, neverBlock: ['2001:db8:5d:5::53'] },
    });
    expect(start.statusCode).toBe(201);
    const id = start.json<{ workflow_id: string }>().workflow_id;
    const run = async () => (await admin('GET', `/runbooks/runs/${id}`)).json<RunbookState>();
    const watching = await waitFor(
      'the watch',
      async () => {
        const s = await run();
        return s.steps?.find((x) => x.name === 'watch')?.status === 'running' ? s : undefined;
      },
      60_000,
    );
    try {
      const top = watching.steps.find((x) => x.name === 'top_violators')!.result as {
        ips: Array<{ ip: string; violations: number }>;
      };
      expect(top.ips).toEqual(
        expect.arrayContaining([
          { ip: '2001:db8:d:1::/64', violations: 10 },
          { ip: '2001:db8:5d:5::/64', violations: 10 },
          { ip: '2001:db8:d:2::/64', violations: 1 },
        ]),
      );
      expect(watching.steps.find((x) => x.name === 'block_ips')!.result).toMatchObject({
        blocked: ['2001:db8:d:1::/64'],
        spared: ['2001:db8:5d:5::/64'],
      });
      expect(
        await h.sql(`SELECT cidr::text AS cidr FROM ip_blocklist WHERE created_by = $1 AND removed_at IS NULL`, [
          `${id}/block_ips`,
        ]),
      ).toEqual([{ cidr: '2001:db8:d:1::/64' }]);

      // the whole /64 is blocked, whichever address it sends from; its neighbours are not
      for (const ip of ['2001:db8:d:1::1', '2001:db8:d:1::2', '2001:db8:d:1:ffff:ffff:ffff:ffff'])
        expect((await probe(ip)).json(), ip).toMatchObject({ error: 'blocked' });
      expect((await probe('2001:db8:d:3::1')).statusCode).toBe(404);
      expect((await probe('2001:db8:d:0:ffff:ffff:ffff:ffff')).statusCode).toBe(404);
      expect((await probe('2001:db8:5d:5::53')).json()).not.toMatchObject({ error: 'blocked' });
    } finally {
      const cancel = await admin('POST', `/runbooks/runs/${id}/cancel`, { by: 'oncall', reason: 'test over' });
      expect(cancel.statusCode).toBe(202);
    }
    const done = await waitFor('the cancellation', async () =>
      (await run()).status !== 'running' ? run() : undefined,
    );
    expect(done.status).toBe('cancelled');
    // the compensation lifts the /64 it added
    expect((await probe('2001:db8:d:1::9')).json()).not.toMatchObject({ error: 'blocked' });
  }, 120_000);
});
