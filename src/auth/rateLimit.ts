import type { Database } from '../db/database';
import type { RateLimitSettings } from './settings';

/**
 * Sliding-window rate limits per user and per client IP, state in `rate_limit_attempts` so
 * every process shares it. Each scope gets its own row (user rows carry no IP, IP rows no
 * user), so the seed's `DELETE FROM rate_limit_attempts WHERE user_id IN (...)` clears a
 * user's state without touching the IP counters. Refused requests are kept as `exceeded` rows
 * for forensics but do not count against the window: a refused client is not punished for
 * retrying, only held to the limit.
 */
export type RateLimitScope = 'user' | 'ip';
/** `initiate` covers everything that sends a message (initiate and resend); `verify` the checks. */
export type RateLimitAction = 'initiate' | 'verify';

export type RateLimitDecision = { allowed: true } | { allowed: false; scope: RateLimitScope; retryAfterSeconds: number; limit: number; windowSeconds: number };

const RETENTION = '2 days';
const CLEANUP_EVERY_MS = 60_000;
let lastCleanup = 0;

/** Advisory-lock keys are 64-bit hashes of the scope, action and subject. */
function lockKey(scope: RateLimitScope, action: RateLimitAction, subject: string): string {
  return `warden:ratelimit:${scope}:${action}:${subject}`;
}

/**
 * Checks and records one attempt atomically: the per-user and per-IP advisory locks serialise
 * concurrent requests for the same subject, so a burst cannot overshoot the limit. Locks are
 * always taken user first, then IP, so two requests never wait on each other in a cycle.
 */
export async function checkRateLimit(
  db: Database,
  settings: RateLimitSettings,
  input: { userId?: string; ip: string; action: RateLimitAction },
): Promise<RateLimitDecision> {
  const { userId, ip, action } = input;
  const user = settings.per_user;
  const perIp = settings.per_ip;
  const decision = await db.transaction(async (tx) => {
    const keys = [...(userId !== undefined ? [lockKey('user', action, userId)] : []), lockKey('ip', action, ip)];
    for (const key of keys) await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
    const { rows } = await tx.query<{ user_n: number; user_retry: number | null; ip_n: number; ip_retry: number | null }>(
      `SELECT
         (SELECT count(*)::int FROM rate_limit_attempts
           WHERE $1::text IS NOT NULL AND user_id = $1 AND action = $3 AND NOT exceeded
             AND attempted_at > now() - make_interval(secs => $4)) AS user_n,
         (SELECT ceil(extract(epoch FROM min(attempted_at) + make_interval(secs => $4) - now()))::int
            FROM rate_limit_attempts
           WHERE $1::text IS NOT NULL AND user_id = $1 AND action = $3 AND NOT exceeded
             AND attempted_at > now() - make_interval(secs => $4)) AS user_retry,
         (SELECT count(*)::int FROM rate_limit_attempts
           WHERE ip = $2::inet AND action = $3 AND NOT exceeded
             AND attempted_at > now() - make_interval(secs => $5)) AS ip_n,
         (SELECT ceil(extract(epoch FROM min(attempted_at) + make_interval(secs => $5) - now()))::int
            FROM rate_limit_attempts
           WHERE ip = $2::inet AND action = $3 AND NOT exceeded
             AND attempted_at > now() - make_interval(secs => $5)) AS ip_retry`,
      [userId ?? null, ip, action, user.window_seconds, perIp.window_seconds],
    );
    const counts = rows[0]!;
    const result: RateLimitDecision =
      userId !== undefined && counts.user_n >= user.max_attempts
        ? { allowed: false, scope: 'user', retryAfterSeconds: Math.max(1, counts.user_retry ?? 1), limit: user.max_attempts, windowSeconds: user.window_seconds }
        : counts.ip_n >= perIp.max_attempts
          ? { allowed: false, scope: 'ip', retryAfterSeconds: Math.max(1, counts.ip_retry ?? 1), limit: perIp.max_attempts, windowSeconds: perIp.window_seconds }
          : { allowed: true };
    if (result.allowed) {
      await tx.query(
        `INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded)
         SELECT NULL, $2::inet, $3, false
         UNION ALL SELECT $1::text, NULL, $3, false WHERE $1::text IS NOT NULL`,
        [userId ?? null, ip, action],
      );
    } else {
      await tx.query(
        `INSERT INTO rate_limit_attempts (user_id, ip, action, exceeded) VALUES ($1, $2::inet, $3, true)`,
        result.scope === 'user' ? [userId, null, action] : [null, ip, action],
      );
    }
    return result;
  });
  maybeCleanup(db);
  return decision;
}

/** Rows older than any window are dead weight; at most once a minute per process. */
function maybeCleanup(db: Database): void {
  const now = Date.now();
  if (now - lastCleanup < CLEANUP_EVERY_MS) return;
  lastCleanup = now;
  db.write(`DELETE FROM rate_limit_attempts WHERE attempted_at < now() - $1::interval`, [RETENTION]).catch(() => {});
}

/** The seed's recovery step for false positives: forget the listed users' rate-limit state. */
export async function clearUserRateLimits(db: Database, userIds: readonly string[]): Promise<number> {
  const result = await db.write('DELETE FROM rate_limit_attempts WHERE user_id = ANY($1::text[])', [userIds]);
  return result.rowCount ?? 0;
}
