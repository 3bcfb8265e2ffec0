/** The wrapping of token signing keys, their ids, and the issuer setting: no database, no Temporal. */
import { compactVerify, importJWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { aad, unseal } from '../../src/auth/crypto';
import { createTokenKey, publicJwk, tokenKid, unwrapTokenKey } from '../../src/auth/tokenKeys';
import { ConfigError, loadConfig } from '../../src/config';
import { generateKeyring, parseKeyring } from '../../src/crypto/keyring';
import { LEAK_SCAN_PATTERNS, TOKEN_FORMAT_PATTERN } from '../../src/runbooks/leakPatterns';

const kek = parseKeyring(generateKeyring());
const wrapping = kek.keys.get(kek.activeKeyId)!;

describe('token signing key wrapping', () => {
  it('wraps the private JWK under the active key-encryption key, and the unwrapped key signs for the public one', async () => {
    const key = await createTokenKey(kek);
    expect(key.kekId).toBe(kek.activeKeyId);
    expect(Object.keys(key.publicJwk).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(key.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: key.kid });

    const { d } = JSON.parse(unseal(wrapping, key.wrappedPrivate, aad.tokenKey(key.kid)).toString('utf8')) as {
      d: string;
    };
    expect(d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(key.wrappedPrivate.includes(Buffer.from(d, 'utf8'))).toBe(false);
    expect(key.wrappedPrivate.includes(Buffer.from(d, 'base64url'))).toBe(false);

    const signing = await unwrapTokenKey(wrapping, key);
    const jws = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES256', kid: key.kid }).sign(signing);
    const verified = await compactVerify(jws, await importJWK(key.publicJwk, 'ES256'));
    expect(verified.protectedHeader.kid).toBe(key.kid);
  });

  it('refuses a wrapped key under another kid, another key-encryption key, or beside another public key', async () => {
    const a = await createTokenKey(kek);
    const b = await createTokenKey(kek);
    await expect(unwrapTokenKey(wrapping, { ...a, kid: b.kid })).rejects.toThrow(/does not authenticate/);
    const other = parseKeyring(generateKeyring());
    await expect(unwrapTokenKey(other.keys.get(other.activeKeyId)!, a)).rejects.toThrow(/does not authenticate/);
    await expect(unwrapTokenKey(wrapping, { ...a, publicJwk: b.publicJwk })).rejects.toThrow(/does not match/);
  });

  it('publishes only the public members of a key', () => {
    const jwk = { kty: 'EC', crv: 'P-256', x: 'xx', y: 'yy', d: 'secret', kid: 'tk-1', ext: true, key_ops: ['sign'] };
    expect(publicJwk(jwk)).toEqual({
      kty: 'EC',
      crv: 'P-256',
      x: 'xx',
      y: 'yy',
      kid: 'tk-1',
      alg: 'ES256',
      use: 'sig',
    });
    expect(() => publicJwk({ kty: 'RSA', n: 'n', e: 'AQAB', kid: 'tk-2' })).toThrow(/P-256/);
  });

  it('makes kids no leak scan reads as a code, a hex secret or a magic-link token', () => {
    const kids = new Set<string>();
    for (let i = 0; i < 2000; i += 1) {
      const kid = tokenKid(new Date(Date.UTC(2025, 0, 1, 0, 0, i)));
      expect(kid).toMatch(/^tk-[0-9]{8}T[0-9]{6}-k[0-9a-f]{16}$/);
      for (const pattern of [...LEAK_SCAN_PATTERNS, TOKEN_FORMAT_PATTERN]) expect(kid.match(pattern)).toBeNull();
      kids.add(kid);
    }
    expect(kids.size).toBe(2000);
  });
});

describe('WARDEN_ISSUER', () => {
  const base = { WARDEN_ADMIN_TOKEN: 'a-long-enough-admin-token' };

  it('defaults to the public base URL of the magic links', () => {
    expect(loadConfig(base).issuer).toBe('http://127.0.0.1:8080');
    expect(loadConfig({ ...base, WARDEN_PUBLIC_BASE_URL: 'https://id.example.com/' }).issuer).toBe(
      'https://id.example.com',
    );
  });

  it('takes an http(s) URL without its trailing slash, and refuses a query, a fragment or credentials', () => {
    expect(loadConfig({ ...base, WARDEN_ISSUER: 'https://auth.example.com/warden/' }).issuer).toBe(
      'https://auth.example.com/warden',
    );
    for (const bad of [
      'auth.example.com',
      'ftp://auth.example.com',
      'https://a.example?x=1',
      'https://a.example#f',
      'https://u:p@a.example',
    ]) {
      expect(() => loadConfig({ ...base, WARDEN_ISSUER: bad }), bad).toThrow(ConfigError);
    }
  });
});
