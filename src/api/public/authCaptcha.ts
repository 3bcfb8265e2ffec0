/**
 * The CAPTCHA gate of the public auth routes (a preHandler: after the blocklist and body
 * validation, before the rate limiter). It costs one cached settings read while CAPTCHA mode
 * is off. While the abuse runbook has it on, a client whose IP bucket (an IPv4 address, an IPv6
 * /64: src/auth/ipBucket.ts) or user has `threshold` failed attempts in the window (rate-limit
 * refusals of the bucket or the user, wrong or locked verifications of the user) must send a
 * valid hCaptcha `captcha_token`: without one it gets 403 `captcha_required`, with a rejected
 * one 403 `captcha_invalid`, and 503 `captcha_unavailable` while hCaptcha cannot answer
 * (flagged clients fail closed; everyone else is never asked). The token is never logged or
 * stored.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { recordAudit } from '../../auth/audit';
import { loadChallenge } from '../../auth/client';
import {
  CAPTCHA_SETTINGS_KEY,
  CaptchaSettings,
  DEFAULT_CAPTCHA_SETTINGS,
  failedAttempts,
} from '../../runbooks/captcha';
import type { AuthMethod } from '../../shared/auth';
import { ApiError } from '../errors';
import { auditLogger, clientContext } from './authGuards';
import { UUID_PATTERN } from './authSchemas';

const UUID = new RegExp(UUID_PATTERN);
const CAPTCHA_EVENT = 'identity.auth.captcha';

async function userOf(
  app: FastifyInstance,
  body: Record<string, unknown>,
  query: Record<string, unknown>,
): Promise<string | undefined> {
  if (typeof body.user_id === 'string') return body.user_id;
  const challenge = [body.challenge_id, body.challenge, query.challenge].find(
    (v): v is string => typeof v === 'string' && UUID.test(v),
  );
  if (!challenge) return undefined;
  return (await loadChallenge(app.warden.db, challenge.toLowerCase()))?.user_id;
}

export function captchaGuard(app: FastifyInstance, method: AuthMethod) {
  return async (request: FastifyRequest): Promise<void> => {
    if (request.method !== 'POST') return;
    const settings = await app.warden.settings.get(CAPTCHA_SETTINGS_KEY, CaptchaSettings, DEFAULT_CAPTCHA_SETTINGS);
    if (!settings.enabled) return;
    const client = clientContext(request);
    const body =
      typeof request.body === 'object' && request.body !== null ? (request.body as Record<string, unknown>) : {};
    const userId = await userOf(app, body, (request.query ?? {}) as Record<string, unknown>);
    const failures = await failedAttempts(app.warden.db, client.ip, userId, settings.window_seconds);
    if (failures < settings.threshold) return;

    const captcha = { provider: 'hcaptcha', site_key: app.warden.config.providers.hcaptcha.siteKey };
    const event = (outcome: string) => ({
      type: CAPTCHA_EVENT,
      outcome,
      method,
      userId,
      ipMasked: client.ipMasked,
      details: { failed_attempts: failures, threshold: settings.threshold },
    });
    // a pass is one row each; a refusal is counted into its client's window (src/auth/refusals.ts)
    const audit = async (outcome: string): Promise<void> => {
      if (outcome === 'passed') await recordAudit(app.warden.db, auditLogger(app), event(outcome));
      else await app.refusals.record(event(outcome));
    };
    const token =
      typeof body.captcha_token === 'string' && body.captcha_token.length > 0 ? body.captcha_token : undefined;
    if (!token) {
      await audit('required');
      throw new ApiError(
        403,
        'captcha_required',
        `${failures} failed attempts: solve the CAPTCHA and send its token as captcha_token`,
        { captcha },
      );
    }
    let verdict;
    try {
      verdict = await app.warden.providers.hcaptcha.verify(token, client.ip);
    } catch {
      await audit('unavailable');
      throw new ApiError(
        503,
        'captcha_unavailable',
        'the CAPTCHA could not be checked; try again shortly',
        {},
        { 'Retry-After': '5' },
      );
    }
    await audit(verdict.success ? 'passed' : 'failed');
    if (!verdict.success)
      throw new ApiError(403, 'captcha_invalid', 'the CAPTCHA answer was not accepted; solve it again', { captcha });
  };
}
