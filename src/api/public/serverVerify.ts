/**
 * Server-to-server verification, for apps that keep the browser away from Warden: with its API
 * key an app's backend starts a verification for one of its users, checks the code the user
 * typed into the app, reads the status, and asks for another message. The same challenge
 * workflows, limits, failover and audit as the browser routes; a correct code answers the
 * signed token at once (the app authenticated itself, so there is nothing to exchange).
 *
 * The end user's address (`client_ip`, as the app saw it) is what the per-IP limits and the
 * blocklist judge; without it they judge the app's backend, which every user shares.
 * A magic link needs the app's PKCE `code_challenge`: the link lands in a browser, on the
 * app's redirect URI with a code that only the verifier's holder can exchange.
 */
import { isIP } from 'node:net';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { App } from '../../auth/apps';
import { AuditEventType } from '../../auth/audit';
import { loadBoundChallenge, markExchanged } from '../../auth/bindings';
import { findBlock } from '../../auth/blocklist';
import { maskIp, normalizeIp } from '../../auth/clientIp';
import { OTP_PATTERN } from '../../auth/crypto';
import { publicStatus } from '../../delivery/publicState';
import type { AuthMethod } from '../../shared/auth';
import { PUBLIC_CHALLENGE_STATUSES, type PublicChallengeStatus } from '../../shared/delivery';
import { ApiError, ErrorBody } from '../errors';
import { appFromRequest } from '../plugins/appAuth';
import { enforceAppLimit, redirectUriFor } from './appBinding';
import { initiateChallenge, resendChallenge, verifyChallenge } from './authFlow';
import type { ClientContext } from './authGuards';
import { ChallengeId, errorResponses, Resent, ServerStartBody } from './authSchemas';
import { issueToken, TokenAnswer } from './oauthToken';

const BASE = '/server/api/v1/verifications';
const Method = Type.Union([Type.Literal('sms_otp'), Type.Literal('magic_link')]);
const ClientIp = Type.Optional(Type.String({ minLength: 2, maxLength: 64, description: "the end user's address" }));

const Started = Type.Object(
  { verification_id: Type.String(), expires_at: Type.String() },
  { additionalProperties: false },
);
const CheckBody = Type.Object(
  { code: Type.String({ pattern: OTP_PATTERN.source }), client_ip: ClientIp },
  { additionalProperties: false },
);
const Checked = Type.Object(
  { status: Type.Literal('verified'), ...TokenAnswer.properties },
  { additionalProperties: false },
);
const Status = Type.Object(
  {
    verification_id: Type.String(),
    method: Method,
    status: Type.Unsafe<PublicChallengeStatus>({ type: 'string', enum: [...PUBLIC_CHALLENGE_STATUSES] }),
    expires_at: Type.String(),
  },
  { additionalProperties: false },
);
const Params = Type.Object({ id: ChallengeId });
const ResendBody = Type.Object({ client_ip: ClientIp }, { additionalProperties: false });

/** The end user's address when the app names one, else the calling backend's; blocklisted: 403. */
async function endUser(fastify: FastifyInstance, request: FastifyRequest, named?: string): Promise<ClientContext> {
  const ip = normalizeIp(named ?? request.ip ?? '');
  if (isIP(ip) === 0)
    throw new ApiError(400, 'invalid_request', '`client_ip` must be an IP address', { field: 'client_ip' });
  const client = { ip, ipMasked: maskIp(ip) };
  const block = await findBlock(fastify.warden.db, ip);
  if (block) {
    fastify.warden.metrics.blockedRequests.inc({ action: 'server_verification' });
    await fastify.refusals.record({
      type: AuditEventType.requestBlocked,
      outcome: 'blocked',
      ipMasked: client.ipMasked,
      details: { action: 'server_verification', blocklist_id: block.id },
    });
    throw new ApiError(403, 'blocked', 'requests from this address are blocked');
  }
  return client;
}

/** The verification, if it belongs to this app; 404 otherwise (another app's ids are unknown). */
async function ownVerification(fastify: FastifyInstance, found: App, id: string) {
  const row = await loadBoundChallenge(fastify.warden.db, id.toLowerCase());
  if (!row || row.client_id !== found.clientId) throw new ApiError(404, 'not_found', 'no such verification');
  return row;
}

const serverVerify: FastifyPluginAsyncTypebox = async (app) => {
  const authenticated = (request: FastifyRequest) => appFromRequest(app, request);

  app.post(
    BASE,
    {
      config: { admission: { action: 'initiate' } },
      schema: {
        tags: ['apps'],
        summary: "Start a verification for one of the app's users",
        security: [{ appKey: [] }],
        body: ServerStartBody,
        response: { 202: Started, ...errorResponses },
      },
    },
    async (request, reply) => {
      const found = await authenticated(request);
      const body = request.body;
      const method: AuthMethod = body.method;
      if (!found.methods.includes(method))
        throw new ApiError(403, 'method_not_allowed', `this app does not sign users in by ${method}`);
      if ((body.code_challenge === undefined) !== (body.code_challenge_method === undefined))
        throw new ApiError(400, 'invalid_request', '`code_challenge` and `code_challenge_method` (S256) go together', {
          field: 'code_challenge',
        });
      if (method === 'magic_link' && body.code_challenge === undefined)
        throw new ApiError(400, 'code_challenge_required', 'a magic link needs the PKCE code_challenge of the app', {
          field: 'code_challenge',
        });
      const redirectUri = redirectUriFor(found, body.redirect_uri, method);
      const client = await endUser(app, request, body.client_ip);
      await enforceAppLimit(app, found, 'initiate');
      const started = await initiateChallenge(
        app,
        request,
        method,
        body.user_id,
        {
          clientId: found.clientId,
          origin: 'server',
          codeChallenge: body.code_challenge,
          redirectUri,
          state: body.state,
          nonce: body.nonce,
        },
        client,
      );
      return reply.status(202).send({ verification_id: started.challenge_id, expires_at: started.expires_at });
    },
  );

  app.post(
    `${BASE}/:id/check`,
    {
      config: { admission: { action: 'verify', method: 'sms_otp' } },
      schema: {
        tags: ['apps'],
        summary: 'Check the code the user typed; answers the signed token when it is right',
        security: [{ appKey: [] }],
        params: Params,
        body: CheckBody,
        response: { 200: Checked, ...errorResponses },
      },
    },
    async (request, reply) => {
      const found = await authenticated(request);
      const row = await ownVerification(app, found, request.params.id);
      if (row.method !== 'sms_otp')
        throw new ApiError(409, 'wrong_method', 'a magic link is confirmed in the browser, not checked here');
      const client = await endUser(app, request, request.body.client_ip);
      reply.header('Cache-Control', 'no-store');
      const verified = await verifyChallenge(app, request, 'sms_otp', row.challenge_id, request.body.code, client);
      const ended = await loadBoundChallenge(app.warden.db, row.challenge_id);
      // the verification's one exchange: this answer
      if (!(await markExchanged(app.warden.db, row.challenge_id)))
        throw new ApiError(409, 'already_used', 'this verification was already used');
      const token = await issueToken(app, found, {
        challengeId: row.challenge_id,
        userId: verified.userId,
        method: 'sms_otp',
        authTime: ended?.ended_at ?? new Date(),
        nonce: row.nonce,
      });
      return { status: 'verified' as const, ...token };
    },
  );

  app.get(
    `${BASE}/:id`,
    {
      schema: {
        tags: ['apps'],
        summary: 'The status of a verification',
        security: [{ appKey: [] }],
        params: Params,
        response: { 200: Status, 401: ErrorBody, 404: ErrorBody },
      },
    },
    async (request, reply) => {
      const found = await authenticated(request);
      const row = await ownVerification(app, found, request.params.id);
      reply.header('Cache-Control', 'no-store');
      return {
        verification_id: row.challenge_id,
        method: row.method,
        status: publicStatus(row, row.now),
        expires_at: row.expires_at.toISOString(),
      };
    },
  );

  app.post(
    `${BASE}/:id/resend`,
    {
      schema: {
        tags: ['apps'],
        summary: 'Send the same code or link again',
        security: [{ appKey: [] }],
        params: Params,
        body: ResendBody,
        response: { 202: Resent, ...errorResponses },
      },
    },
    async (request, reply) => {
      const found = await authenticated(request);
      const row = await ownVerification(app, found, request.params.id);
      const client = await endUser(app, request, request.body.client_ip);
      const body = await resendChallenge(app, request, row.method, row.challenge_id, client);
      return reply.status(202).send(body);
    },
  );
};

export default serverVerify;
