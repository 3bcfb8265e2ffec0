/**
 * Devices an account has signed in from. A successful sign-in in a browser sets the
 * `warden_trust` cookie (a random 256-bit value, HttpOnly, for TRUST_MAX_AGE_SECONDS) and
 * stores its SHA-256 against the account; only the digest is ever stored or compared. A request
 * that shows the cookie of a device trusted by the account it is for is held to that device's
 * own budgets (per-user rate limit, destination budget, guess budget) instead of the budgets
 * every stranger shares: whoever spends those from elsewhere cannot lock the owner out.
 *
 * The value proves nothing but "this browser signed in to this account before": it is not a
 * session and signs nobody in. A device trusted by another account is a stranger here.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Database } from '../db/database';

export const TRUST_COOKIE = 'warden_trust';
/** The cookie's lifetime, renewed by every sign-in; a row not renewed for as long is dead. */
export const TRUST_MAX_AGE_SECONDS = 180 * 86_400;
const TRUST_SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const newTrustSecret = (): string => randomBytes(32).toString('base64url');

/** The stored form of a trust cookie's value; undefined for anything that cannot be one. */
export function trustDigest(secret: string | undefined): Buffer | undefined {
  return typeof secret === 'string' && TRUST_SECRET_PATTERN.test(secret)
    ? createHash('sha256').update(secret).digest()
    : undefined;
}

/** Trusts the device for the account from now on (or renews it), and lets dead rows go. */
export async function trustDevice(db: Database, userId: string, digest: Buffer): Promise<void> {
  await db.write(
    `INSERT INTO trusted_devices (user_id, device_sha256) VALUES ($1, $2)
     ON CONFLICT (user_id, device_sha256) DO UPDATE SET last_seen_at = now()`,
    [userId, digest],
  );
  maybeForget(db);
}

const FORGET_EVERY_MS = 3_600_000;
let lastForget = 0;

function maybeForget(db: Database): void {
  const now = Date.now();
  if (now - lastForget < FORGET_EVERY_MS || db.readOnly) return;
  lastForget = now;
  db.write(
    `DELETE FROM trusted_devices WHERE ctid = ANY (ARRAY (
       SELECT ctid FROM trusted_devices WHERE last_seen_at < now() - make_interval(secs => $1) LIMIT 5000))`,
    [TRUST_MAX_AGE_SECONDS],
  ).catch(() => {});
}
