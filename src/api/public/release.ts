/**
 * What a verified challenge answers, and to whom: the one-time authorization code goes to the
 * binding's holder only (src/auth/bindings.ts mayRelease); everyone else learns that the
 * challenge is verified and nothing more.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CODE_TTL_SECONDS, loadBoundChallenge, mayRelease, releaseCode } from '../../auth/bindings';
import { proofOf } from './appBinding';

export interface VerifiedAnswer {
  status: 'verified';
  code?: string;
  state?: string;
  expires_in?: number;
}

export async function verifiedAnswer(
  fastify: FastifyInstance,
  request: FastifyRequest,
  challengeId: string,
  codeVerifier?: string,
): Promise<VerifiedAnswer> {
  const bound = await loadBoundChallenge(fastify.warden.db, challengeId);
  if (!bound || !mayRelease(bound, proofOf(request, codeVerifier))) return { status: 'verified' };
  const released = await releaseCode(fastify.warden.db, challengeId);
  if (!released) return { status: 'verified' };
  return {
    status: 'verified',
    code: released.code,
    ...(released.state !== null ? { state: released.state } : {}),
    expires_in: CODE_TTL_SECONDS,
  };
}
