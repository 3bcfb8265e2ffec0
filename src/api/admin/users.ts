/**
 * Per-user containment and recovery steps: revoke active challenges (through their
 * workflows), force a password reset, clear rate-limit state. The runbooks call the same
 * functions through activities.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { adminDeps, clearRateLimits, forcePasswordReset, revokeUserChallenges, type AdminDeps } from '../../auth/admin';
import { ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const UserIds = Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 1000 });
const IncidentId = Type.Optional(Type.String({ minLength: 1, maxLength: 64 }));

const RevokeBody = Type.Object({
  user_ids: UserIds,
  reason: Type.Optional(Type.Union([Type.Literal('manual_revoke'), Type.Literal('security_incident')])),
  incident_id: IncidentId,
});
const UsersBody = Type.Object({ user_ids: UserIds, incident_id: IncidentId });

const users: FastifyPluginAsyncTypebox = async (app) => {
  const deps = (): AdminDeps => adminDeps(app.warden);

  app.post(
    '/users/revoke-challenges',
    {
      schema: {
        body: RevokeBody,
        response: {
          200: Type.Object({
            revoked: Type.Integer(),
            workflows_ended: Type.Integer(),
            revoked_before: Type.Optional(Type.String({ format: 'date-time' })),
          }),
          400: ErrorBody,
        },
      },
    },
    async (request) => {
      const { revokedBefore, revoked, workflowsEnded } = await revokeUserChallenges(deps(), {
        userIds: request.body.user_ids,
        reason: request.body.reason ?? 'manual_revoke',
        incidentId: request.body.incident_id,
        actor: operatorOf(request).name,
      });
      return { revoked, workflows_ended: workflowsEnded, ...(revokedBefore ? { revoked_before: revokedBefore } : {}) };
    },
  );

  app.post(
    '/users/force-password-reset',
    {
      schema: {
        body: UsersBody,
        response: { 200: Type.Object({ updated: Type.Array(Type.String()) }), 400: ErrorBody },
      },
    },
    async (request) =>
      forcePasswordReset(deps(), {
        userIds: request.body.user_ids,
        incidentId: request.body.incident_id,
        actor: operatorOf(request).name,
      }),
  );

  app.post(
    '/users/clear-rate-limits',
    { schema: { body: UsersBody, response: { 200: Type.Object({ deleted: Type.Integer() }), 400: ErrorBody } } },
    async (request) =>
      clearRateLimits(deps(), {
        userIds: request.body.user_ids,
        incidentId: request.body.incident_id,
        actor: operatorOf(request).name,
      }),
  );
};

export default users;
