/**
 * Sliding-window rate limits per user and per client IP, state in `rate_limit_attempts` so
 * every process shares it. Each scope gets its own row (user rows carry no IP, IP rows no
 * user), so responders' `DELETE FROM rate_limit_attempts WHERE user_id IN (...)` clears a
 * user's state without touching the IP counters. Refused requests are kept as `exceeded` rows
 * for forensics but do not count against the window: a refused client is not punished for
 * retrying, only held to the limit. Rows older than WARDEN_RETENTION_RATE_LIMIT_ATTEMPTS (and
 * than the longest window) are deleted by retention (src/activities/retention.ts), in batches
 * off the request path.
 *
 * "Per IP" is per bucket (src/auth/ipBucket.ts): an IPv4 address, an IPv6 /64. Each IPv6 /48
 * also has a budget, WARDEN_RATE_LIMIT_V6_48_FACTOR times the per-IP limit in the same window,
 * refused with scope `ip_prefix`.
 *
 * A request from a device the user has signed in from (src/auth/trustedDevices.ts) is held to
 * the per-IP limit only: the per-user count is what strangers share, and spending it from
 * elsewhere must not lock the owner out. The device's own budgets (src/auth/budgets.ts) bound
 * what it may do instead.
 */
import type { Database } from '../db/database';
import type { AuthMethod } from '../shared/auth';
import { clearGuesses } from './budgets';
import { statusAfterCutOff } from './cutoffs';
import { ipBucket, ipv6Site } from './ipBucket';
import type { RateLimitSettings } from './settings';

const STATUS_AFTER_CUTOFF = statusAfterCutOff('c');

/** `ip` counts the client's bucket (IPv4 address, IPv6 /64), `ip_prefix` its IPv6 /48 (src/auth/ipBucket.ts). */
export type RateLimitScope = 'user' | 'ip' | 'ip_prefix';
/** `initiate` covers everything that sends a message (initiate and resend); `verify` the checks. */
export type RateLimitAction = 'initiate' | 'verify';

export type RateLimitDecision =
  | { allowed: true }
  | { allowed: false; scope: RateLimitScope; retryAfterSeconds: number; limit: number; windowSeconds: number };

/** The decision, and whether the request came from a device the user trusts (its per-user count was skipped). */
export type TrustedDecision = RateLimitDecision & { trusted: boolean };

/** Whether the device (SHA-256 of its trust cookie, $n; NULL for none) has signed in to `user`. */
const TRUSTED = (user: string, device: string) =>
  `EXISTS (SELECT 1 FROM trusted_devices d WHERE d.user_id = ${user} AND d.device_sha256 = ${device}::bytea)`;

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
  input: { userId?: string; ip: string; action: RateLimitAction; device?: Buffer; v6SiteFactor: number },
): Promise<TrustedDecision> {
  const { userId, ip, action } = input;
  const { rows } = await db.write<CheckRow & { trusted: boolean }>(
    `SELECT r.allowed, r.scope, r.retry_after, t.trusted
       FROM (SELECT ${TRUSTED('$12::text', '$13')} AS trusted) AS t
      CROSS JOIN LATERAL warden_rate_limit_check(${CHECK_ARGS('(CASE WHEN t.trusted THEN NULL ELSE $12::text END)')}) AS r`,
    [...checkParams(settings, ip, action, input.v6SiteFactor), userId ?? null, input.device ?? null],
  );
  return { ...decisionOf(settings, rows[0]!, input.v6SiteFactor), trusted: rows[0]!.trusted };
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
  input: {
    challengeId: string;
    method: AuthMethod;
    ip: string;
    action: RateLimitAction;
    device?: Buffer;
    v6SiteFactor: number;
  },
): Promise<{ row: LimitedChallengeRow | undefined; decision: RateLimitDecision; trusted: boolean }> {
  const { challengeId, method, ip, action } = input;
  const { rows } = await db.write<CheckRow & Partial<LimitedChallengeRow> & { trusted: boolean }>(
    `SELECT c.user_id, c.method, ${STATUS_AFTER_CUTOFF}, c.expires_at, b.client_id, r.allowed, r.scope, r.retry_after, t.trusted
       FROM (VALUES (1)) AS one (x)
       LEFT JOIN auth_challenges c ON c.id = $12 AND c.method = $13
       LEFT JOIN challenge_bindings b ON b.challenge_id = c.id
      CROSS JOIN LATERAL (SELECT ${TRUSTED('c.user_id', '$14')} AS trusted) AS t
      CROSS JOIN LATERAL warden_rate_limit_check(${CHECK_ARGS('(CASE WHEN t.trusted THEN NULL ELSE c.user_id END)')}) AS r`,
    [...checkParams(settings, ip, action, input.v6SiteFactor), challengeId, method, input.device ?? null],
  );
  const { user_id, method: rowMethod, status, expires_at, client_id, trusted, ...check } = rows[0]!;
  const row =
    user_id != null
      ? { user_id, method: rowMethod!, status: status!, expires_at: expires_at!, client_id: client_id ?? null }
      : undefined;
  return { row, decision: decisionOf(settings, check, input.v6SiteFactor), trusted };
}

type CheckRow = { allowed: boolean; scope: RateLimitScope | null; retry_after: number | null };

/**
 * The arguments of warden_rate_limit_check with the user (text, NULL for none) as an SQL
 * expression; its lock key is the prefix $1 and the user, NULL with it. $1..$11 are checkParams.
 */
const CHECK_ARGS = (user: string) => `$1 || ${user}, $2, ${user}, $3::inet, $4, $5, $6, $7, $8, $9::inet, $10, $11`;

/**
 * $1..$11 of CHECK_ARGS: the user lock's prefix, the bucket's lock, the bucket, the action, both
 * limits, then the IPv6 /48, its lock and its limit (NULL, NULL, the limit for IPv4). The limits
 * count buckets, not addresses (migrations/0190_ipv6_prefix_limit.sql).
 */
function checkParams(
  settings: RateLimitSettings,
  ip: string,
  action: RateLimitAction,
  v6SiteFactor: number,
): unknown[] {
  const { per_user: user, per_ip: perIp } = settings;
  const bucket = ipBucket(ip) ?? ip;
  const site = ipv6Site(ip) ?? null;
  return [
    lockKey('user', action, ''),
    lockKey('ip', action, bucket),
    bucket,
    action,
    user.window_seconds,
    user.max_attempts,
    perIp.window_seconds,
    perIp.max_attempts,
    site,
    site && lockKey('ip_prefix', action, site),
    perIp.max_attempts * v6SiteFactor,
  ];
}

function decisionOf(settings: RateLimitSettings, row: CheckRow, v6SiteFactor: number): RateLimitDecision {
  if (row.allowed) return { allowed: true };
  const scope: RateLimitScope = row.scope === 'user' || row.scope === 'ip_prefix' ? row.scope : 'ip';
  const limits = scope === 'user' ? settings.per_user : settings.per_ip;
  return {
    allowed: false,
    scope,
    retryAfterSeconds: row.retry_after ?? 1,
    limit: scope === 'ip_prefix' ? limits.max_attempts * v6SiteFactor : limits.max_attempts,
    windowSeconds: limits.window_seconds,
  };
}

/** Recovery for false positives: forget the listed users' rate-limit state and wrong-code budget. */
export async function clearUserRateLimits(db: Database, userIds: readonly string[]): Promise<number> {
  const result = await db.write('DELETE FROM rate_limit_attempts WHERE user_id = ANY($1::text[])', [userIds]);
  return (result.rowCount ?? 0) + (await clearGuesses(db, userIds));
}
