/**
 * Where the idempotency key travels when the provider has no field for it: a query parameter
 * on the delivery-status callback URL (Twilio StatusCallback, Plivo `url`). The provider
 * echoes the URL back on every status callback, so the key also correlates deliveries.
 */
import { createHash } from 'node:crypto';

export const CALLBACK_KEY_PARAM = 'idempotency_key';

export function withKeyParam(callbackUrl: string, key: string): string {
  const url = new URL(callbackUrl);
  url.searchParams.set(CALLBACK_KEY_PARAM, key);
  return url.toString();
}

/** SES message tags: names and values may only hold [A-Za-z0-9_\-.@], values at most 256 characters. */
export const SES_TAG_NAME = 'idempotency_key';
const TAG_SAFE = /[A-Za-z0-9\-.@]/;
const MAX_TAG_VALUE = 256;

/**
 * Encodes an idempotency key into a valid SES tag value, reversibly: every byte outside
 * [A-Za-z0-9-.@] (including `_`, the escape character) becomes `_` plus two hex digits.
 * A key whose encoding would not fit becomes `h.` plus its SHA-256, which stays unique but
 * can no longer be decoded.
 */
export function encodeTagValue(key: string): string {
  let out = '';
  // `h.` marks a hashed value, so a key that itself starts with it gets its `h` escaped
  const source = key.startsWith('h.') ? key.slice(1) : key;
  if (source !== key) out = '_68';
  for (const ch of source) {
    if (TAG_SAFE.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out.length <= MAX_TAG_VALUE ? out : `h.${createHash('sha256').update(key).digest('hex')}`;
}

export function decodeTagValue(value: string): string {
  if (value.startsWith('h.')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i += 1) {
    const hex = value[i] === '_' ? value.slice(i + 1, i + 3) : '';
    if (/^[0-9a-f]{2}$/i.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(value[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
