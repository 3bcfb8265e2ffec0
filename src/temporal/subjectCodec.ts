/**
 * The inner layer of Warden's payload encryption (docs/privacy.md#temporal-payloads): a payload
 * that carries one user's data (a JSON object with a top-level `userId`, SUBJECT_FIELD) is
 * encrypted with that user's own key (src/privacy/subjectKeys.ts) before the keyring codec
 * (src/temporal/codec.ts) encrypts everything again. Erasing the user destroys the key: their
 * payloads in every history then decode to an `erased` placeholder instead of failing, in the
 * worker, the clients and the codec server the Temporal UI calls.
 *
 * Inside the keyring's encryption the subject layer is invisible: Temporal's database shows one
 * kind of payload, and a codec holding only the keyring sees this layer as opaque bytes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { SubjectKeySource } from '../privacy/subjectKeys';
import { SUBJECT_FIELD } from '../shared/privacy';

export const SUBJECT_ENCODING = 'binary/encrypted-subject';
export const SUBJECT_KEY_ID = 'warden-subject-key-id';
/** set on the placeholder that stands in for an erased user's payload */
export const ERASED_METADATA = 'warden-erased';

const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const JSON_ENCODING = 'json/plain';
const MARKER = Buffer.from(`"${SUBJECT_FIELD}"`);

/** The user a payload belongs to, or undefined (not JSON, not an object, no such field). */
export function subjectOf(payload: Payload): string | undefined {
  const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
  if (!encoding || Buffer.from(encoding).toString() !== JSON_ENCODING || !payload.data) return undefined;
  const data = Buffer.from(payload.data);
  // most payloads never name a user: skip the parse
  if (!data.includes(MARKER)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const subject = (value as Record<string, unknown>)[SUBJECT_FIELD];
  return typeof subject === 'string' && subject !== '' ? subject : undefined;
}

/** What an erased user's payload decodes to: JSON that says so, and a metadata flag. */
export function erasedPayload(keyId: string): Payload {
  return {
    metadata: { [METADATA_ENCODING_KEY]: Buffer.from(JSON_ENCODING), [ERASED_METADATA]: Buffer.from('true') },
    data: Buffer.from(
      JSON.stringify({ erased: true, key_id: keyId, note: "this payload held a user's data; the user was erased" }),
    ),
  };
}

export function isErasedPayload(payload: Payload): boolean {
  return payload.metadata?.[ERASED_METADATA] !== undefined;
}

/** A payload's subject key id, when the subject layer encrypted it. */
export function subjectKeyIdOf(payload: Payload): string | undefined {
  const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
  if (!encoding || Buffer.from(encoding).toString() !== SUBJECT_ENCODING) return undefined;
  const id = payload.metadata?.[SUBJECT_KEY_ID];
  return id ? Buffer.from(id).toString() : '';
}

export class SubjectCodec implements PayloadCodec {
  constructor(private readonly keys: SubjectKeySource) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.all(
      payloads.map(async (payload) => {
        const subject = subjectOf(payload);
        if (subject === undefined) return payload;
        const found = await this.keys.forSubject(subject);
        if (!found) return payload;
        const plain = temporal.api.common.v1.Payload.encode(payload).finish();
        const iv = randomBytes(IV_BYTES);
        const cipher = createCipheriv(CIPHER, found.key, iv);
        cipher.setAAD(Buffer.from(found.id));
        const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        return {
          metadata: { [METADATA_ENCODING_KEY]: Buffer.from(SUBJECT_ENCODING), [SUBJECT_KEY_ID]: Buffer.from(found.id) },
          data,
        };
      }),
    );
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.all(
      payloads.map(async (payload) => {
        const keyId = subjectKeyIdOf(payload);
        if (keyId === undefined) return payload;
        const found = await this.keys.byId(keyId);
        if (found === 'erased') return erasedPayload(keyId);
        if (!found) throw new Error(`no user payload key with id ${keyId}`);
        const data = Buffer.from(payload.data ?? new Uint8Array());
        const decipher = createDecipheriv(CIPHER, found.key, data.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(found.id));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        const plain = Buffer.concat([
          decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
          decipher.final(),
        ]);
        return temporal.api.common.v1.Payload.decode(plain);
      }),
    );
  }
}
