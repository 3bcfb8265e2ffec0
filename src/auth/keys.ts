/**
 * Data keys: the HMAC pepper and the seal key of a challenge secret, one pair per key id.
 * They are generated once and stored in `signing_keys` wrapped (AES-256-GCM) under a
 * key-encryption key from the keyring file, so a rotation made by one process reaches every
 * process through Postgres, and a database dump without the keyring reveals nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Keyring } from '../crypto/keyring';
import type { Queryable } from '../db/database';
import { ChallengeErrorType } from '../shared/auth';
import { aad, seal, unseal } from './crypto';

export type DataKeyStatus = 'active' | 'retired' | 'revoked';

export interface DataKey {
  id: string;
  status: DataKeyStatus;
  pepper: Buffer;
  seal: Buffer;
}

export interface NewDataKey extends DataKey {
  kekId: string;
  wrappedPepper: Buffer;
  wrappedSeal: Buffer;
}

export class DataKeyUnavailableError extends Error {
  override name = ChallengeErrorType.dataKeyUnavailable;
}

/** A fresh pair, wrapped under the keyring's active key-encryption key. */
export function createDataKey(kek: Keyring, now = new Date()): NewDataKey {
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  // the suffix starts with a letter: six hex digits that happen to be all decimal would read
  // as a 6-digit code to every leak scan (\b[0-9]{6}\b) in audit rows that name the key
  const id = `dk-${stamp}-k${randomBytes(3).toString('hex')}`;
  const wrapping = kek.keys.get(kek.activeKeyId)!;
  const pepper = randomBytes(32);
  const sealKey = randomBytes(32);
  return {
    id,
    status: 'active',
    pepper,
    seal: sealKey,
    kekId: kek.activeKeyId,
    wrappedPepper: seal(wrapping, pepper, aad.dataKey(id, 'pepper')),
    wrappedSeal: seal(wrapping, sealKey, aad.dataKey(id, 'seal')),
  };
}

export interface KeyStoreLog {
  warn(message: string, fields: Record<string, unknown>): void;
  info(message: string, fields: Record<string, unknown>): void;
}

interface KeyRow {
  id: string;
  kek_id: string;
  wrapped_pepper: Buffer;
  wrapped_seal: Buffer;
  status: DataKeyStatus;
}

/**
 * Every process's cache of unwrapped data keys. It re-reads `signing_keys` when its copy is
 * older than `maxStalenessMs` or when asked for a key id it does not know, so a rotation is
 * seen everywhere within that bound. The first process to find no active key creates one.
 */
export class DataKeyStore {
  private keys = new Map<string, DataKey>();
  private activeId: string | undefined;
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly kek: Keyring,
    private readonly maxStalenessMs = 5000,
    private readonly log: KeyStoreLog = { warn: () => {}, info: () => {} },
  ) {}

  get keyring(): Keyring {
    return this.kek;
  }

  /** The key new secrets are hashed and sealed with. */
  async active(): Promise<DataKey> {
    await this.fresh();
    if (!this.activeId) {
      await this.createFirstKey();
      await this.reload();
    }
    const key = this.activeId ? this.keys.get(this.activeId) : undefined;
    if (!key) throw new DataKeyUnavailableError('no usable active data key: is its key-encryption key in the keyring?');
    return key;
  }

  /** Any known key by id (retired keys still verify the challenges issued under them). */
  async get(id: string): Promise<DataKey> {
    await this.fresh();
    if (!this.keys.has(id)) await this.reload();
    const key = this.keys.get(id);
    if (!key) throw new DataKeyUnavailableError(`data key ${id} is unknown or cannot be unwrapped`);
    return key;
  }

  /** Forget the cached copy: the next call reads `signing_keys` again. */
  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  private async fresh(): Promise<void> {
    if (performance.now() - this.loadedAt > this.maxStalenessMs) await this.reload();
  }

  /** One query at a time per process; concurrent callers share it. */
  reload(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    const { rows } = await this.db.query<KeyRow>(
      'SELECT id, kek_id, wrapped_pepper, wrapped_seal, status FROM signing_keys',
    );
    let activeId: string | undefined;
    const unsealed: string[] = [];
    for (const row of rows) {
      const cached = this.keys.get(row.id);
      if (cached) {
        cached.status = row.status;
      } else {
        const wrapping = this.kek.keys.get(row.kek_id);
        if (!wrapping) {
          this.log.warn('data key wrapped under a key-encryption key missing from the keyring', {
            keyId: row.id,
            kekId: row.kek_id,
          });
          continue;
        }
        try {
          this.keys.set(row.id, {
            id: row.id,
            status: row.status,
            pepper: unseal(wrapping, row.wrapped_pepper, aad.dataKey(row.id, 'pepper')),
            seal: unseal(wrapping, row.wrapped_seal, aad.dataKey(row.id, 'seal')),
          });
          unsealed.push(row.id);
        } catch {
          this.log.warn('data key does not unwrap under its key-encryption key', { keyId: row.id, kekId: row.kek_id });
          continue;
        }
      }
      if (row.status === 'active') activeId = row.id;
    }
    // responders check `grep -i "unseal.*success"` after a rotation: one line per newly loaded key set
    if (unsealed.length > 0)
      this.log.info('data key unseal success', { keyIds: unsealed, activeKeyId: activeId ?? null });
    this.activeId = activeId;
    this.loadedAt = performance.now();
  }

  private async createFirstKey(): Promise<void> {
    const key = createDataKey(this.kek);
    // the partial unique index on status = 'active' makes concurrent first starts create one key
    await this.db.query(
      `INSERT INTO signing_keys (id, kek_id, wrapped_pepper, wrapped_seal, status)
       SELECT $1, $2, $3, $4, 'active'
       WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE status = 'active')
       ON CONFLICT DO NOTHING`,
      [key.id, key.kekId, key.wrappedPepper, key.wrappedSeal],
    );
  }
}
