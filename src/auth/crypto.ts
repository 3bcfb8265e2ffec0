/**
 * The secret-handling primitives of a challenge. A secret is stored only as
 * bcrypt(HMAC-SHA256(pepper, secret)): the pepper lives wrapped in Postgres and unwrapped only
 * in memory, so a database dump alone cannot brute-force a 6-digit code. A sealed AES-256-GCM
 * copy exists for delivery retries and is wiped when the challenge ends.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomInt } from 'node:crypto';
import bcrypt from 'bcrypt';

export const BCRYPT_COST = 10;
export const OTP_DIGITS = 6;
/** 32 bytes: 256 bits, 43 base64url characters */
export const MAGIC_TOKEN_BYTES = 32;

export const OTP_PATTERN = /^[0-9]{6}$/;
export const MAGIC_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export type SecretKind = 'sms_otp' | 'magic_link';

/** A fresh secret from the CSPRNG: a zero-padded 6-digit code, or a 256-bit base64url token. */
export function generateSecret(kind: SecretKind): string {
  if (kind === 'sms_otp') return String(randomInt(0, 10 ** OTP_DIGITS)).padStart(OTP_DIGITS, '0');
  return randomBytes(MAGIC_TOKEN_BYTES).toString('base64url');
}

/** HMAC-SHA256 as hex: 64 ASCII characters, inside bcrypt's 72-byte input limit. */
function peppered(pepper: Buffer, secret: string): string {
  return createHmac('sha256', pepper).update(secret, 'utf8').digest('hex');
}

export function hashSecret(pepper: Buffer, secret: string): Promise<string> {
  return bcrypt.hash(peppered(pepper, secret), BCRYPT_COST);
}

export function compareSecret(pepper: Buffer, candidate: string, hash: string): Promise<boolean> {
  return bcrypt.compare(peppered(pepper, candidate), hash);
}

/** AES-256-GCM: iv || ciphertext || tag. The AAD binds the blob to its purpose and challenge. */
export function seal(key: Buffer, plaintext: string | Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  return Buffer.concat([iv, cipher.update(data), cipher.final(), cipher.getAuthTag()]);
}

export class UnsealError extends Error {
  override name = 'UnsealError';
}

export function unseal(key: Buffer, blob: Buffer, aad: string): Buffer {
  if (blob.length < IV_BYTES + TAG_BYTES) throw new UnsealError('sealed value is too short');
  try {
    const decipher = createDecipheriv(CIPHER, key, blob.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    return Buffer.concat([decipher.update(blob.subarray(IV_BYTES, blob.length - TAG_BYTES)), decipher.final()]);
  } catch {
    // never the cause: it could hint at the plaintext
    throw new UnsealError('sealed value does not authenticate');
  }
}

/** AADs: one per purpose, so a blob sealed for one use is refused for another. */
export const aad = {
  storedSecret: (challengeId: string) => `warden:secret:${challengeId}`,
  candidate: (challengeId: string) => `warden:candidate:${challengeId}`,
  dataKey: (keyId: string, part: 'pepper' | 'seal') => `warden:data-key:${keyId}:${part}`,
  /** the private JWK of a token signing key (src/auth/tokenKeys.ts) */
  tokenKey: (kid: string) => `warden:token-key:${kid}:private`,
  /** a user's payload key (src/privacy/subjectKeys.ts) */
  subjectKey: (keyId: string) => `warden:subject-key:${keyId}`,
};
