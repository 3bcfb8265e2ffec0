/**
 * What every public auth route does before touching a challenge: find the client address,
 * refuse blocklisted clients (403, before anything else), hold the client to the rate limits
 * and to the budgets of src/auth/budgets.ts (429 with Retry-After). Each refusal is a metric and
 * is counted into the audit trail (one row per client, action, reason and window:
 * src/auth/refusals.ts).
 */
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuditEventType } from '../../auth/audit';
import { findBlock } from '../../auth/blocklist';
import { maskIp, normalizeIp } from '../../auth/clientIp';
import { ipv6Site } from '../../auth/ipBucket';
import {
  checkRateLimit,
  checkRateLimitForChallenge,
  type LimitedChallengeRow,
  type RateLimitAction,
  type RateLimitDecision,
} from '../../auth/rateLimit';
import type { AuthMethod } from '../../shared/auth';
import { timeStage } from '../../telemetry/stages';
import { ApiError } from '../errors';

export interface ClientContext {
  ip: string;
  ipMasked: string;
}

/**
 * Fastify's `request.ip` already honours WARDEN_TRUSTED_PROXIES (trustProxy). A trusted proxy
 * that forwards something other than an address is refused rather than guessed around.
 */
export function clientContext(request: FastifyRequest): ClientContext {
  const ip = normalizeIp(request.ip ?? '');
  if (isIP(ip) === 0)
    throw new ApiError(400, 'invalid_request', 'the client address (X-Forwarded-For) is not an IP address');
  return { ip, ipMasked: maskIp(ip) };
}

export type GuardAction = 'initiate' | 'verify' | 'resend' | 'confirm_page';

export function auditLogger(app: FastifyInstance) {
  return app.warden.logger.child({ component: 'audit' });
}

/**
 * An onRequest hook for every public auth route: a blocklisted client gets 403 before its
 * body is parsed or validated, before any lookup, rate-limit row or workflow. The refusal is
 * audited (a verify as its validation attempt with outcome `blocked`) and counted.
 */
export function blocklistGuard(app: FastifyInstance, action: GuardAction, method: AuthMethod) {
  return async (request: FastifyRequest): Promise<void> => {
    const client = clientContext(request);
    const block = await timeStage(app.warden.metrics, action, 'blocklist', () => findBlock(app.warden.db, client.ip));
    if (!block) return;
    const { metrics } = app.warden;
    metrics.blockedRequests.inc({ action });
    if (action === 'verify') metrics.validationAttempts.inc({ method, outcome: 'blocked' });
    await app.refusals.record({
      type: action === 'verify' ? AuditEventType.validationAttempt : AuditEventType.requestBlocked,
      outcome: 'blocked',
      method,
      ipMasked: client.ipMasked,
      details: { action, blocklist_id: block.id },
    });
    throw new ApiError(403, 'blocked', 'requests from this address are blocked');
  };
}

/**
 * Counts the attempt against the user (when known) and the IP; throws 429 when over. A device
 * the user trusts (`device`: its trust cookie's digest) is counted against the IP only.
 */
export async function enforceRateLimit(
  app: FastifyInstance,
  client: ClientContext,
  input: { action: RateLimitAction; userId?: string; method: AuthMethod; device?: Buffer },
): Promise<{ trusted: boolean }> {
  const { db, metrics } = app.warden;
  const decision = await timeStage(metrics, input.action, 'rate_limit', async () => {
    const limits = await app.warden.settings.rateLimits();
    return checkRateLimit(db, limits, {
      userId: input.userId,
      ip: client.ip,
      action: input.action,
      device: input.device,
      v6SiteFactor: app.warden.config.rateLimitV6SiteFactor,
    });
  });
  await refuseOverLimit(app, client, input, decision);
  return { trusted: decision.trusted };
}

/**
 * Verify and resend: the challenge's row (undefined unless it exists with this method) read in
 * the same statement that counts the attempt against its user and the IP. The caller refuses
 * with refuseOverLimit once it has recorded what it needs to.
 */
export async function checkChallengeRateLimit(
  app: FastifyInstance,
  client: ClientContext,
  input: { action: RateLimitAction; method: AuthMethod; challengeId: string; device?: Buffer },
): Promise<{ row: LimitedChallengeRow | undefined; decision: RateLimitDecision; trusted: boolean }> {
  const { db, metrics } = app.warden;
  return timeStage(metrics, input.action === 'initiate' ? 'resend' : input.action, 'rate_limit', async () => {
    const limits = await app.warden.settings.rateLimits();
    return checkRateLimitForChallenge(db, limits, {
      challengeId: input.challengeId,
      method: input.method,
      ip: client.ip,
      action: input.action,
      device: input.device,
      v6SiteFactor: app.warden.config.rateLimitV6SiteFactor,
    });
  });
}

/** A refused attempt: audited, counted, 429 with Retry-After. */
export async function refuseOverLimit(
  app: FastifyInstance,
  client: ClientContext,
  input: { action: RateLimitAction; userId?: string; method: AuthMethod; challengeId?: string },
  decision: RateLimitDecision,
): Promise<void> {
  if (decision.allowed) return;
  const { metrics } = app.warden;
  metrics.rateLimitExceeded.inc({ scope: decision.scope, action: input.action });
  // one audit row per client and window (src/auth/refusals.ts); a user's own limit keys it by user too
  await app.refusals.record(
    {
      type: AuditEventType.rateLimitExceeded,
      outcome: decision.scope,
      method: input.method,
      userId: input.userId,
      challengeId: input.challengeId,
      ipMasked: client.ipMasked,
      details: {
        scope: decision.scope,
        action: input.action,
        limit: decision.limit,
        window_seconds: decision.windowSeconds,
        // the IPv6 /48 over its budget: coarser than the masked address, so it tells no more about the client
        ...(decision.scope === 'ip_prefix' ? { prefix: ipv6Site(client.ip) } : {}),
      },
    },
    { perUser: decision.scope === 'user' },
  );
  throw new ApiError(
    429,
    'rate_limited',
    `too many attempts; try again in ${decision.retryAfterSeconds} s`,
    { retry_after_seconds: decision.retryAfterSeconds },
    { 'Retry-After': String(decision.retryAfterSeconds) },
  );
}
