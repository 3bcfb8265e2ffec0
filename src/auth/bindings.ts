/**
 * Turning a verified challenge into something an app can use, and only for whoever started it.
 *
 * A challenge is bound at initiate (challenge_bindings, written with the challenge row) to its
 * app and to a holder: the app's PKCE `code_challenge` (S256 of a verifier only the app knows),
 * Warden's device cookie (a random secret in an HttpOnly cookie; only its SHA-256 is stored),
 * or both. Once the challenge is verified, a one-time authorization code is released to the
 * holder: to the browser showing the device cookie, or to anyone when the code can only be
 * exchanged with the PKCE verifier. The app's backend exchanges the code once, within 60 s,
 * with its API key (and the verifier, when there is a code challenge) for a signed token.
 *
 * Codes are 256-bit random strings; only their SHA-256 is stored, and each release supersedes
 * the challenge's earlier codes. A challenge allows one exchange, ever.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database, Queryable } from '../db/database';
import type { AuthMethod, ChallengeBinding } from '../shared/auth';
import { AuditEventType, insertAudit, type AuditRow } from './audit';
import { statusAfterCutOff } from './cutoffs';

/** The browser's binding secret: one per browser, reused by its challenges. */
export const DEVICE_COOKIE = 'warden_device';
export const DEVICE_COOKIE_MAX_AGE_SECONDS = 24 * 3600;
/** How long a released code may be exchanged. */
export const CODE_TTL_SECONDS = 60;
/** How long after its verification a challenge's holder may still collect a code. */
export const RELEASE_WINDOW_SECONDS = 600;

export const CODE_CHALLENGE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** RFC 7636's verifier alphabet and length */
export const CODE_VERIFIER_PATTERN = /^[A-Za-z0-9._~-]{43,128}$/;
export const AUTH_CODE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const DEVICE_SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest();

/** The S256 code challenge of a verifier. */
export const s256 = (verifier: string): string => sha256(verifier).toString('base64url');

export const newDeviceSecret = (): string => randomBytes(32).toString('base64url');

/** The stored form of a device secret; undefined for a value that cannot be one of ours. */
export function deviceDigest(secret: string | undefined): string | undefined {
  return secret && DEVICE_SECRET_PATTERN.test(secret) ? sha256(secret).toString('hex') : undefined;
}

export async function insertBinding(tx: Queryable, challengeId: string, b: ChallengeBinding): Promise<void> {
  await tx.query(
    `INSERT INTO challenge_bindings (challenge_id, client_id, origin, code_challenge, device_sha256, redirect_uri, state, nonce)
     VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6, $7, $8)
     ON CONFLICT (challenge_id) DO NOTHING`,
    [
      challengeId,
      b.clientId,
      b.origin,
      b.codeChallenge ?? null,
      b.deviceSha256 ?? null,
      b.redirectUri ?? null,
      b.state ?? null,
      b.nonce ?? null,
    ],
  );
}

export interface BoundChallenge {
  challenge_id: string;
  client_id: string;
  origin: 'browser' | 'server';
  code_challenge: string | null;
  device_sha256: Buffer | null;
  redirect_uri: string | null;
  state: string | null;
  nonce: string | null;
  exchanged_at: Date | null;
  user_id: string;
  method: AuthMethod;
  status: string;
  expires_at: Date;
  ended_at: Date | null;
  delivery_outcome: string | null;
  delivery_status: string | null;
  delivery_error_class: string | null;
  now: Date;
}

const BOUND_COLUMNS = `b.challenge_id, b.client_id, b.origin, b.code_challenge, b.device_sha256, b.redirect_uri,
       b.state, b.nonce, b.exchanged_at, c.user_id, c.method, ${statusAfterCutOff('c')}, c.expires_at, c.ended_at,
       c.delivery_outcome, c.delivery_status, c.delivery_error_class, now() AS now`;

export async function loadBoundChallenge(db: Queryable, challengeId: string): Promise<BoundChallenge | undefined> {
  const { rows } = await db.query<BoundChallenge>(
    `SELECT ${BOUND_COLUMNS} FROM challenge_bindings b JOIN auth_challenges c ON c.id = b.challenge_id
      WHERE b.challenge_id = $1`,
    [challengeId],
  );
  return rows[0];
}

/** What a request shows of the binding: the device cookie's value, a PKCE verifier. */
export interface BindingProof {
  deviceSecret?: string;
  codeVerifier?: string;
}

function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether the request holds the binding: its device cookie or its verifier. */
export function holdsBinding(
  row: Pick<BoundChallenge, 'device_sha256' | 'code_challenge'>,
  proof: BindingProof,
): boolean {
  const device = deviceDigest(proof.deviceSecret);
  if (device && row.device_sha256 && sameDigest(Buffer.from(device, 'hex'), row.device_sha256)) return true;
  if (proof.codeVerifier && row.code_challenge && CODE_VERIFIER_PATTERN.test(proof.codeVerifier))
    return sameDigest(Buffer.from(s256(proof.codeVerifier)), Buffer.from(row.code_challenge));
  return false;
}

/**
 * Whether the answer to a successful verify may carry the code. The holder always; anyone
 * else only when the code is worthless without the PKCE verifier and no device holds the
 * challenge (a link started by an app's backend, or a code typed where the app asked for it).
 * A magic link opened on another device than the one that asked gets no code: that device
 * polls for it.
 */
export function mayRelease(
  row: Pick<BoundChallenge, 'device_sha256' | 'code_challenge' | 'method'>,
  proof: BindingProof,
): boolean {
  if (holdsBinding(row, proof)) return true;
  if (!row.code_challenge) return false;
  return row.method === 'sms_otp' || row.device_sha256 === null;
}

export interface ReleasedCode {
  code: string;
  state: string | null;
  redirectUri: string | null;
  expiresAt: Date;
}

/**
 * A fresh code for a verified challenge that has not been exchanged, within the release
 * window; undefined otherwise. Earlier unexchanged codes of the challenge stop working.
 */
export async function releaseCode(db: Database, challengeId: string): Promise<ReleasedCode | undefined> {
  const code = randomBytes(32).toString('base64url');
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{
      client_id: string;
      user_id: string;
      method: AuthMethod;
      state: string | null;
      redirect_uri: string | null;
    }>(
      `SELECT b.client_id, b.state, b.redirect_uri, c.user_id, c.method
         FROM challenge_bindings b JOIN auth_challenges c ON c.id = b.challenge_id
        WHERE b.challenge_id = $1 AND b.exchanged_at IS NULL AND c.status = 'verified'
          AND c.ended_at > now() - make_interval(secs => $2)
        FOR UPDATE OF b`,
      [challengeId, RELEASE_WINDOW_SECONDS],
    );
    const bound = rows[0];
    if (!bound) return undefined;
    await tx.query(
      `UPDATE auth_codes SET superseded_at = now()
        WHERE challenge_id = $1 AND superseded_at IS NULL AND exchanged_at IS NULL`,
      [challengeId],
    );
    const inserted = await tx.query<{ expires_at: Date }>(
      `INSERT INTO auth_codes (code_sha256, challenge_id, expires_at)
       VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at`,
      [sha256(code), challengeId, CODE_TTL_SECONDS],
    );
    await insertAudit(tx, {
      type: AuditEventType.codeIssued,
      outcome: 'issued',
      challengeId,
      userId: bound.user_id,
      method: bound.method,
      details: { client_id: bound.client_id },
    });
    return { code, state: bound.state, redirectUri: bound.redirect_uri, expiresAt: inserted.rows[0]!.expires_at };
  });
}

export type ExchangeRefusal =
  | 'unknown_code'
  | 'expired'
  | 'superseded'
  | 'already_exchanged'
  | 'wrong_client'
  | 'verifier_required'
  | 'wrong_verifier'
  | 'redirect_uri_mismatch';

export interface Exchanged {
  challengeId: string;
  userId: string;
  method: AuthMethod;
  authTime: Date;
  nonce: string | null;
}

export interface ExchangeInput {
  code: string;
  clientId: string;
  codeVerifier?: string;
  redirectUri?: string;
}

/**
 * Exchanges a code once. Every answer, taken or refused, is an audit row in the same
 * transaction; the refusal names its reason and the presenting app, never the code.
 */
export async function exchangeCode(
  db: Database,
  input: ExchangeInput,
): Promise<
  | { ok: true; exchanged: Exchanged; audit: AuditRow | undefined }
  | { ok: false; reason: ExchangeRefusal; audit: AuditRow | undefined }
> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{
      challenge_id: string;
      expired: boolean;
      superseded_at: Date | null;
      code_exchanged_at: Date | null;
      exchanged_at: Date | null;
      client_id: string;
      code_challenge: string | null;
      redirect_uri: string | null;
      nonce: string | null;
      user_id: string;
      method: AuthMethod;
      ended_at: Date;
    }>(
      `SELECT a.challenge_id, a.expires_at <= now() AS expired, a.superseded_at, a.exchanged_at AS code_exchanged_at,
              b.exchanged_at, b.client_id, b.code_challenge, b.redirect_uri, b.nonce, c.user_id, c.method, c.ended_at
         FROM auth_codes a JOIN challenge_bindings b ON b.challenge_id = a.challenge_id
         JOIN auth_challenges c ON c.id = a.challenge_id
        WHERE a.code_sha256 = $1
        FOR UPDATE OF a, b`,
      [sha256(input.code)],
    );
    const row = rows[0];
    const refuse = async (reason: ExchangeRefusal) => ({
      ok: false as const,
      reason,
      audit: await insertAudit(tx, {
        type: AuditEventType.codeRefused,
        outcome: reason,
        challengeId: row?.challenge_id,
        userId: row?.user_id,
        method: row?.method,
        details: { client_id: input.clientId },
      }),
    });
    if (!row) return refuse('unknown_code');
    if (row.client_id !== input.clientId) return refuse('wrong_client');
    if (row.code_exchanged_at || row.exchanged_at) return refuse('already_exchanged');
    if (row.superseded_at) return refuse('superseded');
    if (row.expired) return refuse('expired');
    if (row.code_challenge) {
      if (!input.codeVerifier) return refuse('verifier_required');
      if (
        !holdsBinding({ code_challenge: row.code_challenge, device_sha256: null }, { codeVerifier: input.codeVerifier })
      )
        return refuse('wrong_verifier');
    }
    if (input.redirectUri !== undefined && input.redirectUri !== row.redirect_uri)
      return refuse('redirect_uri_mismatch');
    await tx.query('UPDATE auth_codes SET exchanged_at = now() WHERE code_sha256 = $1', [sha256(input.code)]);
    await markExchanged(tx, row.challenge_id);
    const audit = await insertAudit(tx, {
      type: AuditEventType.codeExchanged,
      outcome: 'exchanged',
      challengeId: row.challenge_id,
      userId: row.user_id,
      method: row.method,
      details: { client_id: input.clientId },
    });
    return {
      ok: true as const,
      exchanged: {
        challengeId: row.challenge_id,
        userId: row.user_id,
        method: row.method,
        authTime: row.ended_at,
        nonce: row.nonce,
      },
      audit,
    };
  });
}

/** The challenge's one exchange is used (a code's, or a server-side check that got its token). */
export async function markExchanged(tx: Queryable, challengeId: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    'UPDATE challenge_bindings SET exchanged_at = now() WHERE challenge_id = $1 AND exchanged_at IS NULL',
    [challengeId],
  );
  return rowCount === 1;
}

/** The `amr` claim of a sign-in by this method. */
export const amrOf = (method: AuthMethod): string[] => (method === 'sms_otp' ? ['otp'] : ['email']);
