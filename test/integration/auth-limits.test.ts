import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunbookAuthActivities } from '../../src/activities/runbookAuth';
import { SettingsCache } from '../../src/auth/settings';
import { initiate, post, putRateLimits } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const UNKNOWN = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** Per-user and per-IP rate limits (changed at runtime) and the IP blocklist. */
describe('rate limits and blocklist', () => {
  let h: Harness;
  beforeAll(async () => {
    // 127.0.0.1 is a trusted proxy here: its X-Forwarded-For names the client
    h = await startHarness({ env: { WARDEN_TRUSTED_PROXIES: '127.0.0.1,::1' } });
  });
  afterAll(async () => h?.close());

  const block = (payload: Record<string, unknown>) =>
    h.admin.inject({ method: 'POST', url: '/admin/api/v1/blocklist/ip', headers: h.adminHeaders, payload });

  it('limits initiates per user, answers 429 with Retry-After, audits it, counts it, and follows a runtime change', async () => {
    await putRateLimits(h, { per_user: { window: '5m', max_attempts: 3 }, per_ip: { max_attempts: 1000 } });
    for (let i = 0; i < 3; i += 1)
      expect((await initiate(h, 'otp', 'test-user', { ip: `192.0.2.${i + 1}` })).statusCode).toBe(202);
    const refused = await initiate(h, 'otp', 'test-user', { ip: '192.0.2.50' });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'rate_limited', retry_after_seconds: expect.any(Number) });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(300);
    // another user is not affected
    expect((await initiate(h, 'otp', 'alice', { ip: '192.0.2.51' })).statusCode).toBe(202);

    const audit = await h.sql<{ outcome: string; user_id: string; ip_masked: string; phone_last4: string }>(
      `SELECT outcome, user_id, ip_masked, phone_last4 FROM audit_events WHERE event_type = 'identity.ratelimit.exceeded'`,
    );
    expect(audit).toEqual([{ outcome: 'user', user_id: 'test-user', ip_masked: '192.0.2.0/24', phone_last4: '0100' }]);
    expect(h.logs.records('identity.ratelimit.exceeded')).toHaveLength(1);
    expect(await h.runtime.registry.metrics()).toMatch(
      /warden_ratelimit_exceeded_total\{[^}]*scope="user"[^}]*action="initiate"[^}]*\} 1/,
    );

    // the responder raises the limit: in force at once, without a restart
    const raised = await putRateLimits(h, { per_user: { max_attempts: 4 } });
    expect(raised).toEqual({
      per_user: { window_seconds: 300, max_attempts: 4 },
      per_ip: { window_seconds: 300, max_attempts: 1000 },
    });
    expect((await initiate(h, 'otp', 'test-user', { ip: '192.0.2.52' })).statusCode).toBe(202);
    expect((await initiate(h, 'otp', 'test-user', { ip: '192.0.2.53' })).statusCode).toBe(429);

    // the false-positive recovery step clears the user's state
    const cleared = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/users/clear-rate-limits',
      headers: h.adminHeaders,
      payload: { user_ids: ['test-user'] },
    });
    expect(cleared.statusCode).toBe(200);
    expect(cleared.json<{ deleted: number }>().deleted).toBeGreaterThanOrEqual(4);
    expect(await h.sql(`SELECT 1 FROM rate_limit_attempts WHERE user_id = 'test-user'`)).toHaveLength(0);
    expect((await initiate(h, 'otp', 'test-user', { ip: '192.0.2.54' })).statusCode).toBe(202);
  });

  it('other processes see a rate-limit change through Postgres within their staleness bound', async () => {
    const other = new SettingsCache(h.runtime.db, 200);
    const before = await other.rateLimits();
    await putRateLimits(h, { per_ip: { max_attempts: before.per_ip.max_attempts + 7 } });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await other.rateLimits()).per_ip.max_attempts).toBe(before.per_ip.max_attempts + 7);
  });

  it('limits per IP, counting verify attempts on unknown challenges (enumeration)', async () => {
    await putRateLimits(h, { per_user: { max_attempts: 1000 }, per_ip: { window_seconds: 300, max_attempts: 4 } });
    const ip = '198.18.0.7';
    for (let i = 0; i < 4; i += 1) {
      const res = await post(h, '/otp/verify', { challenge_id: UNKNOWN(i), otp: '123456' }, { ip });
      expect(res.statusCode).toBe(404);
    }
    const refused = await post(h, '/otp/verify', { challenge_id: UNKNOWN(9), otp: '123456' }, { ip });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    // other addresses, and initiates from this one (another action), still pass
    expect(
      (await post(h, '/otp/verify', { challenge_id: UNKNOWN(10), otp: '123456' }, { ip: '198.18.0.8' })).statusCode,
    ).toBe(404);
    expect((await initiate(h, 'otp', 'bob', { ip })).statusCode).toBe(202);
    const outcomes = await h.sql<{ outcome: string; n: number }>(
      `SELECT outcome, count(*)::int AS n FROM audit_events WHERE event_type = 'identity.auth.validation_attempt' AND ip_masked = '198.18.0.0/24' GROUP BY outcome ORDER BY outcome`,
    );
    expect(outcomes).toEqual([
      { outcome: 'not_found', n: 5 },
      { outcome: 'rate_limited', n: 1 },
    ]);
    const exceeded = await h.sql(
      `SELECT 1 FROM rate_limit_attempts WHERE ip = '198.18.0.7' AND exceeded AND action = 'verify'`,
    );
    expect(exceeded).toHaveLength(1);
  });

  it("counts verifies against the challenge's user, read with the check, and a challenge of another flow against the IP only", async () => {
    await putRateLimits(h, { per_user: { window_seconds: 300, max_attempts: 2 }, per_ip: { max_attempts: 1000 } });
    try {
      // a user of its own (unknown users get a challenge like anyone else), so no earlier attempt counts
      const started = await initiate(h, 'otp', 'limits-verify-user', { ip: '198.18.3.1' });
      expect(started.statusCode).toBe(202);
      const challengeId = started.json<{ challenge_id: string }>().challenge_id;
      // a different address each time: only the user's count can refuse the third
      const wrong = (n: number) =>
        post(h, '/otp/verify', { challenge_id: challengeId, otp: '000000' }, { ip: `198.18.3.${10 + n}` });
      expect((await wrong(1)).statusCode).toBe(401);
      expect((await wrong(2)).statusCode).toBe(401);
      const refused = await wrong(3);
      expect(refused.statusCode).toBe(429);
      const rows = await h.sql<{ user_id: string; exceeded: boolean }>(
        `SELECT user_id, exceeded FROM rate_limit_attempts WHERE action = 'verify' AND user_id = 'limits-verify-user' ORDER BY id`,
      );
      expect(rows).toEqual([
        { user_id: 'limits-verify-user', exceeded: false },
        { user_id: 'limits-verify-user', exceeded: false },
        { user_id: 'limits-verify-user', exceeded: true },
      ]);
      const audit = await h.sql<{ outcome: string; user_id: string }>(
        `SELECT outcome, user_id FROM audit_events WHERE event_type = 'identity.ratelimit.exceeded' AND challenge_id = $1`,
        [challengeId],
      );
      expect(audit).toEqual([{ outcome: 'user', user_id: 'limits-verify-user' }]);

      // the same id through the magic-link route is no challenge of that flow: it counts against
      // the IP only (the user's count would otherwise have grown by one)
      const other = await post(
        h,
        '/magic-link/verify',
        { challenge: challengeId, token: 'x'.repeat(43) },
        { ip: '198.18.3.99' },
      );
      expect(other.statusCode).toBe(404);
      expect(
        await h.sql(`SELECT 1 FROM rate_limit_attempts WHERE ip = '198.18.3.99' AND action = 'verify'`),
      ).toHaveLength(1);
      expect(
        await h.sql(`SELECT 1 FROM rate_limit_attempts WHERE user_id = 'limits-verify-user' AND action = 'verify'`),
      ).toHaveLength(3);
    } finally {
      await putRateLimits(h, { per_user: { max_attempts: 1000 } });
    }
  });

  it('a client refused thousands of times costs each check no more than its limit, and is still counted right', async () => {
    await putRateLimits(h, { per_user: { max_attempts: 1000 }, per_ip: { window_seconds: 300, max_attempts: 4 } });
    const ip = '198.18.2.2';
    // a flood: 20,000 refused verifies from this address and for one user, 3 let through
    await h.sql(
      `INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded)
       SELECT NULL, $1::inet, 'verify', true FROM generate_series(1, 20000)
       UNION ALL SELECT 'flood-user', NULL, 'verify', true FROM generate_series(1, 20000)
       UNION ALL SELECT NULL, $1::inet, 'verify', false FROM generate_series(1, 3)`,
      [ip],
    );
    await h.sql('ANALYZE rate_limit_attempts');
    try {
      // refused rows do not count: one more attempt passes, the one after is refused
      expect((await post(h, '/otp/verify', { challenge_id: UNKNOWN(200), otp: '123456' }, { ip })).statusCode).toBe(
        404,
      );
      const refused = await post(h, '/otp/verify', { challenge_id: UNKNOWN(201), otp: '123456' }, { ip });
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(300);

      // more counted attempts than the limit (as after a limit was lowered): the count stops at
      // the limit and Retry-After is when the oldest of them leaves the window (100 s from now)
      await h.sql(
        `INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded, attempted_at)
         SELECT NULL, '198.18.2.3'::inet, 'verify', false, now() - make_interval(secs => 200 - 10 * g) FROM generate_series(0, 5) AS g`,
      );
      const overLowered = await post(
        h,
        '/otp/verify',
        { challenge_id: UNKNOWN(202), otp: '123456' },
        { ip: '198.18.2.3' },
      );
      expect(overLowered.statusCode).toBe(429);
      expect(Number(overLowered.headers['retry-after'])).toBeGreaterThanOrEqual(95);
      expect(Number(overLowered.headers['retry-after'])).toBeLessThanOrEqual(101);

      // what one check reads (the second call on a connection: the first also plans the function)
      const client = new pg.Client({ connectionString: h.databaseUrl });
      await client.connect();
      try {
        const buffers = async () => {
          const { rows } = await client.query<{
            'QUERY PLAN': Array<{ Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }>;
          }>(
            `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
             SELECT * FROM warden_rate_limit_check('t:user', 't:ip', 'flood-user', $1::inet, 'verify', 300, 10, 300, 4)`,
            [ip],
          );
          const plan = rows[0]!['QUERY PLAN'][0]!.Plan;
          return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
        };
        await buffers();
        // scanning the refused rows read several hundred buffers; the attempts that count, a few dozen
        expect(await buffers()).toBeLessThan(100);
      } finally {
        await client.end();
      }
    } finally {
      await h.sql(
        `DELETE FROM rate_limit_attempts WHERE ip = $1::inet OR ip = '198.18.2.3' OR user_id = 'flood-user'`,
        [ip],
      );
      await putRateLimits(h, { per_ip: { max_attempts: 1000 } });
    }
  });

  it('does not let a concurrent burst overshoot a limit', async () => {
    await putRateLimits(h, { per_ip: { max_attempts: 5 } });
    const ip = '198.18.1.1';
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post(h, '/otp/verify', { challenge_id: UNKNOWN(100 + i), otp: '123456' }, { ip }),
      ),
    );
    expect(results.filter((r) => r.statusCode === 404)).toHaveLength(5);
    expect(results.filter((r) => r.statusCode === 429)).toHaveLength(15);
    await putRateLimits(h, { per_ip: { max_attempts: 1000 } });
  });

  it('blocks single IPs and CIDR blocks, IPv4 and IPv6, with 403 before anything else', async () => {
    // the request body of the incident procedure
    const seed = await block({ ip: '192.168.1.100', reason: 'Mass token validation attempts' });
    expect(seed.statusCode).toBe(201);
    expect(seed.json()).toMatchObject({
      entry: { cidr: '192.168.1.100/32', reason: 'Mass token validation attempts', active: true, expires_at: null },
    });
    expect((await block({ ip: '198.51.100.0/24', reason: 'botnet range' })).statusCode).toBe(201);
    expect((await block({ ip: '2001:db8:abcd::/48', reason: 'v6 range' })).statusCode).toBe(201);

    const cases: Array<[string, number]> = [
      ['192.168.1.100', 403],
      ['192.168.1.101', 202],
      ['198.51.100.77', 403],
      ['198.51.101.1', 202],
      ['2001:db8:abcd:12::5', 403],
      ['2001:db8:abce::5', 202],
      ['::ffff:198.51.100.9', 403],
    ];
    for (const [ip, status] of cases) {
      const res = await initiate(h, 'otp', 'test-user-2', { ip });
      expect(res.statusCode, ip).toBe(status);
      if (status === 403) expect(res.json()).toMatchObject({ error: 'blocked' });
    }
    // verify and the magic-link page are refused too, before any lookup
    const verify = await post(h, '/otp/verify', { challenge_id: UNKNOWN(1), otp: '123456' }, { ip: '198.51.100.3' });
    expect(verify.statusCode).toBe(403);
    const page = await h.public.inject({
      method: 'GET',
      url: `/browser/api/v1/identity/auth/magic-link/verify?challenge=${UNKNOWN(1)}&token=${'A'.repeat(43)}`,
      remoteAddress: '198.51.100.3',
    });
    expect(page.statusCode).toBe(403);
    // before anything else: even a malformed body is not looked at
    expect((await post(h, '/otp/verify', { nonsense: true }, { ip: '198.51.100.3' })).statusCode).toBe(403);
    // refusals are counted per client and window (src/auth/refusals.ts): summed, not one row each
    await h.public.refusals.flush();
    const blockedAttempts = await h.sql(
      `SELECT outcome, sum(count)::int AS n FROM audit_trail
        WHERE event_type = 'identity.auth.validation_attempt' AND ip_masked = '198.51.100.0/24' GROUP BY outcome`,
    );
    expect(blockedAttempts).toEqual([{ outcome: 'blocked', n: 2 }]);
    const blockedRows = await h.sql(`SELECT 1 FROM rate_limit_attempts WHERE ip <<= '198.51.100.0/24'`);
    expect(blockedRows).toHaveLength(0);

    // X-Forwarded-For is believed from the trusted proxy only
    const viaProxy = await initiate(h, 'otp', 'test-user-2', {
      ip: '127.0.0.1',
      headers: { 'x-forwarded-for': '198.51.100.20' },
    });
    expect(viaProxy.statusCode).toBe(403);
    const spoofed = await initiate(h, 'otp', 'test-user-2', {
      ip: '192.0.2.200',
      headers: { 'x-forwarded-for': '198.51.100.20' },
    });
    expect(spoofed.statusCode).toBe(202);
    const garbage = await initiate(h, 'otp', 'test-user-2', {
      ip: '127.0.0.1',
      headers: { 'x-forwarded-for': 'not-an-address' },
    });
    expect(garbage.statusCode).toBe(400);
    expect(garbage.json()).toMatchObject({ error: 'invalid_request' });

    const list = await h.admin.inject({ url: '/admin/api/v1/blocklist/ip', headers: h.adminHeaders });
    expect(
      list
        .json<{ entries: Array<{ cidr: string }> }>()
        .entries.map((e) => e.cidr)
        .sort(),
    ).toEqual(['192.168.1.100/32', '198.51.100.0/24', '2001:db8:abcd::/48']);

    const removed = await h.admin.inject({
      method: 'DELETE',
      url: '/admin/api/v1/blocklist/ip?ip=198.51.100.0/24',
      headers: h.adminHeaders,
    });
    expect(removed.statusCode).toBe(200);
    expect((await initiate(h, 'otp', 'test-user-2', { ip: '198.51.100.77' })).statusCode).toBe(202);
    const gone = await h.admin.inject({
      method: 'DELETE',
      url: '/admin/api/v1/blocklist/ip?ip=198.51.100.0/24',
      headers: h.adminHeaders,
    });
    expect(gone.statusCode).toBe(404);
    const history = await h.admin.inject({ url: '/admin/api/v1/blocklist/ip?all=true', headers: h.adminHeaders });
    expect(history.json<{ entries: unknown[] }>().entries).toHaveLength(3);
    const audit = await h.sql(
      `SELECT outcome FROM audit_events WHERE event_type = 'identity.blocklist.changed' ORDER BY id`,
    );
    expect(audit.map((r) => r.outcome)).toEqual(['added', 'added', 'added', 'removed']);
  });

  it('lets a block expire on its own', async () => {
    const expiresAt = new Date(Date.now() + 3000).toISOString();
    const res = await block({ ip: '203.0.113.0/25', reason: 'cool-off', expires_at: expiresAt });
    expect(res.statusCode).toBe(201);
    expect((await initiate(h, 'otp', 'test-user-3', { ip: '203.0.113.9' })).statusCode).toBe(403);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(expiresAt) - Date.now()) + 200));
    expect((await initiate(h, 'otp', 'test-user-3', { ip: '203.0.113.9' })).statusCode).toBe(202);
    const list = await h.admin.inject({ url: '/admin/api/v1/blocklist/ip', headers: h.adminHeaders });
    expect(list.json<{ entries: Array<{ cidr: string }> }>().entries.map((e) => e.cidr)).not.toContain(
      '203.0.113.0/25',
    );
  });

  it('refuses a block broader than the configured minimum prefix, and writes nothing for it', async () => {
    const before = await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM ip_blocklist');
    for (const ip of ['0.0.0.0/0', '::/0', '10.0.0.0/8', '198.51.0.0/15', '2001:db8::/31']) {
      const res = await block({ ip, reason: 'too much' });
      expect(res.statusCode, ip).toBe(400);
      expect(res.json(), ip).toMatchObject({ error: 'block_too_broad' });
    }
    expect(await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM ip_blocklist')).toEqual(before);
    // the broadest allowed by default: /16 and /32
    for (const ip of ['198.51.0.0/16', '2001:db8::/32']) {
      expect(
        (await block({ ip, reason: 'wide but allowed', expires_at: new Date(Date.now() + 60_000).toISOString() }))
          .statusCode,
        ip,
      ).toBe(201);
      const lifted = await h.admin.inject({
        method: 'DELETE',
        url: `/admin/api/v1/blocklist/ip?ip=${encodeURIComponent(ip)}`,
        headers: h.adminHeaders,
      });
      expect(lifted.statusCode, ip).toBe(200);
    }
    // a runbook naming one is refused at the door, before anything starts
    const run = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/runbooks/compromised-token',
      headers: h.adminHeaders,
      payload: { severity: 'P0', by: 'oncall', users: ['test-user'], ips: ['203.0.113.7', '0.0.0.0/0'] },
    });
    expect(run.statusCode).toBe(400);
    expect(run.json()).toMatchObject({ error: 'block_too_broad' });
    expect(await h.sql('SELECT workflow_id FROM runbook_runs')).toEqual([]);
  });

  it('refuses it in a runbook step too, when the run was started some other way', async () => {
    const activities = createRunbookAuthActivities(h.runtime);
    const result = await activities.blockIps({
      key: 'runbook-compromised-token-direct/block_ips',
      ips: ['::/0', '203.0.113.77', '0.0.0.0/1'],
      reason: 'started straight through Temporal',
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(result).toMatchObject({ blocked: ['203.0.113.77/32'], tooBroad: ['::/0', '0.0.0.0/1'], invalid: [] });
    expect(
      await h.sql(
        `SELECT outcome, details->>'cidr' AS cidr FROM audit_events
          WHERE event_type = 'identity.blocklist.changed' AND details->>'actor' = 'runbook-compromised-token-direct/block_ips'
          ORDER BY id`,
      ),
    ).toEqual([
      { outcome: 'refused', cidr: '::/0' },
      { outcome: 'added', cidr: '203.0.113.77/32' },
      { outcome: 'refused', cidr: '0.0.0.0/1' },
    ]);
    expect(
      await h.sql(
        `SELECT cidr::text AS cidr FROM ip_blocklist WHERE created_by = 'runbook-compromised-token-direct/block_ips'`,
      ),
    ).toEqual([{ cidr: '203.0.113.77/32' }]);
  });

  it('answers malformed blocklist and rate-limit requests with 400', async () => {
    const bodies: Array<Record<string, unknown>> = [
      { ip: '999.1.1.1', reason: 'x' },
      { ip: '10.0.0.0/33', reason: 'x' },
      { ip: '2001:db8::/129', reason: 'x' },
      { ip: 'example.com', reason: 'x' },
      { ip: '10.0.0.1' },
      { ip: '10.0.0.1', reason: '' },
      { ip: '10.0.0.1', reason: 'x', expires_at: 'tomorrow' },
      { ip: '10.0.0.1', reason: 'x', expires_at: '2001-01-01T00:00:00Z' },
    ];
    for (const body of bodies) {
      const res = await block(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
    }
    const badDelete = await h.admin.inject({
      method: 'DELETE',
      url: '/admin/api/v1/blocklist/ip?ip=nope',
      headers: h.adminHeaders,
    });
    expect(badDelete.statusCode).toBe(400);
    for (const body of [
      {},
      { per_user: { max_attempts: 0 } },
      { per_ip: { window: '5 minutes' } },
      { per_user: { window: '5m', window_seconds: 300 } },
      { burst: 1 },
    ]) {
      const res = await h.admin.inject({
        method: 'PUT',
        url: '/admin/api/v1/ratelimits',
        headers: h.adminHeaders,
        payload: body,
      });
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
    }
  });
});
