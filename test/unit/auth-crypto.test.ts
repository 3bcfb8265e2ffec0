import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { maskIp, normalizeIp, parseCidr } from '../../src/auth/clientIp';
import {
  aad,
  compareSecret,
  generateSecret,
  hashSecret,
  MAGIC_TOKEN_PATTERN,
  OTP_PATTERN,
  seal,
  unseal,
  UnsealError,
} from '../../src/auth/crypto';
import { createDataKey } from '../../src/auth/keys';
import { escapeHtml, magicLinkUrl, renderMagicLinkEmail, renderOtpSms } from '../../src/auth/messages';
import { generateKeyring, parseKeyring } from '../../src/crypto/keyring';

describe('auth secrets', () => {
  it('generates 6-digit codes and 256-bit base64url tokens from the CSPRNG', () => {
    const codes = Array.from({ length: 500 }, () => generateSecret('sms_otp'));
    expect(codes.every((c) => OTP_PATTERN.test(c))).toBe(true);
    expect(new Set(codes).size).toBeGreaterThan(480);
    const token = generateSecret('magic_link');
    expect(token).toMatch(MAGIC_TOKEN_PATTERN);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
  });

  it('stores bcrypt($2b$, cost 10) of the peppered secret; the pepper matters', async () => {
    const pepper = randomBytes(32);
    const hash = await hashSecret(pepper, '123456');
    expect(hash).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(hash).not.toContain('123456');
    expect(await compareSecret(pepper, '123456', hash)).toBe(true);
    expect(await compareSecret(pepper, '123457', hash)).toBe(false);
    expect(await compareSecret(randomBytes(32), '123456', hash)).toBe(false);
  });

  it('seals with AES-256-GCM bound to purpose and challenge: another AAD or key cannot open it', () => {
    const key = randomBytes(32);
    const blob = seal(key, 'secret-value', aad.candidate('c1'));
    expect(blob.toString('latin1')).not.toContain('secret-value');
    expect(unseal(key, blob, aad.candidate('c1')).toString()).toBe('secret-value');
    expect(() => unseal(key, blob, aad.candidate('c2'))).toThrow(UnsealError);
    expect(() => unseal(key, blob, aad.storedSecret('c1'))).toThrow(UnsealError);
    expect(() => unseal(randomBytes(32), blob, aad.candidate('c1'))).toThrow(UnsealError);
    expect(() => unseal(key, blob.subarray(0, 10), aad.candidate('c1'))).toThrow(UnsealError);
  });

  it('wraps data keys under the active key-encryption key', () => {
    const kek = parseKeyring(generateKeyring());
    const key = createDataKey(kek);
    expect(key.id).toMatch(/^dk-\d{8}T\d{6}-k[0-9a-f]{6}$/);
    // never shaped like a code or token for the leak-scan patterns, whatever the random part
    // (about 6% of random 6-hex suffixes are all decimal: 300 ids would find one)
    const ids = Array.from({ length: 300 }, () => createDataKey(kek).id);
    expect(ids.filter((id) => /\b[0-9]{6}\b/.test(id) || /\b[a-f0-9]{32,}\b/.test(id))).toEqual([]);
    expect(key.kekId).toBe('k1');
    expect(unseal(kek.keys.get('k1')!, key.wrappedPepper, aad.dataKey(key.id, 'pepper'))).toEqual(key.pepper);
    expect(() => unseal(kek.keys.get('k1')!, key.wrappedPepper, aad.dataKey(key.id, 'seal'))).toThrow(UnsealError);
  });
});

describe('keyring parser (shared by the payload codec and the KEK keyring)', () => {
  it('reads a bare key or a versioned ring and names ids, never key material, in errors', () => {
    const k = randomBytes(32).toString('base64');
    expect(parseKeyring(k).activeKeyId).toBe('k1');
    const ring = parseKeyring(JSON.stringify({ active: 'k2', keys: { k1: k, k2: k } }), 'keyring');
    expect([...ring.keys.keys()]).toEqual(['k1', 'k2']);
    expect(() => parseKeyring('{"active":"k9","keys":{}}', 'keyring')).toThrow(/active/);
    expect(() => parseKeyring('{not json', 'keyring')).toThrow(/neither/);
    expect(() => parseKeyring(JSON.stringify({ active: 'k1', keys: { k1: 'c2hvcnQ=' } }), 'keyring')).toThrow(
      /32 bytes/,
    );
    try {
      parseKeyring(JSON.stringify({ active: 'k1', keys: { k1: k, 'bad id': k } }), 'keyring');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain(k);
    }
  });
});

describe('client addresses', () => {
  it('masks IPv4 to /24 and IPv6 to /64, unmapping IPv4-mapped addresses', () => {
    expect(maskIp('203.0.113.77')).toBe('203.0.113.0/24');
    expect(maskIp('::ffff:203.0.113.77')).toBe('203.0.113.0/24');
    expect(maskIp('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(maskIp('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(maskIp('::1')).toBe('0:0:0:0::/64');
    expect(maskIp('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(maskIp('garbage')).toBe('unknown');
    expect(normalizeIp('::FFFF:10.1.2.3')).toBe('10.1.2.3');
  });

  it('parses addresses and CIDR blocks as responders type them, refusing anything else', () => {
    expect(parseCidr('192.168.1.100')).toEqual({ text: '192.168.1.100/32', version: 4, prefix: 32 });
    expect(parseCidr('198.51.100.7/24')).toEqual({ text: '198.51.100.7/24', version: 4, prefix: 24 });
    expect(parseCidr('2001:db8::/32')).toEqual({ text: '2001:db8::/32', version: 6, prefix: 32 });
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4/33',
      '1.2.3.4/',
      '1.2.3.4/2/3',
      '::/129',
      'example.com',
      '1.2.3.4/-1',
      'fe80::1%eth0',
      '10.0.0.0/8; DROP',
    ]) {
      expect(parseCidr(bad), bad).toBeNull();
    }
  });
});

describe('messages', () => {
  it('puts the code in the SMS and the exact link in the email, HTML-escaped', () => {
    const expires = new Date(Date.now() + 300_000);
    expect(renderOtpSms('012345', expires)).toMatch(/code is 012345\. It expires in 5 minutes/);
    const link = magicLinkUrl('https://login.example', '0b4c8e4e-1f6a-4d7a-9a0e-1c2d3e4f5a6b', 'tok_en-123');
    expect(link).toBe(
      'https://login.example/browser/api/v1/identity/auth/magic-link/verify?challenge=0b4c8e4e-1f6a-4d7a-9a0e-1c2d3e4f5a6b&token=tok_en-123',
    );
    const email = renderMagicLinkEmail(link, expires);
    expect(email.text).toContain(link);
    expect(email.html).toContain('href="https:&#47;&#47;login.example&#47;browser');
    expect(email.html).toContain('&#38;token&#61;tok_en-123');
    expect(escapeHtml(`<script>"x"&'y'</script>`)).toBe(
      '&#60;script&#62;&#34;x&#34;&#38;&#39;y&#39;&#60;&#47;script&#62;',
    );
  });
});
