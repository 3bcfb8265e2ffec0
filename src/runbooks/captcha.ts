/**
 * CAPTCHA mode, a runtime setting the abuse runbook switches on while an attack lasts: a
 * client or user with at least `threshold` failed attempts in the last `window_seconds` must
 * send a valid hCaptcha `captcha_token` with its next auth request. Failed attempts are
 * requests the rate limiter refused (per IP or per user) and wrong, locked or unknown-challenge
 * verifications of the user. A client is its IP's bucket (src/auth/ipBucket.ts: an IPv4
 * address, an IPv6 /64), the unit the rate limiter records refusals under: spreading failures
 * over the addresses of one /64 does not keep them under the threshold.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ipBucket } from '../auth/ipBucket';
import type { Database } from '../db/database';

export const CAPTCHA_SETTINGS_KEY = 'auth.captcha';

export const CaptchaSettings = Type.Object(
  {
    enabled: Type.Boolean(),
    threshold: Type.Integer({ minimum: 1, maximum: 1000 }),
    window_seconds: Type.Integer({ minimum: 10, maximum: 86_400 }),
  },
  { additionalProperties: false },
);
export type CaptchaSettings = Static<typeof CaptchaSettings>;

/** Off, with the normal threshold (3 failed attempts) ready for when it is switched on. */
export const DEFAULT_CAPTCHA_SETTINGS: CaptchaSettings = { enabled: false, threshold: 3, window_seconds: 900 };

/** The failed attempts of an IP's bucket or a user in the last `windowSeconds`, as the gate counts them. */
export async function failedAttempts(
  db: Database,
  ip: string,
  userId: string | undefined,
  windowSeconds: number,
): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM rate_limit_attempts
              WHERE exceeded AND ip = $1::inet AND attempted_at > now() - make_interval(secs => $3))
          + (SELECT count(*) FROM rate_limit_attempts
              WHERE exceeded AND $2::text IS NOT NULL AND user_id = $2 AND attempted_at > now() - make_interval(secs => $3))
          + (SELECT count(*) FROM audit_events
              WHERE $2::text IS NOT NULL AND user_id = $2 AND event_type = 'identity.auth.validation_attempt'
                AND outcome IN ('invalid_otp', 'invalid_token', 'locked') AND occurred_at > now() - make_interval(secs => $3))
          AS n`,
    [ipBucket(ip) ?? null, userId ?? null, windowSeconds],
  );
  return Number(rows[0]?.n ?? 0);
}
