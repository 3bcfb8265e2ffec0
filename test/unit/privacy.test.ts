/**
 * The pure parts of docs/privacy.md: the subject codec's layer (which payloads it takes, what an
 * erased key decodes to, what a keyring-only codec sees), the log pseudonyms, logged URLs.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { METADATA_ENCODING_KEY, type Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/api/redact';
import { parseKeyring } from '../../src/crypto/keyring';
import { logPseudonym, logPseudonymKey, pseudonymizingLogger, subjectDigests } from '../../src/privacy/pseudonyms';
import type { SubjectKey, SubjectKeySource } from '../../src/privacy/subjectKeys';
import { createLogger } from '../../src/telemetry/logger';
import { EncryptionCodec, generatePayloadKeyring, parsePayloadKeyring } from '../../src/temporal/codec';
import { isErasedPayload, SubjectCodec, subjectOf, SUBJECT_ENCODING } from '../../src/temporal/subjectCodec';

const json = (value: unknown): Payload => ({
  metadata: { [METADATA_ENCODING_KEY]: Buffer.from('json/plain') },
  data: Buffer.from(JSON.stringify(value)),
});
const text = (p: Payload) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8');
const encodingOf = (p: Payload) => Buffer.from(p.metadata![METADATA_ENCODING_KEY]!).toString();

/** One user's key, held in memory, destroyable: what user_data_keys does for the codec. */
class Keys implements SubjectKeySource {
  readonly keys = new Map<string, SubjectKey | 'erased'>();
  constructor(private readonly users: Set<string>) {}
  async forSubject(subject: string) {
    if (!this.users.has(subject)) return undefined;
    const id = `uk-${subject}`;
    if (!this.keys.has(id)) this.keys.set(id, { id, key: randomBytes(32) });
    return this.keys.get(id) as SubjectKey;
  }
  async byId(id: string) {
    return this.keys.get(id);
  }
}

describe('the subject codec', () => {
  it('takes only JSON objects with a top-level string userId', () => {
    expect(subjectOf(json({ userId: 'alice', method: 'sms_otp' }))).toBe('alice');
    expect(subjectOf(json({ challengeId: 'x', nested: { userId: 'alice' } }))).toBeUndefined();
    expect(subjectOf(json([{ userId: 'alice' }]))).toBeUndefined();
    expect(subjectOf(json({ userIds: ['alice'] }))).toBeUndefined();
    expect(subjectOf(json({ userId: '' }))).toBeUndefined();
    expect(subjectOf({ metadata: { [METADATA_ENCODING_KEY]: Buffer.from('binary/null') } })).toBeUndefined();
  });

  it("encrypts a known user's payload under their key, leaves the rest, and reads erased payloads as erased", async () => {
    const keys = new Keys(new Set(['alice']));
    const codec = new SubjectCodec(keys);
    const [alice, stranger, plain] = await codec.encode([
      json({ userId: 'alice' }),
      json({ userId: 'nobody' }),
      json({ ok: true }),
    ]);
    expect(encodingOf(alice!)).toBe(SUBJECT_ENCODING);
    expect(text(alice!)).not.toContain('alice');
    expect(text(stranger!)).toContain('nobody');
    expect(text(plain!)).toBe('{"ok":true}');
    expect((await codec.decode([alice!])).map(text)).toEqual(['{"userId":"alice"}']);

    // inside the keyring's layer, as every Warden process stacks them; a keyring-only codec sees opaque bytes
    const keyring = new EncryptionCodec(parsePayloadKeyring(generatePayloadKeyring()));
    const stored = await keyring.encode([alice!]);
    const outerOnly = await keyring.decode(stored);
    expect(encodingOf(outerOnly[0]!)).toBe(SUBJECT_ENCODING);
    expect(text(outerOnly[0]!)).not.toContain('alice');

    keys.keys.set('uk-alice', 'erased');
    const [erased] = await codec.decode(outerOnly);
    expect(isErasedPayload(erased!)).toBe(true);
    expect(JSON.parse(text(erased!))).toMatchObject({ erased: true, key_id: 'uk-alice' });
    await expect(
      codec.decode([{ ...alice!, metadata: { ...alice!.metadata, 'warden-subject-key-id': Buffer.from('uk-x') } }]),
    ).rejects.toThrow(/no user payload key/);
  });
});

describe('pseudonyms', () => {
  const kek = parseKeyring(generatePayloadKeyring());

  it('log lines carry a keyed pseudonym in every user field, never the id', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pseudonymizingLogger(createLogger({ destination: sink }), kek).child({ component: 'audit' });
    logger.info({ user_id: 'alice', userIds: ['alice', 'bob'], challenge_id: 'c1' }, 'identity.auth.token_generated');
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    const alice = logPseudonym(logPseudonymKey(kek), 'alice');
    expect(alice).toMatch(/^~[0-9a-f]{16}$/);
    expect(line).toMatchObject({
      user_id: alice,
      userIds: [alice, logPseudonym(logPseudonymKey(kek), 'bob')],
      challenge_id: 'c1',
    });
    expect(lines[0]).not.toMatch(/alice|bob/);
  });

  it('finds an erasure digest under any key of the ring, so a rotation does not lose it', () => {
    const rotated = parseKeyring(
      JSON.stringify({
        active: 'k2',
        keys: { k1: randomBytes(32).toString('base64'), k2: randomBytes(32).toString('base64') },
      }),
    );
    const old = { activeKeyId: 'k1', keys: new Map([['k1', rotated.keys.get('k1')!]]) };
    const [before] = subjectDigests(old, 'alice');
    expect(subjectDigests(rotated, 'alice').some((d) => d.equals(before!))).toBe(true);
    expect(subjectDigests(rotated, 'bob').some((d) => d.equals(before!))).toBe(false);
  });

  it("logged URLs keep users' ids and contacts out, and the users API's own words in", () => {
    expect(redactUrl('/admin/api/v1/users/alice%40x/erasure')).toBe('/admin/api/v1/users/[REDACTED]/erasure');
    expect(redactUrl('/admin/api/v1/users/alice/exports/1f0e')).toBe('/admin/api/v1/users/[REDACTED]/exports/1f0e');
    expect(redactUrl('/admin/api/v1/users?phone=%2B1555&email=a%40b.c&limit=5')).toBe(
      '/admin/api/v1/users?phone=[REDACTED]&email=[REDACTED]&limit=5',
    );
    expect(redactUrl('/admin/api/v1/users/import')).toBe('/admin/api/v1/users/import');
    expect(redactUrl('/admin/api/v1/users/revoke-challenges')).toBe('/admin/api/v1/users/revoke-challenges');
  });
});
