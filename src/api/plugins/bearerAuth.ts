import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time comparison of a presented token with the expected one (hashing evens out lengths). */
export function tokensMatch(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** An onRequest hook that requires `Authorization: Bearer <token>`. */
export function requireBearer(expected: () => string | undefined, realm = 'warden-admin') {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const token = expected();
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!token || !match?.[1] || !tokensMatch(match[1], token)) {
      reply.header('WWW-Authenticate', `Bearer realm="${realm}"`);
      throw new ApiError(401, 'unauthorized', 'a valid bearer token is required');
    }
  };
}
