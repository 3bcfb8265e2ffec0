/**
 * The keys that sign the tokens Warden issues to apps: signing, the JWKS and the discovery
 * document over HTTP, rotation through the admin API, the end of a retired key's publication,
 * concurrent first starts, and the private key kept out of every place it must not be.
 */
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aad, unseal } from '../../src/auth/crypto';
import { maxTokenTtlSeconds, RETIRED_KEY_PUBLISHED_SECONDS, TokenKeyStore } from '../../src/auth/tokenKeys';
import { parseKeyring } from '../../src/crypto/keyring';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

const ISSUER = 'https://warden.test.example';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('token signing keys', () => {
  let h: Harness;
  let operator: { authorization: string };
  /** every response body this file received from Warden */
  const bodies: string[] = [];
  /** the private `d` of every key this file saw, read by unwrapping the rows with the keyring */
  const privateDs = new Set<string>();

  const jwksUrl = () => `${h.servers!.urls.public}/.well-known/jwks.json`;
  const fetchJwks = async () => {
    const res = await fetch(jwksUrl());
    const text = await res.text();
    bodies.push(text);
    return { res, jwks: JSON.parse(text) as JSONWebKeySet };
  };
  const admin = async (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) => {
    const res = await h.admin.inject({ method, url: `/admin/api/v1${url}`, headers: operator, payload });
    bodies.push(res.body);
    return res;
  };
  const sign = (aud = 'app-one') =>
    h.runtime.tokenKeys.sign({
      sub: 'alice',
      aud,
      amr: ['otp'],
      authTime: new Date('2025-01-15T10:00:00.000Z'),
      ttlSeconds: 600,
    });
  const collectPrivateDs = async () => {
    const kek = parseKeyring(h.env.WARDEN_KEYRING!);
    const rows = await h.sql<{ kid: string; kek_id: string; wrapped_private: Buffer }>(
      'SELECT kid, kek_id, wrapped_private FROM token_signing_keys',
    );
    for (const row of rows) {
      const jwk = JSON.parse(
        unseal(kek.keys.get(row.kek_id)!, row.wrapped_private, aad.tokenKey(row.kid)).toString('utf8'),
      ) as { d: string };
      privateDs.add(jwk.d);
    }
  };

  beforeAll(async () => {
    // a trailing slash is dropped: `iss` is exactly the discovery document's issuer
    h = await startHarness({ listen: true, worker: false, env: { WARDEN_ISSUER: `${ISSUER}/` } });
    operator = await operatorHeaders(h, 'token-key-rotator');
  });
  afterAll(async () => h?.close());

  it('creates exactly one key when processes start signing at once', async () => {
    expect(await h.sql('SELECT kid FROM token_signing_keys')).toEqual([]);
    const stores = [
      h.runtime.tokenKeys,
      ...Array.from({ length: 7 }, () => new TokenKeyStore(h.runtime.db, h.runtime.keys.keyring, { issuer: ISSUER })),
    ];
    const signed = await Promise.all(stores.flatMap((store) => [store.sign(claims()), store.sign(claims())]));
    const rows = await h.sql<{ kid: string; status: string }>('SELECT kid, status FROM token_signing_keys');
    expect(rows).toEqual([{ kid: expect.stringMatching(/^tk-/), status: 'active' }]);
    expect(new Set(signed.map((s) => s.kid))).toEqual(new Set([rows[0]!.kid]));
    await collectPrivateDs();
  });

  it('signs tokens that verify against the JWKS fetched over HTTP, for their audience and issuer only', async () => {
    const authTime = new Date('2025-01-15T10:00:00.000Z');
    const signed = await h.runtime.tokenKeys.sign({
      sub: 'alice',
      aud: 'app-one',
      amr: ['otp'],
      authTime,
      nonce: 'n-0S6_WzA2Mj',
      ttlSeconds: 600,
      extra: { email_verified: true },
    });
    expect(signed.jti).toMatch(UUID);

    const jwks = createRemoteJWKSet(new URL(jwksUrl()));
    const { payload, protectedHeader } = await jwtVerify(signed.token, jwks, {
      issuer: ISSUER,
      audience: 'app-one',
      algorithms: ['ES256'],
    });
    expect(protectedHeader).toEqual({ alg: 'ES256', kid: signed.kid, typ: 'JWT' });
    expect(payload).toEqual({
      iss: ISSUER,
      sub: 'alice',
      aud: 'app-one',
      amr: ['otp'],
      auth_time: authTime.getTime() / 1000,
      iat: expect.any(Number),
      exp: expect.any(Number),
      jti: signed.jti,
      nonce: 'n-0S6_WzA2Mj',
      email_verified: true,
    });
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(signed.expiresAt.getTime()).toBe(payload.exp! * 1000);
    // without a nonce there is no nonce claim
    expect((await jwtVerify((await sign()).token, jwks, { audience: 'app-one' })).payload).not.toHaveProperty('nonce');

    // the same token presented to another app, or checked against another issuer, is refused
    await expect(jwtVerify(signed.token, jwks, { issuer: ISSUER, audience: 'app-two' })).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'aud',
    });
    await expect(
      jwtVerify(signed.token, jwks, { issuer: 'https://other.example', audience: 'app-one' }),
    ).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' });

    // the JWKS: cacheable, public members only
    const { res, jwks: set } = await fetchJwks();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(set.keys).toHaveLength(1);
    expect(Object.keys(set.keys[0]!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(set.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: signed.kid });
  });

  it('refuses a lifetime longer than any token Warden issues, and registered claims through extra', async () => {
    const base = claims();
    await expect(h.runtime.tokenKeys.sign({ ...base, ttlSeconds: maxTokenTtlSeconds + 1 })).rejects.toThrow(
      /ttlSeconds/,
    );
    await expect(h.runtime.tokenKeys.sign({ ...base, ttlSeconds: 0 })).rejects.toThrow(/ttlSeconds/);
    await expect(h.runtime.tokenKeys.sign({ ...base, extra: { iss: 'https://evil.example' } })).rejects.toThrow(/iss/);
    expect((await h.runtime.tokenKeys.sign({ ...base, ttlSeconds: maxTokenTtlSeconds })).kid).toMatch(/^tk-/);
  });

  it('publishes the discovery document', async () => {
    const res = await fetch(`${h.servers!.urls.public}/.well-known/openid-configuration`);
    const text = await res.text();
    bodies.push(text);
    expect(res.status).toBe(200);
    expect(JSON.parse(text)).toEqual({
      issuer: ISSUER,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      token_endpoint: `${ISSUER}/oauth/token`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['ES256'],
      subject_types_supported: ['public'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    });
  });

  let firstKid: string;
  let secondKid: string;
  let signedBefore: string;

  it('rotates with the data key: both keys published, tokens signed before still verify, new ones carry the new kid', async () => {
    const before = await sign();
    signedBefore = before.token;
    firstKid = before.kid;

    const res = await admin('POST', '/keys/rotate', { reason: 'token key drill' });
    expect(res.statusCode).toBe(200);
    const rotated = res.json<{ key_id: string; token_kid: string; previous_token_kid: string | null }>();
    expect(rotated.previous_token_kid).toBe(firstKid);
    expect(rotated.token_kid).toMatch(/^tk-/);
    expect(rotated.token_kid).not.toBe(firstKid);
    secondKid = rotated.token_kid;

    const { jwks } = await fetchJwks();
    expect(jwks.keys.map((k) => k.kid)).toEqual([secondKid, firstKid]);
    const keySet = createLocalJWKSet(jwks);
    const old = await jwtVerify(signedBefore, keySet, { issuer: ISSUER, audience: 'app-one' });
    expect(old.protectedHeader.kid).toBe(firstKid);

    const after = await sign();
    expect(after.kid).toBe(secondKid);
    expect((await jwtVerify(after.token, keySet, { issuer: ISSUER, audience: 'app-one' })).protectedHeader.kid).toBe(
      secondKid,
    );

    // the retired key is published for the longest token lifetime plus the clock-skew allowance
    const [retired] = await h.sql<{ status: string; published_for: number }>(
      `SELECT status, extract(epoch FROM published_until - retired_at)::int AS published_for
         FROM token_signing_keys WHERE kid = $1`,
      [firstKid],
    );
    expect(retired).toEqual({ status: 'retired', published_for: RETIRED_KEY_PUBLISHED_SECONDS });
    expect(RETIRED_KEY_PUBLISHED_SECONDS).toBeGreaterThan(maxTokenTtlSeconds);

    // the rotation's history and audit row name the kids
    expect(
      await h.sql('SELECT from_token_kid, to_token_kid, to_key_id FROM key_rotations WHERE reason = $1', [
        'token key drill',
      ]),
    ).toEqual([{ from_token_kid: firstKid, to_token_kid: secondKid, to_key_id: rotated.key_id }]);
    const [audit] = await h.sql<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_events WHERE event_type = 'identity.keys.rotated' AND reason = $1`,
      ['token key drill'],
    );
    expect(audit!.details).toMatchObject({ from_token_kid: firstKid, to_token_kid: secondKid, deleted_token_kids: [] });

    const listed = await admin('GET', '/keys');
    expect(listed.statusCode).toBe(200);
    const tokenKeys = listed.json<{
      token_keys: Array<{ kid: string; status: string; published_until: string | null }>;
    }>().token_keys;
    expect(tokenKeys.map((k) => [k.kid, k.status])).toEqual([
      [secondKid, 'active'],
      [firstKid, 'retired'],
    ]);
    expect(tokenKeys[0]!.published_until).toBeNull();
    expect(tokenKeys[1]!.published_until).toEqual(expect.any(String));
    await collectPrivateDs();
  });

  it('drops a retired key from the JWKS once its publication ends, and the next rotation deletes it', async () => {
    await h.sql(`UPDATE token_signing_keys SET published_until = now() - interval '1 second' WHERE kid = $1`, [
      firstKid,
    ]);
    // every process sees it within the staleness bound of its cache
    const jwks = await waitFor('the expired key to leave the JWKS', async () => {
      const { jwks: set } = await fetchJwks();
      return set.keys.some((k) => k.kid === firstKid) ? undefined : set;
    });
    expect(jwks.keys.map((k) => k.kid)).toEqual([secondKid]);
    await expect(
      jwtVerify(signedBefore, createLocalJWKSet(jwks), { issuer: ISSUER, audience: 'app-one' }),
    ).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });

    const res = await admin('POST', '/keys/rotate', { reason: 'token key cleanup' });
    expect(res.statusCode).toBe(200);
    const rotated = res.json<{ token_kid: string; previous_token_kid: string }>();
    expect(rotated.previous_token_kid).toBe(secondKid);
    expect(
      (await h.sql<{ kid: string }>('SELECT kid FROM token_signing_keys ORDER BY created_at')).map((r) => r.kid),
    ).toEqual([secondKid, rotated.token_kid]);
    const [audit] = await h.sql<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_events WHERE event_type = 'identity.keys.rotated' AND reason = $1`,
      ['token key cleanup'],
    );
    expect(audit!.details).toMatchObject({ deleted_token_kids: [firstKid], to_token_kid: rotated.token_kid });
    await collectPrivateDs();
  });

  it('never shows a private key in clear: logs, API responses, audit rows, its own row', async () => {
    expect(privateDs.size).toBe(3);
    const forms = [...privateDs].flatMap((d) => {
      const bytes = Buffer.from(d, 'base64url');
      return [d, bytes.toString('base64'), bytes.toString('hex')];
    });
    const leaks = (text: string) => forms.filter((f) => text.includes(f));

    expect(h.logs.lines.length).toBeGreaterThan(0);
    expect(h.logs.records('token key unseal success').length).toBeGreaterThan(0);
    expect(leaks(h.logs.text())).toEqual([]);

    expect(bodies.length).toBeGreaterThan(5);
    expect(leaks(bodies.join('\n'))).toEqual([]);
    expect(bodies.join('\n')).not.toMatch(/"d"\s*:/);

    const audit = await h.sql<{ line: string }>('SELECT row_to_json(a)::text AS line FROM audit_events a');
    expect(audit.length).toBeGreaterThan(0);
    expect(leaks(audit.map((r) => r.line).join('\n'))).toEqual([]);

    const rows = await h.sql<{ line: string; public_jwk: Record<string, unknown>; wrapped_private: Buffer }>(
      'SELECT row_to_json(t)::text AS line, public_jwk, wrapped_private FROM token_signing_keys t',
    );
    expect(rows.length).toBe(2);
    for (const row of rows) {
      expect(row.public_jwk).not.toHaveProperty('d');
      expect(leaks(row.line)).toEqual([]);
      for (const d of privateDs) {
        expect(row.wrapped_private.includes(Buffer.from(d, 'utf8'))).toBe(false);
        expect(row.wrapped_private.includes(Buffer.from(d, 'base64url'))).toBe(false);
      }
    }
    const rotations = await h.sql<{ line: string }>('SELECT row_to_json(r)::text AS line FROM key_rotations r');
    expect(leaks(rotations.map((r) => r.line).join('\n'))).toEqual([]);
  });
});

function claims() {
  return {
    sub: 'bob',
    aud: 'app-one',
    amr: ['email'],
    authTime: new Date(),
    ttlSeconds: 300,
  };
}
