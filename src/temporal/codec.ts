import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { generateKeyring, loadKeyring, parseKeyring, type Keyring } from '../crypto/keyring';

const ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The payload keyring: the shared `{"active","keys"}` format (src/crypto/keyring.ts). */
export type PayloadKeyring = Keyring;

/**
 * Accepts a bare base64 key (id "k1") or `{"active":"k2","keys":{"k1":"...","k2":"..."}}`.
 * Rotation: add a key, make it active; old keys stay to decode old histories.
 */
export function parsePayloadKeyring(text: string): PayloadKeyring {
  return parseKeyring(text, 'payload keyring');
}

export function loadPayloadKeyring(source: { payloadKeys?: string; payloadKeysFile?: string }): PayloadKeyring {
  return loadKeyring(
    { inline: source.payloadKeys, file: source.payloadKeysFile },
    'payload keyring',
    'WARDEN_PAYLOAD_KEYS or WARDEN_PAYLOAD_KEYS_FILE is required: Temporal payloads carry PII',
  );
}

/** A fresh `{"active","keys"}` keyring with one random 256-bit key (dev stack and tests). */
export const generatePayloadKeyring = generateKeyring;

/** A payload as it sits in a decoded history (JSON or protobuf objects): data and metadata. */
export function isPayload(value: unknown): value is Payload {
  return (
    typeof value === 'object' &&
    value !== null &&
    'data' in value &&
    'metadata' in value &&
    (value as Payload).data instanceof Uint8Array
  );
}

/** A payload that did not come through Warden's codec, where only encrypted ones are taken. */
export class UnencryptedPayloadError extends Error {
  override name = 'UnencryptedPayloadError';
}

/**
 * Encrypts every payload with AES-256-GCM so phone numbers, emails and the like are not
 * readable in Temporal's database or UI without the key. The key id travels in metadata.
 * With `requireEncrypted` (production workers and clients), a plain payload is refused rather
 * than read: input that whoever reaches Temporal wrote without the key is never acted on.
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(
    private readonly keyring: PayloadKeyring,
    private readonly options: { requireEncrypted?: boolean } = {},
  ) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keyId = this.keyring.activeKeyId;
    const key = this.keyring.keys.get(keyId)!;
    return payloads.map((payload) => {
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(CIPHER, key, iv);
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          [METADATA_ENCODING_KEY]: Buffer.from(ENCODING),
          [KEY_ID]: Buffer.from(keyId),
        },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
      if (!encoding || Buffer.from(encoding).toString() !== ENCODING) {
        if (this.options.requireEncrypted)
          throw new UnencryptedPayloadError("a payload is not encrypted with Warden's payload keyring: refused");
        return payload;
      }
      const keyIdBytes = payload.metadata?.[KEY_ID];
      const keyId = keyIdBytes ? Buffer.from(keyIdBytes).toString() : '';
      const key = this.keyring.keys.get(keyId);
      if (!key) throw new Error(`no payload key with id ${keyId}`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      const iv = data.subarray(0, IV_BYTES);
      const tag = data.subarray(data.length - TAG_BYTES);
      const decipher = createDecipheriv(CIPHER, key, iv);
      decipher.setAuthTag(tag);
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}
