/**
 * `POST /oauth/token`: an app's backend exchanges a one-time authorization code, with its API
 * key and (when it sent a code challenge) the PKCE verifier, for a signed token (docs/apps.md,
 * docs/tokens.md). The body is a form (as OAuth clients send it) or JSON. Codes live 60 s,
 * are bound to their app and verifier, and are exchanged once; every refusal is audited.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { App } from '../../auth/apps';
import { logAudit, recordAudit, AuditEventType, type AuditRow } from '../../auth/audit';
import { amrOf, AUTH_CODE_PATTERN, CODE_VERIFIER_PATTERN, exchangeCode, type Exchanged } from '../../auth/bindings';
import { TokenKeyUnavailableError } from '../../auth/tokenKeys';
import { ApiError, ErrorBody } from '../errors';
import { appFromRequest } from '../plugins/appAuth';
import { auditLogger } from './authGuards';

export const TokenAnswer = Type.Object(
  {
    token_type: Type.Literal('Bearer'),
    id_token: Type.String({ description: 'a JWT signed with a key of /.well-known/jwks.json' }),
    expires_in: Type.Integer(),
  },
  { additionalProperties: false },
);

const TokenBody = Type.Object({
  grant_type: Type.String({ maxLength: 64 }),
  code: Type.String({ maxLength: 128 }),
  code_verifier: Type.Optional(Type.String({ maxLength: 128 })),
  redirect_uri: Type.Optional(Type.String({ maxLength: 2048 })),
  client_id: Type.Optional(Type.String({ maxLength: 64 })),
  client_secret: Type.Optional(Type.String({ maxLength: 256 })),
});

const REFUSALS: Record<string, string> = {
  unknown_code: 'the code is not valid',
  expired: 'the code has expired',
  superseded: 'a newer code was released for this sign-in',
  already_exchanged: 'this sign-in was already exchanged',
  wrong_client: 'the code is not valid',
  verifier_required: 'this code needs its code_verifier',
  wrong_verifier: 'the code_verifier does not match',
  redirect_uri_mismatch: 'redirect_uri does not match the sign-in',
};

function log(fastify: FastifyInstance, audit: AuditRow | undefined) {
  logAudit(auditLogger(fastify), audit);
}

/** Signs the app's token for a sign-in it may have, and audits it (never the token). */
export async function issueToken(fastify: FastifyInstance, found: App, signIn: Exchanged) {
  const signed = await fastify.warden.tokenKeys
    .sign({
      sub: signIn.userId,
      aud: found.clientId,
      amr: amrOf(signIn.method),
      authTime: signIn.authTime,
      ...(signIn.nonce !== null ? { nonce: signIn.nonce } : {}),
      ttlSeconds: found.tokenTtlSeconds,
    })
    .catch((err: unknown) => {
      // the keyring lacks the signing key's key-encryption key: an operator must fix the keyring
      if (err instanceof TokenKeyUnavailableError)
        throw new ApiError(
          503,
          'unavailable',
          'no signing key can be used right now; try again later',
          {},
          {
            'Retry-After': '30',
          },
        );
      throw err;
    });
  await recordAudit(fastify.warden.db, auditLogger(fastify), {
    type: AuditEventType.tokenIssued,
    outcome: 'issued',
    challengeId: signIn.challengeId,
    userId: signIn.userId,
    method: signIn.method,
    details: { client_id: found.clientId, jti: signed.jti, kid: signed.kid, expires_at: signed.expiresAt },
  });
  return { token_type: 'Bearer' as const, id_token: signed.token, expires_in: found.tokenTtlSeconds };
}

const oauthToken: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/oauth/token',
    {
      schema: {
        tags: ['apps'],
        summary: 'Exchange an authorization code for a signed token',
        security: [{ appKey: [] }],
        body: TokenBody,
        response: { 200: TokenAnswer, 400: ErrorBody, 401: ErrorBody, 415: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      const body = request.body;
      const found = await appFromRequest(app, request, body);
      if (body.grant_type !== 'authorization_code')
        throw new ApiError(400, 'unsupported_grant_type', 'grant_type must be authorization_code');
      if (!AUTH_CODE_PATTERN.test(body.code)) throw new ApiError(400, 'invalid_grant', REFUSALS.unknown_code!);
      if (body.code_verifier !== undefined && !CODE_VERIFIER_PATTERN.test(body.code_verifier))
        throw new ApiError(400, 'invalid_request', 'code_verifier must be 43-128 characters of [A-Za-z0-9._~-]', {
          field: 'code_verifier',
        });
      const result = await exchangeCode(app.warden.db, {
        code: body.code,
        clientId: found.clientId,
        codeVerifier: body.code_verifier,
        redirectUri: body.redirect_uri,
      });
      log(app, result.audit);
      if (!result.ok) {
        app.warden.metrics.codeExchanges.inc({ outcome: result.reason });
        throw new ApiError(400, 'invalid_grant', REFUSALS[result.reason]!, { reason: result.reason });
      }
      app.warden.metrics.codeExchanges.inc({ outcome: 'exchanged' });
      return issueToken(app, found, result.exchanged);
    },
  );
};

export default oauthToken;
