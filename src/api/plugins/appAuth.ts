/**
 * How a server-side app proves who it is (the token exchange and anything else an app calls
 * with its key): one of
 * - `Authorization: Basic base64(client_id:key)` (client_secret_basic; both parts
 *   form-urlencoded first, as OAuth 2.0 asks),
 * - `Authorization: Bearer <key>` (the key names its app),
 * - `client_id` and `client_secret` in the body (client_secret_post).
 * Exactly one of them: a request that carries two is refused, as is a `client_id` that names
 * another app than the key's. Every failure is the same 401 `invalid_client`, whatever was
 * wrong, with a `WWW-Authenticate` challenge in the scheme the request tried; the key is never
 * in an answer, a log line or an error.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticateAppKey, type App } from '../../auth/apps';
import { ApiError } from '../errors';

const REALM = 'warden-apps';
const BASIC = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i;
const BEARER = /^Bearer\s+(\S+)\s*$/i;

function refuse(scheme: 'Basic' | 'Bearer', message: string): never {
  throw new ApiError(401, 'invalid_client', message, {}, { 'WWW-Authenticate': `${scheme} realm="${REALM}"` });
}

/** application/x-www-form-urlencoded decoding of one Basic credential part; undefined when malformed. */
function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

interface Presented {
  scheme: 'Basic' | 'Bearer';
  key: string;
  /** the client_id that came with the key, when one did */
  clientId?: string;
}

function presented(request: FastifyRequest, body: Record<string, unknown> | undefined): Presented {
  const header = request.headers.authorization;
  const bodySecret = body?.client_secret;
  const bodyId = body?.client_id;
  if (bodySecret !== undefined && typeof bodySecret !== 'string') refuse('Basic', 'client_secret must be a string');
  if (bodyId !== undefined && typeof bodyId !== 'string') refuse('Basic', 'client_id must be a string');

  if (header !== undefined) {
    if (bodySecret !== undefined) refuse('Basic', 'use one client authentication method, not several');
    const basic = BASIC.exec(header);
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const clientId = colon > 0 ? formDecode(decoded.slice(0, colon)) : undefined;
      const key = colon > 0 ? formDecode(decoded.slice(colon + 1)) : undefined;
      if (!clientId || !key) refuse('Basic', 'Basic credentials must be client_id:key');
      if (bodyId !== undefined && bodyId !== clientId)
        refuse('Basic', 'client_id in the body differs from the authenticated one');
      return { scheme: 'Basic', key, clientId };
    }
    const bearer = BEARER.exec(header);
    if (bearer) return { scheme: 'Bearer', key: bearer[1]!, clientId: bodyId as string | undefined };
    refuse('Basic', 'client authentication must be Basic, Bearer or client_secret in the body');
  }
  if (bodySecret === undefined) refuse('Basic', 'client authentication is required');
  if (!bodyId) refuse('Basic', 'client_secret needs the client_id it belongs to');
  return { scheme: 'Basic', key: bodySecret, clientId: bodyId as string };
}

/**
 * The app the request authenticates as (enabled, with a live key), or a 401 `invalid_client`.
 * `body` is the request's parsed body when the route takes client_secret_post.
 */
export async function appFromRequest(
  app: FastifyInstance,
  request: FastifyRequest,
  body?: Record<string, unknown>,
): Promise<App> {
  const { scheme, key, clientId } = presented(request, body);
  const found = await authenticateAppKey(app.warden.db, key);
  // one answer for an unknown key, a revoked or expired one, a disabled app and a mismatch
  if (!found || (clientId !== undefined && found.clientId !== clientId)) refuse(scheme, 'client authentication failed');
  return found;
}
