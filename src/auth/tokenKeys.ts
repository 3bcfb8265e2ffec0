/**
 * The keys that sign the tokens Warden issues to apps (docs/tokens.md): ES256 (ECDSA on P-256)
 * key pairs, one active at a time. A key's public JWK is stored in clear in
 * `token_signing_keys` and published at /.well-known/jwks.json; its private JWK is stored only
 * wrapped (AES-256-GCM) under a key-encryption key of the keyring, like the data keys
 * (src/auth/keys.ts), and unwrapped only in memory, into a non-extractable key. A rotation
 * retires the active key: it signs nothing more, and stays published until every token it can
 * have signed has expired.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import type { Keyring } from '../crypto/keyring';
import { DatabaseReadOnlyError, type Database, type Queryable } from '../db/database';
import { aad, seal, unseal } from './crypto';
import type { KeyStoreLog } from './keys';

export const TOKEN_ALG = 'ES256';

/** The longest lifetime of any token Warden issues: `sign` refuses a longer one. */
export const maxTokenTtlSeconds = 86_400;

/**
 * Added to how long a retired key stays published: verifiers' clocks that run behind, and a
 * process whose cache still held the key as active for up to its staleness bound (5 s) after
 * the rotation committed.
 */
export const TOKEN_CLOCK_SKEW_SECONDS = 300;

/** How long a retired key stays in the JWKS after its rotation. */
export const RETIRED_KEY_PUBLISHED_SECONDS = maxTokenTtlSeconds + TOKEN_CLOCK_SKEW_SECONDS;

/** Claims a caller may not set through `extra`: `sign` sets them. */
const REGISTERED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'auth_time', 'amr', 'nonce']);

/** an unwrapped private key, as jose imports it (non-extractable) */
type SigningKey = Exclude<Awaited<ReturnType<typeof importJWK>>, Uint8Array>;

/** serialises rotations and first-key creation across processes (transaction-scoped) */
const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('warden:token_signing_keys'))`;

/** A public key as published: only these members, never a private one. */
export interface PublicJwk extends JWK {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: typeof TOKEN_ALG;
  use: 'sig';
}

/** A fresh key pair, its private half wrapped: what goes into `token_signing_keys`. */
export interface NewTokenKey {
  kid: string;
  kekId: string;
  publicJwk: PublicJwk;
  wrappedPrivate: Buffer;
}

export interface TokenClaims {
  /** the user's id */
  sub: string;
  /** the app's client id */
  aud: string;
  /** how the user authenticated, e.g. ['otp'] or ['email'] */
  amr: string[];
  /** when the user authenticated */
  authTime: Date;
  /** the app's nonce from its authorization request, echoed back */
  nonce?: string;
  /** seconds until `exp`: 1 to maxTokenTtlSeconds */
  ttlSeconds: number;
  /** further claims; the registered ones above (and iss, iat, exp, nbf, jti) cannot be overridden */
  extra?: Record<string, unknown>;
}

export interface SignedToken {
  token: string;
  jti: string;
  expiresAt: Date;
  kid: string;
}

export interface TokenKeyRotation {
  activeKid: string;
  /** the key that was active before, now retired (absent when there was none) */
  retiredKid?: string;
  /** retired keys past their publication, deleted by this rotation */
  deletedKids: string[];
}

export class TokenKeyUnavailableError extends Error {
  override name = 'TokenKeyUnavailableError';
}

/**
 * A key id that is public (it is in every token's header and in the JWKS) and random. It
 * starts with a letter and every `-`-separated part does too or is longer than six
 * characters, so no leak scan (\b[0-9]{6}\b, \b[a-f0-9]{32,}\b) can read it as a 6-digit code
 * or a hex secret in the audit rows and logs that name it.
 */
export function tokenKid(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `tk-${stamp}-k${randomBytes(8).toString('hex')}`;
}

/** A fresh ES256 key pair, the private JWK sealed under the keyring's active key-encryption key. */
export async function createTokenKey(kek: Keyring, now = new Date()): Promise<NewTokenKey> {
  const kid = tokenKid(now);
  const { publicKey, privateKey } = await generateKeyPair(TOKEN_ALG, { extractable: true });
  const pub = await exportJWK(publicKey);
  const plain = Buffer.from(JSON.stringify(await exportJWK(privateKey)), 'utf8');
  try {
    return {
      kid,
      kekId: kek.activeKeyId,
      publicJwk: publicJwk({ ...pub, kid }),
      wrappedPrivate: seal(kek.keys.get(kek.activeKeyId)!, plain, aad.tokenKey(kid)),
    };
  } finally {
    plain.fill(0);
  }
}

/** Only the public members of an EC JWK, with the kid, alg and use Warden publishes. */
export function publicJwk(jwk: JWK & { kid: string }): PublicJwk {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new TypeError(`token key ${jwk.kid} is not a P-256 key`);
  }
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid: jwk.kid, alg: TOKEN_ALG, use: 'sig' };
}

/**
 * The signing key of a stored row: the private JWK unsealed, checked against the published
 * public key, and imported as a non-extractable key. The plaintext is wiped once imported.
 */
export async function unwrapTokenKey(
  wrapping: Buffer,
  row: { kid: string; wrappedPrivate: Buffer; publicJwk: PublicJwk },
): Promise<SigningKey> {
  const plain = unseal(wrapping, row.wrappedPrivate, aad.tokenKey(row.kid));
  try {
    const jwk = JSON.parse(plain.toString('utf8')) as JWK;
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || jwk.x !== row.publicJwk.x || jwk.y !== row.publicJwk.y) {
      throw new TokenKeyUnavailableError(`token key ${row.kid} does not match its published public key`);
    }
    const key = await importJWK(jwk, TOKEN_ALG, { extractable: false });
    if (key instanceof Uint8Array) throw new TokenKeyUnavailableError(`token key ${row.kid} is not an EC key`);
    return key;
  } finally {
    plain.fill(0);
  }
}

interface KeyRow {
  kid: string;
  public_jwk: PublicJwk;
  kek_id: string;
  status: 'active' | 'retired';
  published_until: Date | null;
  /** selected for the active key only */
  wrapped_private: Buffer | null;
}

interface CachedKey {
  kid: string;
  status: 'active' | 'retired';
  publicJwk: PublicJwk;
  publishedUntil: Date | null;
}

export interface TokenKeyStoreOptions {
  /** the `iss` of every token (WARDEN_ISSUER) */
  issuer: string;
  /** how old this process's copy of the keys may get before it reads them again */
  maxStalenessMs?: number;
  log?: KeyStoreLog;
}

/**
 * Every process's cache of the token signing keys. It re-reads `token_signing_keys` when its
 * copy is older than `maxStalenessMs`, so a rotation made by one process reaches every process
 * within that bound. The first process to find no active key creates one; concurrent first
 * starts create exactly one.
 */
export class TokenKeyStore {
  private keys: CachedKey[] = [];
  private activeKid: string | undefined;
  /** the unwrapped private key of the active kid only: a retired key never signs again */
  private signing: { kid: string; key: SigningKey } | undefined;
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;
  private readonly maxStalenessMs: number;
  private readonly log: KeyStoreLog;

  constructor(
    private readonly db: Pick<Database, 'query' | 'transaction'>,
    private readonly kek: Keyring,
    private readonly options: TokenKeyStoreOptions,
  ) {
    this.maxStalenessMs = options.maxStalenessMs ?? 5000;
    this.log = options.log ?? { warn: () => {}, info: () => {} };
  }

  get keyring(): Keyring {
    return this.kek;
  }

  get issuer(): string {
    return this.options.issuer;
  }

  /** Signs a JWT with the active key: header {alg, kid, typ}, the claims of docs/tokens.md. */
  async sign(claims: TokenClaims): Promise<SignedToken> {
    checkClaims(claims);
    const { kid, key } = await this.signingKey();
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + claims.ttlSeconds;
    const jti = randomUUID();
    const token = await new SignJWT({
      ...claims.extra,
      iss: this.options.issuer,
      sub: claims.sub,
      aud: claims.aud,
      amr: [...claims.amr],
      auth_time: Math.floor(claims.authTime.getTime() / 1000),
      iat,
      exp,
      jti,
      ...(claims.nonce === undefined ? {} : { nonce: claims.nonce }),
    })
      .setProtectedHeader({ alg: TOKEN_ALG, kid, typ: 'JWT' })
      .sign(key);
    return { token, jti, expiresAt: new Date(exp * 1000), kid };
  }

  /**
   * The public keys that verify tokens: the active key, and retired keys still published. A
   * read: while the database refuses writes, a deployment that has no key yet answers none
   * rather than failing.
   */
  async jwks(): Promise<{ keys: PublicJwk[] }> {
    await this.fresh();
    if (!this.activeKid) {
      await this.ensureKey().catch((err: unknown) => {
        if (!(err instanceof DatabaseReadOnlyError)) throw err;
      });
    }
    const now = Date.now();
    return {
      keys: this.keys
        .filter((k) => k.status === 'active' || (k.publishedUntil !== null && k.publishedUntil.getTime() > now))
        .map((k) => publicJwk(k.publicJwk)),
    };
  }

  /**
   * A new active key; the old one retired, published for RETIRED_KEY_PUBLISHED_SECONDS more.
   * Not audited by itself: responders rotate through rotateKeys (src/auth/admin.ts), which
   * calls rotateIn inside its own transaction and audits the kids.
   */
  async rotate(): Promise<TokenKeyRotation> {
    const next = await createTokenKey(this.kek);
    const rotation = await this.db.transaction((tx) => this.rotateIn(tx, next));
    this.invalidate();
    return rotation;
  }

  /**
   * The rotation's statements, inside the caller's transaction: retired keys past their
   * publication are deleted, the active key is retired, `next` becomes active. Call
   * `invalidate()` once the transaction has committed.
   */
  async rotateIn(tx: Queryable, next: NewTokenKey): Promise<TokenKeyRotation> {
    await tx.query(LOCK_SQL);
    const deleted = await tx.query<{ kid: string }>(
      `DELETE FROM token_signing_keys WHERE status = 'retired' AND published_until <= now() RETURNING kid`,
    );
    const retired = await tx.query<{ kid: string }>(
      `UPDATE token_signing_keys
          SET status = 'retired', retired_at = now(), published_until = now() + make_interval(secs => $1)
        WHERE status = 'active' RETURNING kid`,
      [RETIRED_KEY_PUBLISHED_SECONDS],
    );
    await insertKey(tx, next, { onlyIfNone: false });
    const retiredKid = retired.rows[0]?.kid;
    return {
      activeKid: next.kid,
      ...(retiredKid ? { retiredKid } : {}),
      deletedKids: deleted.rows.map((r) => r.kid).sort(),
    };
  }

  /** Forget the cached copy: the next call reads `token_signing_keys` again. */
  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  /** One query at a time per process; concurrent callers share it. */
  reload(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async signingKey(): Promise<{ kid: string; key: SigningKey }> {
    await this.fresh();
    if (!this.activeKid) await this.ensureKey();
    const signing = this.signing;
    if (!signing || signing.kid !== this.activeKid) {
      throw new TokenKeyUnavailableError(
        'no usable active token signing key: is its key-encryption key in the keyring?',
      );
    }
    return signing;
  }

  private async fresh(): Promise<void> {
    if (performance.now() - this.loadedAt > this.maxStalenessMs) await this.reload();
  }

  private async ensureKey(): Promise<void> {
    const key = await createTokenKey(this.kek);
    // under the rotation lock, and the partial unique index besides: one first key, whoever races
    await this.db.transaction(async (tx) => {
      await tx.query(LOCK_SQL);
      await insertKey(tx, key, { onlyIfNone: true });
    });
    await this.reload();
  }

  private async load(): Promise<void> {
    const { rows } = await this.db.query<KeyRow>(
      `SELECT kid, public_jwk, kek_id, status, published_until,
              CASE WHEN status = 'active' THEN wrapped_private END AS wrapped_private
         FROM token_signing_keys
        ORDER BY status = 'active' DESC, created_at DESC, kid`,
    );
    const active = rows.find((r) => r.status === 'active');
    if (active && this.signing?.kid !== active.kid) {
      this.signing = await this.unwrap(active);
      if (this.signing) this.log.info('token key unseal success', { kid: active.kid, kekId: active.kek_id });
    } else if (!active) {
      this.signing = undefined;
    }
    this.keys = rows.map((r) => ({
      kid: r.kid,
      status: r.status,
      publicJwk: r.public_jwk,
      publishedUntil: r.published_until,
    }));
    this.activeKid = active?.kid;
    this.loadedAt = performance.now();
  }

  private async unwrap(row: KeyRow): Promise<{ kid: string; key: SigningKey } | undefined> {
    const wrapping = this.kek.keys.get(row.kek_id);
    if (!wrapping || !row.wrapped_private) {
      this.log.warn('token signing key wrapped under a key-encryption key missing from the keyring', {
        kid: row.kid,
        kekId: row.kek_id,
      });
      return undefined;
    }
    try {
      const key = await unwrapTokenKey(wrapping, {
        kid: row.kid,
        wrappedPrivate: row.wrapped_private,
        publicJwk: row.public_jwk,
      });
      return { kid: row.kid, key };
    } catch {
      // never the cause: it could hint at the plaintext
      this.log.warn('token signing key does not unwrap under its key-encryption key', {
        kid: row.kid,
        kekId: row.kek_id,
      });
      return undefined;
    }
  }
}

/** `onlyIfNone`: a first key, which a concurrent first start may have made already (then nothing). */
async function insertKey(tx: Queryable, key: NewTokenKey, { onlyIfNone }: { onlyIfNone: boolean }): Promise<void> {
  await tx.query(
    `INSERT INTO token_signing_keys (kid, alg, public_jwk, wrapped_private, kek_id, status)
     SELECT $1, $2, $3::jsonb, $4, $5, 'active'` +
      (onlyIfNone
        ? ` WHERE NOT EXISTS (SELECT 1 FROM token_signing_keys WHERE status = 'active') ON CONFLICT DO NOTHING`
        : ''),
    [key.kid, TOKEN_ALG, JSON.stringify(key.publicJwk), key.wrappedPrivate, key.kekId],
  );
}

function checkClaims(claims: TokenClaims): void {
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) throw new TypeError('sub must be a non-empty string');
  if (typeof claims.aud !== 'string' || claims.aud.length === 0) throw new TypeError('aud must be a non-empty string');
  if (!Array.isArray(claims.amr) || !claims.amr.every((m) => typeof m === 'string' && m.length > 0)) {
    throw new TypeError('amr must be an array of non-empty strings');
  }
  if (!(claims.authTime instanceof Date) || Number.isNaN(claims.authTime.getTime())) {
    throw new TypeError('authTime must be a valid Date');
  }
  if (claims.nonce !== undefined && (typeof claims.nonce !== 'string' || claims.nonce.length === 0)) {
    throw new TypeError('nonce, when given, must be a non-empty string');
  }
  if (!Number.isInteger(claims.ttlSeconds) || claims.ttlSeconds < 1 || claims.ttlSeconds > maxTokenTtlSeconds) {
    // a longer token would outlive its key's publication after a rotation
    throw new RangeError(`ttlSeconds must be an integer from 1 to ${maxTokenTtlSeconds}`);
  }
  const reserved = Object.keys(claims.extra ?? {}).filter((name) => REGISTERED_CLAIMS.has(name));
  if (reserved.length > 0) throw new TypeError(`extra may not set ${reserved.join(', ')}: sign sets them`);
}
