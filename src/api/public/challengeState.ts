/**
 * The state of a challenge for the device that started it (polling for "sent", "failed, try
 * email", or the code once the link was opened on another device). Only the binding's holder
 * may read it: `GET` with the device cookie Warden set at initiate, or `POST` with the app's
 * PKCE `code_verifier`. Anyone else gets 404, as for an unknown id. Never a secret, a
 * provider, a recipient or a user id; a decoy reads like a real challenge
 * (src/delivery/publicState.ts). Once verified, the answer carries a fresh authorization code
 * (src/auth/bindings.ts). Not rate limited: the id is an unguessable UUID and the answer is
 * one indexed read; blocked clients are refused like on every auth route.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { AuditEventType } from '../../auth/audit';
import { findBlock } from '../../auth/blocklist';
import {
  CODE_TTL_SECONDS,
  CODE_VERIFIER_PATTERN,
  holdsBinding,
  loadBoundChallenge,
  releaseCode,
} from '../../auth/bindings';
import { publicStatus } from '../../delivery/publicState';
import { PUBLIC_CHALLENGE_STATUSES } from '../../shared/delivery';
import { ApiError, ErrorBody } from '../errors';
import { jsonOnly, proofOf } from './appBinding';
import { clientContext } from './authGuards';
import { UUID_PATTERN } from './authSchemas';

const UUID = new RegExp(UUID_PATTERN);

const PATH = '/browser/api/v1/identity/auth/challenges/:id';
const Params = Type.Object({ id: Type.String({ maxLength: 64 }) });
const PollBody = Type.Object(
  { code_verifier: Type.String({ pattern: CODE_VERIFIER_PATTERN.source }) },
  { additionalProperties: false },
);

const State = Type.Object(
  {
    challenge_id: Type.String(),
    method: Type.Union([Type.Literal('sms_otp'), Type.Literal('magic_link')]),
    status: Type.Union(PUBLIC_CHALLENGE_STATUSES.map((s) => Type.Literal(s))),
    expires_at: Type.String(),
    code: Type.Optional(Type.String()),
    state: Type.Optional(Type.String()),
    expires_in: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

const challengeState: FastifyPluginAsyncTypebox = async (app) => {
  const blocked = async (request: FastifyRequest): Promise<void> => {
    const client = clientContext(request);
    const block = await findBlock(app.warden.db, client.ip);
    if (!block) return;
    app.warden.metrics.blockedRequests.inc({ action: 'challenge_state' });
    await app.refusals.record({
      type: AuditEventType.requestBlocked,
      outcome: 'blocked',
      ipMasked: client.ipMasked,
      details: { action: 'challenge_state', blocklist_id: block.id },
    });
    throw new ApiError(403, 'blocked', 'requests from this address are blocked');
  };

  const answer = async (request: FastifyRequest, id: string, codeVerifier?: string) => {
    if (!UUID.test(id)) throw new ApiError(400, 'invalid_request', 'the challenge id must be a UUID');
    const challengeId = id.toLowerCase();
    const row = await loadBoundChallenge(app.warden.db, challengeId);
    if (!row || !holdsBinding(row, proofOf(request, codeVerifier)))
      throw new ApiError(404, 'not_found', 'no such challenge');
    const status = publicStatus(row, row.now);
    const released = status === 'verified' ? await releaseCode(app.warden.db, challengeId) : undefined;
    return {
      challenge_id: challengeId,
      method: row.method,
      status,
      expires_at: row.expires_at.toISOString(),
      ...(released
        ? {
            code: released.code,
            ...(released.state !== null ? { state: released.state } : {}),
            expires_in: CODE_TTL_SECONDS,
          }
        : {}),
    };
  };
  const responses = { 200: State, 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 415: ErrorBody };

  app.get<{ Params: { id: string } }>(
    PATH,
    { onRequest: blocked, schema: { params: Params, response: responses } },
    async (request, reply) => {
      reply.header('Cache-Control', 'no-store');
      return answer(request, request.params.id);
    },
  );

  app.post<{ Params: { id: string }; Body: { code_verifier: string } }>(
    PATH,
    {
      onRequest: blocked,
      preValidation: jsonOnly,
      schema: { params: Params, body: PollBody, response: responses },
    },
    async (request, reply) => {
      reply.header('Cache-Control', 'no-store');
      return answer(request, request.params.id, request.body.code_verifier);
    },
  );
};

export default challengeState;
