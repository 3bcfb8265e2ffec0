/**
 * Bearer secrets Warden issues and then only recognises: operators' API tokens (`wop_`) and
 * applications' keys (`wak_`). A secret is a recognisable prefix and 43 base64url characters
 * (256 random bits), shown once when it is issued. Postgres keeps its SHA-256 digest (a fast
 * digest is enough: there is nothing to guess in 256 random bits) and a short hint to tell a
 * listing's entries apart, so a leaked table names no usable credential. A lookup goes by the
 * digest through a unique index: what the database compares is the digest, never the secret,
 * so the time a lookup takes says nothing about the secret's characters.
 */
import { createHash, randomBytes } from 'node:crypto';

/** last_used_at is written at most this often per secret: a busy client is not a write per request */
export const LAST_USED_EVERY_S = 60;

/** The secret's characters after its prefix that a hint shows. */
const HINT_CHARS = 6;

/** A new secret: the prefix and 32 random bytes as base64url. */
export function newSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** What a secret of this prefix looks like: anything else is refused before a database read. */
export function secretShape(prefix: string): RegExp {
  return new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[A-Za-z0-9_-]{43}$`);
}

/** The stored form of a secret. */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** The prefix and the first few characters: enough to tell secrets apart, far too few to use. */
export function secretHint(secret: string, prefix: string): string {
  return secret.slice(0, prefix.length + HINT_CHARS);
}

/** SQL: the secret row `alias` is live (not revoked, not expired). */
export const liveSecretSql = (alias: string) =>
  `(${alias}.revoked_at IS NULL AND (${alias}.expires_at IS NULL OR ${alias}.expires_at > now()))`;

/** SQL: the secret row `alias`'s last use is old enough to be written again. */
export const staleUseSql = (alias: string) =>
  `(${alias}.last_used_at IS NULL OR ${alias}.last_used_at < now() - make_interval(secs => ${LAST_USED_EVERY_S}))`;
