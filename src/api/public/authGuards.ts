import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuditEventType, insertAudit, logAudit, recordAudit } from '../../auth/audit';
import { findBlock } from '../../auth/blocklist';
import { maskIp, normalizeIp } from '../../auth/clientIp';
import { checkRateLimit, type RateLimitAction } from '../../auth/rateLimit';
import { authServices } from '../../auth/services';
import type { AuthMethod } from '../../shared/auth';
import { ApiError } from '../errors';

/**
 * What every public auth route does before touching a challenge: find the client address,
 * refuse blocklisted clients (403, before anything else), and hold the client to the rate
 * limits (429 with Retry-After). Each refusal is an audit event and a metric.
 */
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
  if (isIP(ip) === 0) throw new ApiError(400, 'invalid_request', 'the client address (X-Forwarded-For) is not an IP address');
  return { ip, ipMasked: maskIp(ip) };
}

export type GuardAction = 'initiate' | 'verify' | 'resend' | 'confirm_page';

export function auditLogger(app: FastifyInstance) {
  return app.warden.logger.child({ component: 'audit' });
}

/** A blocked client learns nothing else: no lookups, no rate-limit rows, no workflow. */
export async function rejectIfBlocked(
  app: FastifyInstance,
  client: ClientContext,
  action: GuardAction,
  context: { method?: AuthMethod; challengeId?: string; userId?: string },
): Promise<void> {
  const block = await findBlock(app.warden.db, client.ip);
  if (!block) return;
  app.warden.metrics.blockedRequests.inc({ action });
  // a verify refusal is recorded as its validation attempt (outcome blocked) by the caller
  if (action !== 'verify') {
    await recordAudit(app.warden.db, auditLogger(app), {
      type: AuditEventType.requestBlocked,
      outcome: 'blocked',
      method: context.method,
      userId: context.userId,
      challengeId: context.challengeId,
      ipMasked: client.ipMasked,
      details: { action, blocklist_id: block.id },
    });
  }
  throw new ApiError(403, 'blocked', 'requests from this address are blocked');
}

/** Counts the attempt against the user (when known) and the IP; throws 429 when over. */
export async function enforceRateLimit(
  app: FastifyInstance,
  client: ClientContext,
  input: { action: RateLimitAction; userId?: string; method: AuthMethod; challengeId?: string },
): Promise<void> {
  const { db, metrics } = app.warden;
  const limits = await authServices(app.warden).settings.rateLimits();
  const decision = await checkRateLimit(db, limits, { userId: input.userId, ip: client.ip, action: input.action });
  if (decision.allowed) return;
  metrics.rateLimitExceeded.inc({ scope: decision.scope, action: input.action });
  const row = await insertAudit(db, {
    type: AuditEventType.rateLimitExceeded,
    outcome: decision.scope,
    method: input.method,
    userId: input.userId,
    challengeId: input.challengeId,
    ipMasked: client.ipMasked,
    details: { scope: decision.scope, action: input.action, limit: decision.limit, window_seconds: decision.windowSeconds },
  });
  logAudit(auditLogger(app), row);
  throw new ApiError(
    429,
    'rate_limited',
    `too many attempts; try again in ${decision.retryAfterSeconds} s`,
    { retry_after_seconds: decision.retryAfterSeconds },
    { 'Retry-After': String(decision.retryAfterSeconds) },
  );
}
