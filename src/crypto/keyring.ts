/**
 * A versioned set of 256-bit keys, one of them active: the format of both the Temporal payload
 * keyring (WARDEN_PAYLOAD_KEYS) and the key-encryption keyring (WARDEN_KEYRING). Rotation adds
 * a key and makes it active; older keys stay to decrypt what they encrypted.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface Keyring {
  activeKeyId: string;
  keys: Map<string, Buffer>;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

function decodeKey(label: string, id: string, base64: unknown): Buffer {
  if (!KEY_ID.test(id)) throw new Error(`${label} key id ${JSON.stringify(id)} must be 1-64 of [A-Za-z0-9._-]`);
  const key = typeof base64 === 'string' ? Buffer.from(base64, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) throw new Error(`${label} key ${id} must be 32 bytes of base64`);
  return key;
}

/**
 * Accepts a bare base64 key (id "k1") or `{"active":"k2","keys":{"k1":"...","k2":"..."}}`.
 * Error messages name key ids, never key material.
 */
export function parseKeyring(text: string, label = 'keyring'): Keyring {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return { activeKeyId: 'k1', keys: new Map([['k1', decodeKey(label, 'k1', trimmed)]]) };
  let parsed: { active?: unknown; keys?: unknown };
  try {
    parsed = JSON.parse(trimmed) as typeof parsed;
  } catch {
    throw new Error(`${label} is neither a base64 key nor valid JSON`);
  }
  const keys = parsed.keys;
  if (typeof parsed.active !== 'string' || typeof keys !== 'object' || keys === null || !(parsed.active in keys)) {
    throw new Error(`${label} needs "active" naming one of "keys"`);
  }
  return {
    activeKeyId: parsed.active,
    keys: new Map(Object.entries(keys as Record<string, unknown>).map(([id, b64]) => [id, decodeKey(label, id, b64)])),
  };
}

/** The inline value wins over the file, as with every `X` / `X_FILE` pair. */
export function loadKeyring(source: { inline?: string; file?: string }, label: string, required: string): Keyring {
  if (source.inline) return parseKeyring(source.inline, label);
  if (source.file) return parseKeyring(readFileSync(source.file, 'utf8'), label);
  throw new Error(required);
}

/** A fresh `{"active","keys"}` keyring with one random 256-bit key (dev stack and tests). */
export function generateKeyring(): string {
  return JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } });
}
