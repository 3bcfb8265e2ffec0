/**
 * The browser side of trusted devices (src/auth/trustedDevices.ts): reading the `warden_trust`
 * cookie a request shows, and setting it once a sign-in succeeded in this browser. Routes
 * without the cookie plugin (the apps' backends) show none: they share the strangers' budgets.
 */
import '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  newTrustSecret,
  TRUST_COOKIE,
  TRUST_MAX_AGE_SECONDS,
  trustDevice,
  trustDigest,
} from '../../auth/trustedDevices';
import { isLoopbackHost } from '../plugins/loopbackHost';

/** The SHA-256 of the request's trust cookie, when it carries a well-formed one. */
export function trustOf(request: FastifyRequest): Buffer | undefined {
  return trustDigest(request.cookies?.[TRUST_COOKIE]);
}

/**
 * After a successful sign-in: this browser is trusted by the account from now on (its value is
 * kept when it has one, so one browser has one cookie for all its accounts), and the cookie's
 * lifetime starts again. Secure except on loopback, SameSite=Lax and HttpOnly like the device
 * cookie, on the same path: it goes with the browser's own auth requests only.
 */
export async function trustThisDevice(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  userId: string,
): Promise<void> {
  const current = request.cookies?.[TRUST_COOKIE];
  const secret = trustDigest(current) ? current! : newTrustSecret();
  await trustDevice(app.warden.db, userId, trustDigest(secret)!);
  reply.setCookie(TRUST_COOKIE, secret, {
    httpOnly: true,
    secure: !isLoopbackHost(request.headers.host),
    sameSite: 'lax',
    path: '/browser/api/v1/identity/auth',
    maxAge: TRUST_MAX_AGE_SECONDS,
  });
}
