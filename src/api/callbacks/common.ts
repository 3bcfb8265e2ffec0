import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors';

export const CALLBACK_BASE = '/callbacks/v1';

/** The URL the provider was given and signed: the configured public callback base plus path and query. */
export function signedUrl(app: FastifyInstance, request: FastifyRequest): string {
  return `${app.warden.config.delivery.callbackBaseUrl}${request.url}`;
}

/** A form body as flat strings (providers never repeat a status field). */
export function formParams(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof body !== 'object' || body === null) return out;
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') out[name] = first;
  }
  return out;
}

export function forged(app: FastifyInstance, provider: string): ApiError {
  app.warden.metrics.deliveryCallbacks.inc({ provider, outcome: 'invalid_signature' });
  return new ApiError(401, 'invalid_signature', `the request is not signed by ${provider}`);
}

/**
 * The token a provider signs its callbacks with: its auth token, or, in development with no
 * credentials, the sandbox's. Without credentials in production there is none: nobody's
 * signature is accepted.
 */
export function callbackToken(app: FastifyInstance, provider: 'twilio' | 'plivo'): string {
  const { config } = app.warden;
  const p = config.providers[provider];
  if (p.sandbox && config.env !== 'development')
    throw notConfigured(app, provider, `no ${provider} credentials are configured`);
  return p.authToken;
}

export function notConfigured(app: FastifyInstance, provider: string, what: string): ApiError {
  app.warden.metrics.deliveryCallbacks.inc({ provider, outcome: 'not_configured' });
  return new ApiError(503, 'not_configured', `${provider} callbacks are not configured (${what})`);
}
