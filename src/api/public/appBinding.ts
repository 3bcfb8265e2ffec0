/**
 * The app side of the public auth routes: which app an initiate belongs to, the binding it
 * gets (src/auth/bindings.ts), the device cookie, and the origin rules that keep other sites
 * out: JSON routes take JSON only (no cross-site form posts), a browser request from another
 * origin must come from one of the app's registered web origins, and CORS answers only those.
 */
import '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkAppRateLimit, findApp, type App } from '../../auth/apps';
import {
  DEVICE_COOKIE,
  DEVICE_COOKIE_MAX_AGE_SECONDS,
  deviceDigest,
  newDeviceSecret,
  type BindingProof,
} from '../../auth/bindings';
import type { AuthMethod, ChallengeBinding } from '../../shared/auth';
import { ApiError } from '../errors';
import { isLoopbackHost } from '../plugins/loopbackHost';

/** The app-facing fields of an initiate body. */
export interface AppFields {
  client_id?: string;
  redirect_uri?: string;
  state?: string;
  nonce?: string;
  code_challenge?: string;
  code_challenge_method?: string;
}

/** The named app, or the deployment's default; refused with a stable code otherwise. */
export async function resolveApp(
  fastify: FastifyInstance,
  clientId: string | undefined,
  method: AuthMethod,
): Promise<App> {
  const id = clientId ?? fastify.warden.config.apps.defaultClientId;
  if (!id) throw new ApiError(400, 'client_id_required', '`client_id` must name the app this sign-in is for');
  const found = await findApp(fastify.warden.db, id);
  if (!found) throw new ApiError(400, 'unknown_client', `no app is registered as ${JSON.stringify(id)}`);
  if (found.disabled) throw new ApiError(403, 'client_disabled', 'this app is disabled');
  if (!found.methods.includes(method))
    throw new ApiError(403, 'method_not_allowed', `this app does not sign users in by ${method}`);
  return found;
}

/** The registered redirect URI this sign-in lands on: the one named (exact match) or the app's only one. */
export function redirectUriFor(found: App, requested: string | undefined, method: AuthMethod): string | undefined {
  if (requested !== undefined) {
    if (!found.redirectUris.includes(requested))
      throw new ApiError(400, 'invalid_redirect_uri', '`redirect_uri` is not registered for this app', {
        field: 'redirect_uri',
      });
    return requested;
  }
  if (found.redirectUris.length === 1) return found.redirectUris[0];
  if (method === 'magic_link' && found.redirectUris.length > 1)
    throw new ApiError(400, 'redirect_uri_required', 'this app has several redirect URIs: name one', {
      field: 'redirect_uri',
    });
  return undefined;
}

/** The origin this server answers as, from the request (scheme and Host). */
function ownOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.headers.host ?? ''}`;
}

/**
 * A browser call from another origin is accepted only from the app's registered web origins.
 * Requests without an Origin header (servers, curl, same-origin navigations) pass.
 */
export function assertOriginAllowed(request: FastifyRequest, found: App): void {
  const origin = request.headers.origin;
  if (origin === undefined || origin === ownOrigin(request)) return;
  if (!found.webOrigins.includes(origin))
    throw new ApiError(403, 'origin_not_allowed', 'this origin is not registered for the app');
}

/**
 * The browser's device secret, minted and set as an HttpOnly cookie when it has none. Secure
 * except on loopback, SameSite=Lax: it goes with the confirm page's own POST and the first
 * device's polling, never with another site's request.
 */
export function deviceSecretFor(request: FastifyRequest, reply: FastifyReply): string {
  const current = request.cookies[DEVICE_COOKIE];
  if (deviceDigest(current)) return current!;
  const secret = newDeviceSecret();
  reply.setCookie(DEVICE_COOKIE, secret, {
    httpOnly: true,
    secure: !isLoopbackHost(request.headers.host),
    sameSite: 'lax',
    path: '/browser/api/v1/identity/auth',
    maxAge: DEVICE_COOKIE_MAX_AGE_SECONDS,
  });
  return secret;
}

/** What this request shows of a binding. */
export function proofOf(request: FastifyRequest, codeVerifier?: string): BindingProof {
  return { deviceSecret: request.cookies[DEVICE_COOKIE], codeVerifier };
}

/** The per-app limit: 429 with Retry-After, before anything is sent or checked. */
export async function enforceAppLimit(
  fastify: FastifyInstance,
  found: App,
  action: 'initiate' | 'verify',
): Promise<void> {
  const decision = await checkAppRateLimit(fastify.warden.db, found, action);
  if (decision.allowed) return;
  fastify.warden.metrics.rateLimitExceeded.inc({ scope: 'app', action });
  throw new ApiError(
    429,
    'rate_limited',
    `this app's sign-ins are over their limit; try again in ${decision.retryAfterSeconds} s`,
    { retry_after_seconds: decision.retryAfterSeconds },
    { 'Retry-After': String(decision.retryAfterSeconds) },
  );
}

/** A browser initiate's binding: the app's, with the device cookie and the app's PKCE challenge. */
export async function browserBinding(
  fastify: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  method: AuthMethod,
  fields: AppFields,
): Promise<{ app: App; binding: ChallengeBinding }> {
  if ((fields.code_challenge === undefined) !== (fields.code_challenge_method === undefined))
    throw new ApiError(400, 'invalid_request', '`code_challenge` and `code_challenge_method` (S256) go together', {
      field: fields.code_challenge === undefined ? 'code_challenge' : 'code_challenge_method',
    });
  const found = await resolveApp(fastify, fields.client_id, method);
  assertOriginAllowed(request, found);
  const redirectUri = redirectUriFor(found, fields.redirect_uri, method);
  await enforceAppLimit(fastify, found, 'initiate');
  const device = deviceDigest(deviceSecretFor(request, reply))!;
  return {
    app: found,
    binding: {
      clientId: found.clientId,
      origin: 'browser',
      codeChallenge: fields.code_challenge,
      deviceSha256: device,
      redirectUri,
      state: fields.state,
      nonce: fields.nonce,
    },
  };
}

/**
 * JSON routes take JSON only: an HTML form on another site can post urlencoded or multipart
 * bodies without asking (no CORS preflight), JSON it cannot.
 */
export async function jsonOnly(request: FastifyRequest): Promise<void> {
  const type = request.headers['content-type'];
  // no body at all is left to the schema (400); any other type is refused
  if (type !== undefined && !/^application\/json\b/i.test(type))
    throw new ApiError(415, 'unsupported_media_type', 'send the body as application/json');
}

/**
 * The confirm POST comes from Warden's own confirm page: refuse it from another site
 * (Sec-Fetch-Site cross-site, or an Origin that is not Warden's).
 */
export async function sameSiteForm(request: FastifyRequest): Promise<void> {
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site') throw new ApiError(403, 'cross_site_request', 'this form must be sent from its own page');
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== 'null' && origin !== ownOrigin(request))
    throw new ApiError(403, 'cross_site_request', 'this form must be sent from its own page');
}

const ORIGINS_FRESH_MS = 5000;
let origins: { at: number; set: Set<string> } | undefined;

/** Whether an enabled app registered this web origin (CORS); the list is re-read every few seconds. */
export async function registeredOrigin(fastify: FastifyInstance, origin: string): Promise<boolean> {
  if (!origins || Date.now() - origins.at > ORIGINS_FRESH_MS) {
    const { rows } = await fastify.warden.db.query<{ origin: string }>(
      'SELECT DISTINCT unnest(web_origins) AS origin FROM apps WHERE disabled_at IS NULL',
    );
    origins = { at: Date.now(), set: new Set(rows.map((r) => r.origin)) };
  }
  return origins.set.has(origin);
}

/**
 * A verify counts against its app's verify limit, when the app has one. The client id comes
 * with the challenge's row, read with the per-user and per-IP limits (src/auth/rateLimit.ts).
 */
export async function enforceChallengeAppLimit(
  fastify: FastifyInstance,
  clientId: string | null | undefined,
): Promise<void> {
  const found = clientId ? await findApp(fastify.warden.db, clientId) : undefined;
  if (found?.verifyLimit) await enforceAppLimit(fastify, found, 'verify');
}
