/**
 * `GET /browser/api/v1/identity/auth/challenges/:id`: the state of a challenge for the page that
 * started it (polling for "sent" or "failed, try email"). Never a secret, a provider, a
 * recipient or a user id; a decoy reads like a real challenge (src/delivery/publicState.ts).
 * Not rate limited: the id is an unguessable UUID and the answer is one indexed read; blocked
 * clients are refused like on every auth route.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { AuditEventType, recordAudit } from '../../auth/audit';
import { findBlock } from '../../auth/blocklist';
import { loadChallengeState } from '../../auth/client';
import { publicStatus } from '../../delivery/publicState';
import { PUBLIC_CHALLENGE_STATUSES } from '../../shared/delivery';
import { ApiError, ErrorBody } from '../errors';
import { auditLogger, clientContext } from './authGuards';
import { UUID_PATTERN } from './authSchemas';

const UUID = new RegExp(UUID_PATTERN);

const State = Type.Object(
  {
    challenge_id: Type.String(),
    method: Type.Union([Type.Literal('sms_otp'), Type.Literal('magic_link')]),
    status: Type.Union(PUBLIC_CHALLENGE_STATUSES.map((s) => Type.Literal(s))),
    expires_at: Type.String(),
  },
  { additionalProperties: false },
);

const challengeState: FastifyPluginAsyncTypebox = async (app) => {
  const blocked = async (request: FastifyRequest): Promise<void> => {
    const client = clientContext(request);
    const block = await findBlock(app.warden.db, client.ip);
    if (!block) return;
    app.warden.metrics.blockedRequests.inc({ action: 'challenge_state' });
    await recordAudit(app.warden.db, auditLogger(app), {
      type: AuditEventType.requestBlocked,
      outcome: 'blocked',
      ipMasked: client.ipMasked,
      details: { action: 'challenge_state', blocklist_id: block.id },
    });
    throw new ApiError(403, 'blocked', 'requests from this address are blocked');
  };

  app.get<{ Params: { id: string } }>(
    '/browser/api/v1/identity/auth/challenges/:id',
    { onRequest: blocked, schema: { response: { 200: State, 400: ErrorBody, 403: ErrorBody, 404: ErrorBody } } },
    async (request, reply) => {
      const id = request.params.id;
      if (!UUID.test(id)) throw new ApiError(400, 'invalid_request', 'the challenge id must be a UUID');
      const row = await loadChallengeState(app.warden.db, id.toLowerCase());
      if (!row) throw new ApiError(404, 'not_found', 'no such challenge');
      reply.header('Cache-Control', 'no-store');
      return {
        challenge_id: id.toLowerCase(),
        method: row.method,
        status: publicStatus(row, row.now),
        expires_at: row.expires_at.toISOString(),
      };
    },
  );
};

export default challengeState;
