import { defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { EncryptionCodec, generatePayloadKeyring, parsePayloadKeyring } from '../../src/temporal/codec';

const secretish = { phone: '+15555550100', email: 'test-user@example.com' };

describe('payload encryption codec', () => {
  it('round-trips a payload and hides its contents', async () => {
    const codec = new EncryptionCodec(parsePayloadKeyring(generatePayloadKeyring()));
    const payload = defaultPayloadConverter.toPayload(secretish);
    const [encoded] = await codec.encode([payload]);
    expect(Buffer.from(encoded!.data!).toString('latin1')).not.toContain('+15555550100');
    expect(Buffer.from(encoded!.metadata!.encoding!).toString()).toBe('binary/encrypted');
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(secretish);
  });

  it('decodes payloads written under an older key after rotation', async () => {
    const k1 = Buffer.alloc(32, 1).toString('base64');
    const k2 = Buffer.alloc(32, 2).toString('base64');
    const before = new EncryptionCodec(parsePayloadKeyring(JSON.stringify({ active: 'k1', keys: { k1 } })));
    const after = new EncryptionCodec(parsePayloadKeyring(JSON.stringify({ active: 'k2', keys: { k1, k2 } })));
    const [old] = await before.encode([defaultPayloadConverter.toPayload('hello')]);
    const [fresh] = await after.encode([defaultPayloadConverter.toPayload('hello')]);
    expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe('k2');
    const decoded = await after.decode([old!, fresh!]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(['hello', 'hello']);
  });

  it('refuses a tampered payload', async () => {
    const codec = new EncryptionCodec(parsePayloadKeyring(generatePayloadKeyring()));
    const [encoded] = await codec.encode([defaultPayloadConverter.toPayload('x')]);
    const data = Buffer.from(encoded!.data!);
    data[data.length - 1]! ^= 0xff;
    await expect(codec.decode([{ ...encoded!, data }])).rejects.toThrow();
  });

  it('rejects a keyring whose active key is missing', () => {
    expect(() => parsePayloadKeyring('{"active":"k9","keys":{}}')).toThrow(/active/);
    expect(() => parsePayloadKeyring('c2hvcnQ=')).toThrow(/32 bytes/);
  });
});
