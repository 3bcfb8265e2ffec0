/**
 * Sliding-window rate limits per user and per client IP, state in `rate_limit_attempts` so
 * every process shares it. Each scope gets its own row (user rows carry no IP, IP rows no
 * user), so responders' `DELETE FROM rate_limit_attempts WHERE user_id IN (...)` clears a
 * user's state without touching the IP counters. Refused requests are kept as `exceeded` rows
 * for forensics but do not count against the window: a refused client is not punished for
 * retrying, only held to the limit. Rows older than WARDEN_RETENTION_RATE_LIMIT_ATTEMPTS (and
 * than the longest window) are deleted by retention (src/activities/retention.ts), in batches
 * off the request path.
 */
import type { Database } from '../db/database';
import type { AuthMethod } from '../shared/auth';
import { statusAfterCutOff } from './cutoffs';
import type { RateLimitSettings } from './settings';

const STATUS_AFTER_CUTOFF = statusAfterCutOff('c');

export type RateLimitScope = 'user' | 'ip';
/** `initiate` covers everything that sends a message (initiate and resend); `verify` the checks. */
export type RateLimitAction = 'initiate' | 'verify';

export type RateLimitDecision =
  | { allowed: true }
  | { allowed: false; scope: RateLimitScope; retryAfterSeconds: number; limit: number; windowSeconds: number };

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
  const { rows } = await db.write<CheckRow>(
    `SELECT allowed, scope, retry_after FROM warden_rate_limit_check(${CHECK_ARGS('$9')})`,
    [...checkParams(settings, ip, action), userId ?? null],
  );
  return decisionOf(settings, rows[0]!);
}

/** A challenge's row as verify and resend route on it; only a challenge of the request's method. */
export interface LimitedChallengeRow {
  user_id: string;
  method: AuthMethod;
  status: string;
  expires_at: Date;
  /** the app the challenge belongs to (challenge_bindings), when verify and resend read it */
  client_id?: string | null;
}

/**
 * Verify and resend: reads the challenge (of this method) and checks and records the attempt
 * against its user, when there is one, and the IP, in one statement (one round trip instead of
 * two). An unknown challenge counts against the IP only, like any attempt without a user.
 */
export async function checkRateLimitForChallenge(
  db: Database,
  settings: RateLimitSettings,
  input: { challengeId: string; method: AuthMethod; ip: string; action: RateLimitAction },
): Promise<{ row: LimitedChallengeRow | undefined; decision: RateLimitDecision }> {
  const { challengeId, method, ip, action } = input;
  const { rows } = await db.write<CheckRow & Partial<LimitedChallengeRow>>(
    `SELECT c.user_id, c.method, ${STATUS_AFTER_CUTOFF}, c.expires_at, b.client_id, r.allowed, r.scope, r.retry_after
       FROM (VALUES (1)) AS one (x)
       LEFT JOIN auth_challenges c ON c.id = $9 AND c.method = $10
       LEFT JOIN challenge_bindings b ON b.challenge_id = c.id
      CROSS JOIN LATERAL warden_rate_limit_check(${CHECK_ARGS('c.user_id')}) AS r`,
    [...checkParams(settings, ip, action), challengeId, method],
  );
  const { user_id, method: rowMethod, status, expires_at, client_id, ...check } = rows[0]!;
  const row =
    user_id != null
      ? { user_id, method: rowMethod!, status: status!, expires_at: expires_at!, client_id: client_id ?? null }
      : undefined;
  return { row, decision: decisionOf(settings, check) };
}

type CheckRow = { allowed: boolean; scope: RateLimitScope | null; retry_after: number | null };

/**
 * The arguments of warden_rate_limit_check with the user (text, NULL for none) as an SQL
 * expression; its lock key is the prefix $1 and the user, NULL with it. $1..$8 are checkParams.
 */
const CHECK_ARGS = (user: string) => `$1 || ${user}, $2, ${user}, $3::inet, $4, $5, $6, $7, $8`;

/** $1..$8 of CHECK_ARGS: the user lock's prefix, the IP's lock, the IP, the action, both limits. */
function checkParams(settings: RateLimitSettings, ip: string, action: RateLimitAction): unknown[] {
  const { per_user: user, per_ip: perIp } = settings;
  return [
    lockKey('user', action, ''),
    lockKey('ip', action, ip),
    ip,
    action,
    user.window_seconds,
    user.max_attempts,
    perIp.window_seconds,
    perIp.max_attempts,
  ];
}

function decisionOf(settings: RateLimitSettings, row: CheckRow): RateLimitDecision {
  if (row.allowed) return { allowed: true };
  const scope: RateLimitScope = row.scope === 'user' ? 'user' : 'ip';
  const limits = scope === 'user' ? settings.per_user : settings.per_ip;
  return {
    allowed: false,
    scope,
    retryAfterSeconds: row.retry_after ?? 1,
    limit: limits.max_attempts,
    windowSeconds: limits.window_seconds,
  };
}

/** Recovery for false positives: forget the listed users' rate-limit state. */
export async function clearUserRateLimits(db: Database, userIds: readonly string[]): Promise<number> {
  const result = await db.write('DELETE FROM rate_limit_attempts WHERE user_id = ANY($1::text[])', [userIds]);
  return result.rowCount ?? 0;
}
