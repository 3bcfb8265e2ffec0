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
 * Checks and records one attempt atomically, in one round trip (the function is in
 * migrations/0050_rate_limit_check.sql, its counts bounded by 0060): the per-user and per-IP
 * advisory locks serialise concurrent requests for the same subject, so a burst cannot
 * overshoot the limit. Locks are always taken user first, then IP, so two requests never wait
 * on each other in a cycle. A check reads at most the limit's worth of counted attempts, so a
 * client refused at a high rate does not make its own next checks more expensive.
 */
export async function checkRateLimit(
  db: Database,
  settings: RateLimitSettings,
  input: { userId?: string; ip: string; action: RateLimitAction },
): Promise<RateLimitDecision> {
  const { userId, ip, action } = input;
  const user = settings.per_user;
  const perIp = settings.per_ip;
  const { rows } = await db.write<{ allowed: boolean; scope: RateLimitScope | null; retry_after: number | null }>(
    'SELECT allowed, scope, retry_after FROM warden_rate_limit_check($1, $2, $3, $4::inet, $5, $6, $7, $8, $9)',
    [
      userId !== undefined ? lockKey('user', action, userId) : null,
      lockKey('ip', action, ip),
      userId ?? null,
      ip,
      action,
      user.window_seconds,
      user.max_attempts,
      perIp.window_seconds,
      perIp.max_attempts,
    ],
  );
  const row = rows[0]!;
  maybeCleanup(db);
  if (row.allowed) return { allowed: true };
  const scope: RateLimitScope = row.scope === 'user' ? 'user' : 'ip';
  const limits = scope === 'user' ? user : perIp;
  return { allowed: false, scope, retryAfterSeconds: row.retry_after ?? 1, limit: limits.max_attempts, windowSeconds: limits.window_seconds };
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
