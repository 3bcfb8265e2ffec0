/**
 * Per-user payload keys (docs/privacy.md#temporal-payloads): one random 256-bit key per user, in
 * `user_data_keys` wrapped under the keyring's active key-encryption key. The subject codec
 * (src/temporal/subjectCodec.ts) encrypts a payload that carries a user's data with that user's
 * key; erasing the user destroys the key, and every such payload in every history becomes
 * unreadable, wherever Temporal keeps it.
 *
 * Keys exist only for users Warden has a row for: a sign-in for an unknown id (the decoy that
 * answers like a real one) is encrypted under the keyring alone, and strangers cannot fill the
 * table with ids. Unwrapped keys are cached for SUBJECT_KEY_CACHE_MS, so a destroyed key is
 * gone from every process that far after its row.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { aad, seal, unseal } from '../auth/crypto';
import type { Keyring } from '../crypto/keyring';
import type { Queryable } from '../db/database';
import { SUBJECT_KEY_CACHE_MS } from '../shared/privacy';

export interface SubjectKey {
  id: string;
  key: Buffer;
}

/** What the codec needs: a user's key to encrypt with, and any key by id to decrypt with. */
export interface SubjectKeySource {
  /** the user's key, made on first use; undefined when Warden has no such user */
  forSubject(subject: string): Promise<SubjectKey | undefined>;
  /** `erased`: the key was destroyed by an erasure; undefined: no key of that id here */
  byId(id: string): Promise<SubjectKey | 'erased' | undefined>;
}

interface KeyRow {
  id: string;
  subject: string | null;
  kek_id: string | null;
  wrapped_key: Buffer | null;
  erased_at: Date | null;
}

/** enough for every user signing in within the cache's lifetime on a busy process */
const MAX_CACHED = 20_000;

class TimedCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  constructor(private readonly ttlMs: number) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until > Date.now()) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: string, value: V): void {
    if (this.entries.size >= MAX_CACHED) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, until: Date.now() + this.ttlMs });
  }
}

export class SubjectKeyStore implements SubjectKeySource {
  /**
   * `none`: no key for that id (an unknown or erased user), remembered as long as a key is, so an
   * unknown user's sign-in costs the same queries as a known one's: a miss read again on every
   * request would make it measurably slower, and tell the two apart. A user created meanwhile
   * gets a key once the miss expires; until then (at most the cache's lifetime) the payloads of
   * that user's sign-ins are under the payload keyring only.
   */
  private readonly bySubject: TimedCache<SubjectKey | 'none'>;
  private readonly byKeyId: TimedCache<SubjectKey | 'erased'>;

  constructor(
    private readonly db: Queryable,
    private readonly kek: Keyring,
    cacheMs = SUBJECT_KEY_CACHE_MS,
  ) {
    this.bySubject = new TimedCache(cacheMs);
    this.byKeyId = new TimedCache(cacheMs);
  }

  async forSubject(subject: string): Promise<SubjectKey | undefined> {
    const cached = this.bySubject.get(subject);
    if (cached) return cached === 'none' ? undefined : cached;
    let row = await this.select('subject = $1', subject);
    if (!row) {
      const id = `uk-${randomUUID()}`;
      const kekId = this.kek.activeKeyId;
      const wrapped = seal(this.kek.keys.get(kekId)!, randomBytes(32), aad.subjectKey(id));
      // only for a user Warden knows; two processes racing: one insert wins, both read it
      await this.db.query(
        `INSERT INTO user_data_keys (id, subject, kek_id, wrapped_key)
         SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE sub = $2)
         ON CONFLICT (subject) WHERE subject IS NOT NULL DO NOTHING`,
        [id, subject, kekId, wrapped],
      );
      row = await this.select('subject = $1', subject);
      if (!row) {
        this.bySubject.set(subject, 'none');
        return undefined;
      }
    }
    const key = this.unwrap(row);
    if (key === 'erased') {
      this.bySubject.set(subject, 'none');
      return undefined;
    }
    this.bySubject.set(subject, key);
    this.byKeyId.set(key.id, key);
    return key;
  }

  async byId(id: string): Promise<SubjectKey | 'erased' | undefined> {
    const cached = this.byKeyId.get(id);
    if (cached) return cached;
    const row = await this.select('id = $1', id);
    if (!row) return undefined;
    const key = this.unwrap(row);
    this.byKeyId.set(id, key);
    // the worker that decodes a challenge's input encodes its verify answer next
    if (key !== 'erased' && row.subject) this.bySubject.set(row.subject, key);
    return key;
  }

  private async select(where: string, value: string): Promise<KeyRow | undefined> {
    const { rows } = await this.db.query<KeyRow>(
      `SELECT id, subject, kek_id, wrapped_key, erased_at FROM user_data_keys WHERE ${where}`,
      [value],
    );
    return rows[0];
  }

  private unwrap(row: KeyRow): SubjectKey | 'erased' {
    if (row.erased_at || !row.wrapped_key || !row.kek_id) return 'erased';
    const kek = this.kek.keys.get(row.kek_id);
    if (!kek)
      throw new Error(
        `user payload key ${row.id} is wrapped under key-encryption key ${row.kek_id}, not in the keyring`,
      );
    return { id: row.id, key: unseal(kek, row.wrapped_key, aad.subjectKey(row.id)) };
  }
}

/** A fixed set of keys (replaying recorded histories, tests): nothing is made or destroyed. */
export class StaticSubjectKeys implements SubjectKeySource {
  constructor(private readonly keys: ReadonlyMap<string, Buffer>) {}

  async forSubject(): Promise<undefined> {
    return undefined;
  }

  async byId(id: string): Promise<SubjectKey | undefined> {
    const key = this.keys.get(id);
    return key ? { id, key } : undefined;
  }
}
