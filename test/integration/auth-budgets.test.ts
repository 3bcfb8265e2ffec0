/**
 * The destination budget and the account guess budget through the public API (docs/security.md):
 * messages per phone number whoever asks, refused before anything is sent and answered alike for
 * an unknown user; wrong codes per account across challenges and addresses, with a backoff and a
 * daily budget; and the owner's own browser, which keeps signing in after strangers spent both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureApp } from '../../src/auth/apps';
import { messages, post, putRateLimits, secretFor, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const HOUR_BUDGET = 3;
const DAY_BUDGET = 5;
const GUESS_BUDGET = 6;

type Answer = Awaited<ReturnType<typeof post>>;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const challengeOf = (res: Answer) => res.json<{ challenge_id: string }>().challenge_id;
/** The refusal as a caller compares it: the seconds to wait differ from one moment to the next. */
const shapeOf = (res: Answer) => {
  const body = res.json<Record<string, unknown>>();
  return {
    status: res.statusCode,
    keys: Object.keys(body).sort(),
    error: body.error,
    message: String(body.message).replace(/\d+ s$/, 'N s'),
  };
};

describe('budgets', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: {
        WARDEN_DESTINATION_MAX_PER_HOUR: String(HOUR_BUDGET),
        WARDEN_DESTINATION_MAX_PER_DAY: String(DAY_BUDGET),
        WARDEN_GUESS_MAX_PER_DAY: String(GUESS_BUDGET),
        WARDEN_GUESS_FREE_FAILURES: '2',
        WARDEN_GUESS_BACKOFF_BASE_S: '1',
        WARDEN_GUESS_BACKOFF_MAX_S: '1',
      },
    });
    await ensureApp(h.runtime.db, {
      clientId: 'second-app',
      name: 'Another app',
      methods: ['sms_otp', 'magic_link'],
      redirectUris: [],
      webOrigins: [],
    });
  });
  afterAll(async () => h?.close());

  const users = (method: 'POST' | 'PATCH', url: string, payload: Record<string, unknown>) =>
    h.admin.inject({ method, url: `/admin/api/v1/users${url}`, headers: h.adminHeaders, payload });
  const start = (user: string, ip: string, extra: Record<string, unknown> = {}, headers?: Record<string, string>) =>
    post(h, '/otp/initiate', { user_id: user, ...extra }, { ip, headers });
  const verify = (challengeId: string, otp: string, ip: string, headers?: Record<string, string>) =>
    post(h, '/otp/verify', { challenge_id: challengeId, otp }, { ip, headers });
  const sentTo = async (phone: string) => (await messages(h, phone)).length;
  /** summed over the `action` label */
  const budgetMetric = async (reason: string) => {
    const series = new RegExp(`^warden_budget_refusals_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)$`, 'gm');
    return [...(await h.runtime.registry.metrics()).matchAll(series)].reduce((n, m) => n + Number(m[1]), 0);
  };

  it('holds a phone number to its budget whoever asks: two users, two apps, four addresses; nothing is sent when refused', async () => {
    const phone = '+15555550931';
    expect((await users('POST', '', { sub: 'dest-a', phone })).statusCode).toBe(201);
    expect((await users('POST', '', { sub: 'dest-b', phone: '+15555550932' })).statusCode).toBe(201);
    expect((await start('dest-a', '192.0.2.11')).statusCode).toBe(202);
    expect((await start('dest-a', '192.0.2.12', { client_id: 'second-app' })).statusCode).toBe(202);
    await waitFor('the first two messages', async () => ((await sentTo(phone)) === 2 ? true : undefined));
    // the number moves to another account: its budget goes with it
    expect((await users('PATCH', '/dest-a', { phone: '+15555550933' })).statusCode).toBe(200);
    expect((await users('PATCH', '/dest-b', { phone })).statusCode).toBe(200);
    const third = await start('dest-b', '192.0.2.13');
    expect(third.statusCode).toBe(202);
    await waitFor('the three messages', async () => ((await sentTo(phone)) === HOUR_BUDGET ? true : undefined));
    const challengesBefore = await h.sql(`SELECT id FROM auth_challenges WHERE user_id = 'dest-b'`);

    const refused = await start('dest-b', '192.0.2.14', { client_id: 'second-app' });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'too_many_messages', retry_after_seconds: expect.any(Number) });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    // a resend asks for a message too
    const resent = await post(h, '/otp/resend', { challenge_id: challengeOf(third) }, { ip: '192.0.2.15' });
    expect(resent.statusCode).toBe(429);
    expect(resent.json()).toMatchObject({ error: 'too_many_messages' });
    // before anything was started or sent
    await sleep(500);
    expect(await sentTo(phone)).toBe(HOUR_BUDGET);
    expect(await h.sql(`SELECT id FROM auth_challenges WHERE user_id = 'dest-b'`)).toEqual(challengesBefore);
    const audit = await h.sql<{
      outcome: string;
      reason: string;
      phone_last4: string;
      details: Record<string, unknown>;
    }>(
      `SELECT outcome, reason, phone_last4, details FROM audit_events
        WHERE event_type = 'identity.ratelimit.exceeded' AND user_id = 'dest-b' ORDER BY id`,
    );
    expect(audit).toMatchObject([
      {
        outcome: 'destination',
        reason: 'destination_hour',
        phone_last4: '0931',
        details: { action: 'initiate', limit: 3 },
      },
      { outcome: 'destination', reason: 'destination_hour', phone_last4: '0931', details: { action: 'resend' } },
    ]);
    // the budget table holds no phone number, only its digest
    const stored = await h.sql<{ destination: Buffer }>('SELECT destination FROM destination_sends');
    expect(stored.some((r) => r.destination.toString('latin1').includes('5555550931'))).toBe(false);
    expect(await budgetMetric('destination_hour')).toBeGreaterThanOrEqual(2);
  });

  it('answers a sign-in for an unknown user exactly like one for a real account', async () => {
    expect((await users('POST', '', { sub: 'dest-c', phone: '+15555550934' })).statusCode).toBe(201);
    const answers = async (user: string, net: number) => {
      const seen: Answer[] = [];
      for (let i = 0; i <= HOUR_BUDGET; i += 1) seen.push(await start(user, `198.18.${net}.${i + 1}`));
      return seen;
    };
    const real = await answers('dest-c', 40);
    const unknown = await answers('nobody-at-all-4711', 41);
    expect(real.map((r) => r.statusCode)).toEqual([202, 202, 202, 429]);
    expect(unknown.map((r) => r.statusCode)).toEqual(real.map((r) => r.statusCode));
    expect(real.slice(0, HOUR_BUDGET).map((r) => Object.keys(r.json()).sort())).toEqual(
      unknown.slice(0, HOUR_BUDGET).map((r) => Object.keys(r.json()).sort()),
    );
    expect(shapeOf(unknown[HOUR_BUDGET]!)).toEqual(shapeOf(real[HOUR_BUDGET]!));
    expect(
      Math.abs(
        Number(unknown[HOUR_BUDGET]!.headers['retry-after']) - Number(real[HOUR_BUDGET]!.headers['retry-after']),
      ),
    ).toBeLessThanOrEqual(5);
  });

  it('counts the day as well as the hour', async () => {
    const phone = '+15555550935';
    expect((await users('POST', '', { sub: 'dest-d', phone })).statusCode).toBe(201);
    // four messages two hours ago: outside the hour, inside the day
    await h.sql(
      `INSERT INTO destination_sends (destination, sent_at)
       SELECT sha256(convert_to('sms:' || $1::text, 'UTF8')), now() - interval '2 hours' FROM generate_series(1, 4)`,
      [phone],
    );
    expect((await start('dest-d', '192.0.2.21')).statusCode).toBe(202);
    const refused = await start('dest-d', '192.0.2.22');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'too_many_messages' });
    // the oldest of the day leaves it in about 22 hours
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(21.9 * 3600);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(22 * 3600);
    expect(await budgetMetric('destination_day')).toBe(1);
  });

  it("slows an account's verifies after a few wrong codes: 429 with Retry-After, and the refused one is no guess", async () => {
    expect((await users('POST', '', { sub: 'slow-user', phone: '+15555550941' })).statusCode).toBe(201);
    const challengeId = challengeOf(await start('slow-user', '192.0.2.31'));
    const code = await secretFor(h, challengeId);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    // from a different address each time: the account's count is what slows them down
    expect((await verify(challengeId, wrong, '203.0.113.1')).statusCode).toBe(401);
    expect((await verify(challengeId, wrong, '203.0.113.2')).statusCode).toBe(401);
    const held = await verify(challengeId, wrong, '203.0.113.3');
    expect(held.statusCode).toBe(429);
    expect(held.json()).toMatchObject({ error: 'verify_backoff', retry_after_seconds: 1 });
    expect(held.headers['retry-after']).toBe('1');
    // not counted: neither by the account nor by the challenge
    const guesses = () => h.sql(`SELECT outcome FROM account_guesses WHERE user_id = 'slow-user' ORDER BY id`);
    expect(await guesses()).toEqual([{ outcome: 'wrong' }, { outcome: 'wrong' }]);
    expect((await h.sql(`SELECT attempts FROM auth_challenges WHERE id = $1`, [challengeId]))[0]).toEqual({
      attempts: 2,
    });

    await sleep(1100);
    const third = await verify(challengeId, wrong, '203.0.113.4');
    expect(third.statusCode).toBe(401);
    expect(third.json()).toMatchObject({ remaining_attempts: 2 });
    // the right code, once the backoff has passed, signs in and ends the slow-down
    await sleep(1100);
    expect((await verify(challengeId, code, '203.0.113.5')).statusCode).toBe(200);
    expect((await guesses()).map((g) => g.outcome)).toEqual(['wrong', 'wrong', 'wrong', 'right']);
    expect(await budgetMetric('guess_backoff')).toBeGreaterThanOrEqual(1);
  });

  it("spends an account's daily guess budget from many addresses, and the owner's browser still signs in", async () => {
    const phone = '+15555550951';
    expect((await users('POST', '', { sub: 'owner', phone })).statusCode).toBe(201);
    // the owner signed in from this browser once: it is trusted by the account from then on
    const first = await start('owner', '192.0.2.51');
    const firstCode = await secretFor(h, challengeOf(first));
    const signedIn = await verify(challengeOf(first), firstCode, '192.0.2.51');
    expect(signedIn.statusCode).toBe(200);
    const trust = signedIn.cookies.find((c) => c.name === 'warden_trust');
    expect(trust).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/browser/api/v1/identity/auth' });
    const ownersBrowser = { cookie: `warden_trust=${trust!.value}` };
    const trusted = await h.sql<{ device_sha256: Buffer }>(
      `SELECT device_sha256 FROM trusted_devices WHERE user_id = 'owner'`,
    );
    expect(trusted).toHaveLength(1);
    expect(trusted[0]!.device_sha256.toString('base64url')).not.toBe(trust!.value);

    // a stranger guesses from a new address each time, waiting out the backoff, over two challenges
    // (the per-user limit, lowered again below, would otherwise refuse the backoff's retries first)
    await putRateLimits(h, { per_user: { max_attempts: 1000 } });
    let n = 0;
    const guessFrom = async (challengeId: string, otp: string) => {
      for (;;) {
        n += 1;
        const res = await verify(challengeId, otp, `203.0.113.${100 + n}`);
        if (res.statusCode !== 429 || res.json<{ error: string }>().error !== 'verify_backoff') return res;
        await sleep(Number(res.headers['retry-after']) * 1000 + 100);
      }
    };
    const attack: Array<{ id: string; code: string }> = [];
    for (let i = 0; i < 2; i += 1) {
      const id = challengeOf(await start('owner', `203.0.113.${10 + i}`));
      attack.push({ id, code: await secretFor(h, id) });
    }
    const miss = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await guessFrom(attack[0]!.id, miss(attack[0]!.code))).statusCode);
    statuses.push((await guessFrom(attack[1]!.id, miss(attack[1]!.code))).statusCode);
    expect(statuses).toEqual([401, 401, 401, 401, 423, 401]);
    const spent = await guessFrom(attack[1]!.id, miss(attack[1]!.code));
    expect(spent.statusCode).toBe(429);
    expect(spent.json()).toMatchObject({ error: 'verify_budget_exhausted' });
    // the oldest wrong code leaves the day in about 24 hours
    expect(Number(spent.headers['retry-after'])).toBeGreaterThan(86_000);
    // no more guesses today, not even the right one: the stranger cannot tell
    expect((await guessFrom(attack[1]!.id, attack[1]!.code)).json()).toMatchObject({
      error: 'verify_budget_exhausted',
    });
    // back to the normal per-user limit, which the stranger's requests have spent too
    await putRateLimits(h, { per_user: { max_attempts: 10 } });
    expect((await guessFrom(attack[1]!.id, attack[1]!.code)).json()).toMatchObject({ error: 'rate_limited' });
    // and so is the number's hour: a stranger's initiate sends nothing more
    expect((await start('owner', '203.0.113.250')).json()).toMatchObject({ error: 'too_many_messages' });
    const wrongCodes = await h.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM account_guesses WHERE user_id = 'owner' AND device_sha256 IS NULL AND outcome <> 'right'`,
    );
    expect(wrongCodes).toEqual([{ n: GUESS_BUDGET }]);

    // the owner's browser, from yet another address, has budgets of its own
    const mine = await start('owner', '192.0.2.52', {}, ownersBrowser);
    expect(mine.statusCode).toBe(202);
    const code = await secretFor(h, challengeOf(mine), 1, phone);
    // a typo first: it costs the owner's own budget, not the strangers'
    expect((await verify(challengeOf(mine), miss(code), '192.0.2.52', ownersBrowser)).statusCode).toBe(401);
    const ok = await verify(challengeOf(mine), code, '192.0.2.52', ownersBrowser);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'verified' });
    // a browser that signed in to another account is a stranger to this one
    const elsewhere = 'A'.repeat(43);
    await h.sql(
      `INSERT INTO trusted_devices (user_id, device_sha256) VALUES ('dest-c', sha256(convert_to($1::text, 'UTF8')))`,
      [elsewhere],
    );
    const other = await start('owner', '192.0.2.53', {}, { cookie: `warden_trust=${elsewhere}` });
    expect(other.json()).toMatchObject({ error: 'too_many_messages' });
    expect(await budgetMetric('guess_budget')).toBeGreaterThanOrEqual(2);
  });
});
