/**
 * Signing users into registered apps: the binding a challenge gets at initiate, the one-time
 * authorization code released only to its holder, the exchange for a signed token, the
 * server-to-server verification, and every refusal with its stable code and audit row. Real
 * worker, dev server, Postgres, sandbox providers; the public API through `inject`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretFor as outboxSecret } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const BASE = '/browser/api/v1/identity/auth';
const APP = 'shop-web';
const OTHER = 'shop-admin';
const ORIGIN = 'https://shop.example.com';
const REDIRECT = 'https://shop.example.com/callback';

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};
const basic = (clientId: string, key: string) => ({
  authorization: `Basic ${Buffer.from(`${clientId}:${key}`).toString('base64')}`,
});

describe('signing users into apps', () => {
  let h: Harness;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    h = await startHarness();
    for (const [clientId, extra] of [
      [APP, { web_origins: [ORIGIN], redirect_uris: [REDIRECT] }],
      [OTHER, { methods: ['sms_otp'] }],
    ] as const) {
      const created = await h.admin.inject({
        method: 'POST',
        url: '/admin/api/v1/apps',
        headers: h.adminHeaders,
        payload: { client_id: clientId, name: clientId, methods: ['sms_otp', 'magic_link'], ...extra },
      });
      expect(created.statusCode, created.body).toBe(201);
      const key = await h.admin.inject({
        method: 'POST',
        url: `/admin/api/v1/apps/${clientId}/keys`,
        headers: h.adminHeaders,
        payload: { label: 'test' },
      });
      expect(key.statusCode, key.body).toBe(201);
      keys[clientId] = key.json<{ key: string }>().key;
    }
  });
  afterAll(async () => h?.close());

  const initiate = async (kind: 'otp' | 'magic-link', body: Record<string, unknown>, cookie?: string) => {
    const res = await h.public.inject({
      method: 'POST',
      url: `${BASE}/${kind}/initiate`,
      payload: body,
      ...(cookie ? { cookies: { warden_device: cookie } } : {}),
      remoteAddress: '127.0.0.1',
    });
    return {
      res,
      id: res.statusCode === 202 ? res.json<{ challenge_id: string }>().challenge_id : undefined,
      device: res.cookies.find((c) => c.name === 'warden_device'),
    };
  };

  const secretFor = (challengeId: string) => outboxSecret(h, challengeId);

  const exchange = (payload: Record<string, unknown>, headers: Record<string, string>) =>
    h.public.inject({ method: 'POST', url: '/oauth/token', payload, headers, remoteAddress: '127.0.0.1' });

  const jwks = async () =>
    createLocalJWKSet((await h.public.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>());

  const audit = (type: string, challengeId?: string) =>
    h.sql<{ outcome: string; details: Record<string, unknown> }>(
      `SELECT outcome, details FROM audit_events WHERE event_type = $1 AND ($2::uuid IS NULL OR challenge_id = $2) ORDER BY id`,
      [type, challengeId ?? null],
    );

  it('turns a correct SMS code into a one-time code, and the code with its verifier into a signed token', async () => {
    const { verifier, challenge } = pkce();
    const { res, id, device } = await initiate('otp', {
      user_id: 'test-user',
      client_id: APP,
      state: 'st-123',
      nonce: 'n-456',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expect(res.statusCode, res.body).toBe(202);
    expect(device).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: BASE });

    const verified = await h.public.inject({
      method: 'POST',
      url: `${BASE}/otp/verify`,
      payload: { challenge_id: id, otp: await secretFor(id!) },
    });
    expect(verified.statusCode, verified.body).toBe(200);
    const answer = verified.json<{ status: string; code: string; state: string; expires_in: number }>();
    expect(answer).toEqual({
      status: 'verified',
      code: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      state: 'st-123',
      expires_in: 60,
    });
    expect(answer).not.toHaveProperty('user_id');

    // the wrong verifier, then the wrong app's key: refused, and the code still works after
    const wrongVerifier = await exchange(
      { grant_type: 'authorization_code', code: answer.code, code_verifier: pkce().verifier },
      basic(APP, keys[APP]!),
    );
    expect(wrongVerifier.statusCode).toBe(400);
    expect(wrongVerifier.json()).toMatchObject({ error: 'invalid_grant', reason: 'wrong_verifier' });
    const wrongApp = await exchange(
      { grant_type: 'authorization_code', code: answer.code, code_verifier: verifier },
      basic(OTHER, keys[OTHER]!),
    );
    expect(wrongApp.json()).toMatchObject({ error: 'invalid_grant', reason: 'wrong_client' });
    const badKey = await exchange(
      { grant_type: 'authorization_code', code: answer.code, code_verifier: verifier },
      basic(APP, `${keys[APP]!.slice(0, -2)}xx`),
    );
    expect(badKey.statusCode).toBe(401);
    expect(badKey.json()).toMatchObject({ error: 'invalid_client' });

    const token = await exchange(
      { grant_type: 'authorization_code', code: answer.code, code_verifier: verifier },
      basic(APP, keys[APP]!),
    );
    expect(token.statusCode, token.body).toBe(200);
    const { id_token, token_type, expires_in } = token.json<{
      id_token: string;
      token_type: string;
      expires_in: number;
    }>();
    expect([token_type, expires_in]).toEqual(['Bearer', 900]);
    const { payload, protectedHeader } = await jwtVerify(id_token, await jwks(), { audience: APP });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub: 'test-user', aud: APP, amr: ['otp'], nonce: 'n-456' });
    expect(typeof payload.auth_time).toBe('number');
    expect(payload.exp! - payload.iat!).toBe(900);
    // presented to another audience, it is refused
    await expect(jwtVerify(id_token, await jwks(), { audience: OTHER })).rejects.toThrow();

    // a second exchange of the same code: refused and audited
    const replay = await exchange(
      { grant_type: 'authorization_code', code: answer.code, code_verifier: verifier },
      basic(APP, keys[APP]!),
    );
    expect(replay.json()).toMatchObject({ error: 'invalid_grant', reason: 'already_exchanged' });
    expect((await audit('identity.auth.code_refused', id)).map((r) => r.outcome)).toEqual([
      'wrong_verifier',
      'wrong_client',
      'already_exchanged',
    ]);
    expect(await audit('identity.auth.code_exchanged', id)).toHaveLength(1);
    expect((await audit('identity.auth.token_issued', id))[0]!.details).toMatchObject({
      client_id: APP,
      jti: decodeJwt(id_token).jti,
    });
    // no code, verifier or token in a log line or an audit row
    const rows = JSON.stringify(await h.sql('SELECT * FROM audit_events WHERE challenge_id = $1', [id]));
    for (const secret of [answer.code, verifier, id_token]) {
      expect(h.logs.lines.some((l) => l.includes(secret))).toBe(false);
      expect(rows.includes(secret)).toBe(false);
    }
    expect(JSON.stringify(await h.sql('SELECT * FROM auth_codes WHERE challenge_id = $1', [id]))).not.toContain(
      answer.code,
    );
  });

  it('refuses an expired code and a code superseded by a newer release', async () => {
    const { verifier, challenge } = pkce();
    const { id } = await initiate('otp', {
      user_id: 'test-user-2',
      client_id: APP,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const first = await h.public.inject({
      method: 'POST',
      url: `${BASE}/otp/verify`,
      payload: { challenge_id: id, otp: await secretFor(id!) },
    });
    const code = first.json<{ code: string }>().code;
    // the first device polls with its verifier: a fresh code, the earlier one stops working
    const polled = await h.public.inject({
      method: 'POST',
      url: `${BASE}/challenges/${id}`,
      payload: { code_verifier: verifier },
    });
    expect(polled.json()).toMatchObject({ status: 'verified', code: expect.any(String) });
    const newer = polled.json<{ code: string }>().code;
    const stale = await exchange(
      { grant_type: 'authorization_code', code, code_verifier: verifier },
      basic(APP, keys[APP]!),
    );
    expect(stale.json()).toMatchObject({ error: 'invalid_grant', reason: 'superseded' });
    await h.sql(`UPDATE auth_codes SET expires_at = now() - interval '1 second' WHERE challenge_id = $1`, [id]);
    const expired = await exchange(
      { grant_type: 'authorization_code', code: newer, code_verifier: verifier },
      basic(APP, keys[APP]!),
    );
    expect(expired.json()).toMatchObject({ error: 'invalid_grant', reason: 'expired' });
    const missing = await exchange({ grant_type: 'authorization_code', code: newer }, basic(APP, keys[APP]!));
    expect(missing.statusCode).toBe(400);
    const unsupported = await exchange({ grant_type: 'password', code: newer }, basic(APP, keys[APP]!));
    expect(unsupported.json()).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it('lands a magic link on the app on the device that asked, and only there', async () => {
    const { verifier, challenge } = pkce();
    const { id, device } = await initiate('magic-link', {
      user_id: 'test-user',
      client_id: APP,
      state: 'ml-state',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const token = await secretFor(id!);
    const form = new URLSearchParams({ challenge: id!, token }).toString();

    // another device: approved, no code, and its polling learns nothing
    const elsewhere = await h.public.inject({
      method: 'POST',
      url: `${BASE}/magic-link/verify`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      payload: form,
    });
    expect(elsewhere.statusCode).toBe(200);
    expect(elsewhere.headers['content-type']).toMatch(/text\/html/);
    expect(elsewhere.body).toContain('Sign-in approved');
    expect(elsewhere.headers.location).toBeUndefined();
    const stranger = await h.public.inject({ method: 'GET', url: `${BASE}/challenges/${id}` });
    expect(stranger.statusCode).toBe(404);
    const wrongVerifier = await h.public.inject({
      method: 'POST',
      url: `${BASE}/challenges/${id}`,
      payload: { code_verifier: pkce().verifier },
    });
    expect(wrongVerifier.statusCode).toBe(404);
    expect(await audit('identity.auth.code_issued', id)).toEqual([]);

    // the first device, polling with its cookie, gets the code; it exchanges to a token for the email method
    const polled = await h.public.inject({
      method: 'GET',
      url: `${BASE}/challenges/${id}`,
      cookies: { warden_device: device!.value },
    });
    expect(polled.json()).toMatchObject({ status: 'verified', code: expect.any(String), state: 'ml-state' });
    const token2 = await exchange(
      {
        grant_type: 'authorization_code',
        code: polled.json<{ code: string }>().code,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
      },
      basic(APP, keys[APP]!),
    );
    expect(token2.statusCode, token2.body).toBe(200);
    expect(decodeJwt(token2.json<{ id_token: string }>().id_token)).toMatchObject({ sub: 'test-user', amr: ['email'] });
  });

  it('redirects the confirm on the same device to the redirect URI with the code and state', async () => {
    const { challenge } = pkce();
    const { id, device } = await initiate('magic-link', {
      user_id: 'test-user-3',
      client_id: APP,
      state: 'same-device',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const confirm = await h.public.inject({
      method: 'POST',
      url: `${BASE}/magic-link/verify`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:80' },
      cookies: { warden_device: device!.value },
      payload: new URLSearchParams({ challenge: id!, token: await secretFor(id!) }).toString(),
    });
    expect(confirm.statusCode, confirm.body).toBe(303);
    const target = new URL(confirm.headers.location as string);
    expect(`${target.origin}${target.pathname}`).toBe(REDIRECT);
    expect(target.searchParams.get('state')).toBe('same-device');
    expect(target.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // the request log keeps no code
    expect(h.logs.lines.some((l) => l.includes(target.searchParams.get('code')!))).toBe(false);
  });

  it('refuses a cross-site confirm, a form post to a JSON route, and CORS for an unregistered origin', async () => {
    const { id } = await initiate('magic-link', { user_id: 'bob', client_id: APP });
    const crossSite = await h.public.inject({
      method: 'POST',
      url: `${BASE}/magic-link/verify`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
      payload: new URLSearchParams({ challenge: id!, token: await secretFor(id!) }).toString(),
    });
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.json()).toMatchObject({ error: 'cross_site_request' });
    expect((await h.sql('SELECT status FROM auth_challenges WHERE id = $1', [id]))[0]).toEqual({ status: 'open' });

    const formToJson = await h.public.inject({
      method: 'POST',
      url: `${BASE}/otp/initiate`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'user_id=test-user',
    });
    expect(formToJson.statusCode).toBe(415);
    expect(formToJson.json()).toMatchObject({ error: 'unsupported_media_type' });

    const preflight = (origin: string) =>
      h.public.inject({
        method: 'OPTIONS',
        url: `${BASE}/otp/initiate`,
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    expect((await preflight(ORIGIN)).headers['access-control-allow-origin']).toBe(ORIGIN);
    expect((await preflight(ORIGIN)).headers['access-control-allow-credentials']).toBe('true');
    expect((await preflight('https://evil.example')).headers['access-control-allow-origin']).toBeUndefined();
    const fromEvil = await h.public.inject({
      method: 'POST',
      url: `${BASE}/otp/initiate`,
      headers: { origin: 'https://evil.example' },
      payload: { user_id: 'test-user', client_id: APP },
    });
    expect(fromEvil.statusCode).toBe(403);
    expect(fromEvil.json()).toMatchObject({ error: 'origin_not_allowed' });
  });

  it('refuses an unknown or disabled app, a method it does not allow, and a redirect URI it did not register', async () => {
    const refusals: Array<[Record<string, unknown>, 'otp' | 'magic-link', number, string]> = [
      [{ client_id: 'nobody-app' }, 'otp', 400, 'unknown_client'],
      [{ client_id: OTHER }, 'magic-link', 403, 'method_not_allowed'],
      [
        { client_id: APP, redirect_uri: 'https://shop.example.com/elsewhere' },
        'magic-link',
        400,
        'invalid_redirect_uri',
      ],
      [{ client_id: APP, code_challenge: pkce().challenge }, 'otp', 400, 'invalid_request'],
      [{ client_id: APP, code_challenge: 'short', code_challenge_method: 'S256' }, 'otp', 400, 'invalid_request'],
    ];
    const before = await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM auth_challenges');
    for (const [fields, kind, status, code] of refusals) {
      const { res } = await initiate(kind, { user_id: 'test-user', ...fields });
      expect(res.statusCode, `${JSON.stringify(fields)}: ${res.body}`).toBe(status);
      expect(res.json()).toMatchObject({ error: code });
    }
    const disabled = await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/apps/${OTHER}/disable`,
      headers: h.adminHeaders,
    });
    expect(disabled.statusCode, disabled.body).toBe(200);
    const { res } = await initiate('otp', { user_id: 'test-user', client_id: OTHER });
    expect([res.statusCode, res.json<{ error: string }>().error]).toEqual([403, 'client_disabled']);
    // and its key no longer exchanges anything
    const keyOfDisabled = await exchange(
      { grant_type: 'authorization_code', code: 'x'.repeat(43) },
      basic(OTHER, keys[OTHER]!),
    );
    expect(keyOfDisabled.statusCode).toBe(401);
    await h.admin.inject({ method: 'POST', url: `/admin/api/v1/apps/${OTHER}/enable`, headers: h.adminHeaders });
    // nothing was started for any refusal
    expect(await h.sql('SELECT count(*)::int AS n FROM auth_challenges')).toEqual(before);
  });

  it('verifies server to server with the app key: start, status, check, and the token at once', async () => {
    const server = (method: string, url: string, payload?: Record<string, unknown>, clientId = APP) =>
      h.public.inject({ method: method as 'GET', url, payload, headers: basic(clientId, keys[clientId]!) });
    const started = await server('POST', '/server/api/v1/verifications', {
      user_id: 'alice',
      method: 'sms_otp',
      client_ip: '198.51.100.7',
      nonce: 'srv-nonce',
    });
    expect(started.statusCode, started.body).toBe(202);
    const id = started.json<{ verification_id: string }>().verification_id;
    // another app cannot see it
    expect((await server('GET', `/server/api/v1/verifications/${id}`, undefined, OTHER)).statusCode).toBe(404);
    const noKey = await h.public.inject({ method: 'GET', url: `/server/api/v1/verifications/${id}` });
    expect(noKey.statusCode).toBe(401);

    const code = await secretFor(id);
    const wrong = await server('POST', `/server/api/v1/verifications/${id}/check`, {
      code: code === '000000' ? '111111' : '000000',
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ error: 'invalid_otp', remaining_attempts: 4 });
    const ok = await server('POST', `/server/api/v1/verifications/${id}/check`, { code });
    expect(ok.statusCode, ok.body).toBe(200);
    const { payload } = await jwtVerify(ok.json<{ id_token: string }>().id_token, await jwks(), { audience: APP });
    expect(payload).toMatchObject({ sub: 'alice', amr: ['otp'], nonce: 'srv-nonce' });
    expect((await server('GET', `/server/api/v1/verifications/${id}`)).json()).toMatchObject({ status: 'verified' });
    const again = await server('POST', `/server/api/v1/verifications/${id}/check`, { code });
    expect(again.statusCode).toBe(409);
    // the end user's address is what the limits and the audit trail saw
    const [generated] = await h.sql<{ ip_masked: string }>(
      `SELECT ip_masked FROM audit_events WHERE challenge_id = $1 AND event_type = 'identity.auth.token_generated'`,
      [id],
    );
    expect(generated!.ip_masked).toMatch(/^198\.51\.100\./);

    const link = await server('POST', '/server/api/v1/verifications', { user_id: 'alice', method: 'magic_link' });
    expect(link.json()).toMatchObject({ error: 'code_challenge_required' });
  });

  it('keeps each app to its own limit', async () => {
    const limited = 'tight-app';
    const created = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/apps',
      headers: h.adminHeaders,
      payload: {
        client_id: limited,
        name: 'tight',
        methods: ['sms_otp'],
        initiate_limit: { window_seconds: 3600, max_attempts: 2 },
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const answers = [];
    for (const user of ['u-lim-1', 'u-lim-2', 'u-lim-3'])
      answers.push((await initiate('otp', { user_id: user, client_id: limited })).res);
    expect(answers.map((r) => r.statusCode)).toEqual([202, 202, 429]);
    expect(answers[2]!.headers['retry-after']).toBeDefined();
    // another app is not affected
    expect((await initiate('otp', { user_id: 'u-lim-3', client_id: APP })).res.statusCode).toBe(202);

    // and its verify limit counts every check of its challenges
    const checked = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/apps',
      headers: h.adminHeaders,
      payload: {
        client_id: 'tight-verify',
        name: 'tight',
        methods: ['sms_otp'],
        verify_limit: { window_seconds: 3600, max_attempts: 1 },
      },
    });
    expect(checked.statusCode, checked.body).toBe(201);
    const { id } = await initiate('otp', { user_id: 'bob', client_id: 'tight-verify' });
    const code = await secretFor(id!);
    const guess = (otp: string) =>
      h.public.inject({ method: 'POST', url: `${BASE}/otp/verify`, payload: { challenge_id: id, otp } });
    expect((await guess(code === '000000' ? '111111' : '000000')).statusCode).toBe(401);
    const over = await guess(code);
    expect([over.statusCode, over.json<{ error: string }>().error]).toEqual([429, 'rate_limited']);
    expect((await audit('identity.auth.validation_attempt', id)).map((r) => r.outcome)).toEqual([
      'invalid_otp',
      'rate_limited',
    ]);
  });
});
