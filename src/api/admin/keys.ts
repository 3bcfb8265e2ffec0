/**
 * Data-key rotation (the emergency key rotation). The same `rotateKeys` function backs
 * the compromised-token runbook's activity. Key material never leaves the process: these
 * routes show ids, statuses and dates only.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { adminDeps, listKeys, rotateKeys } from '../../auth/admin';
import { ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const RotateBody = Type.Object({
  reason: Type.String({ minLength: 1, maxLength: 500 }),
  revoke_outstanding: Type.Optional(Type.Boolean()),
  incident_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
});

const Rotated = Type.Object({
  key_id: Type.String(),
  previous_key_id: Type.Union([Type.String(), Type.Null()]),
  rotation_id: Type.Integer(),
  rotated_at: Type.String(),
  revoked_challenges: Type.Integer(),
});

const KeyView = Type.Object({
  id: Type.String(),
  kek_id: Type.String(),
  status: Type.String(),
  created_at: Type.String(),
  retired_at: Type.Union([Type.String(), Type.Null()]),
});

const RotationView = Type.Object({
  id: Type.Integer(),
  from_key_id: Type.Union([Type.String(), Type.Null()]),
  to_key_id: Type.String(),
  reason: Type.String(),
  incident_id: Type.Union([Type.String(), Type.Null()]),
  revoked_challenges: Type.Integer(),
  rotated_by: Type.String(),
  rotated_at: Type.String(),
});

const iso = (d: Date | null) => d?.toISOString() ?? null;

const keys: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/keys',
    { schema: { response: { 200: Type.Object({ keys: Type.Array(KeyView), rotations: Type.Array(RotationView) }) } } },
    async () => {
      // make sure a fresh deployment shows its first key rather than an empty list
      await app.warden.keys.active();
      const { keys: keyRows, rotations: rotationRows } = await listKeys(app.warden.db);
      return {
        keys: keyRows.map((k) => ({
          ...k,
          created_at: k.created_at.toISOString(),
          retired_at: iso(k.retired_at),
        })),
        rotations: rotationRows.map((r) => ({ ...r, rotated_at: r.rotated_at.toISOString() })),
      };
    },
  );

  app.post(
    '/keys/rotate',
    { schema: { body: RotateBody, response: { 200: Rotated, 400: ErrorBody } } },
    async (request) => {
      const { warden } = app;
      const result = await rotateKeys(adminDeps(warden), {
        reason: request.body.reason,
        revokeOutstanding: request.body.revoke_outstanding ?? false,
        incidentId: request.body.incident_id,
        actor: operatorOf(request).name,
      });
      return {
        key_id: result.keyId,
        previous_key_id: result.previousKeyId,
        rotation_id: result.rotationId,
        rotated_at: result.rotatedAt,
        revoked_challenges: result.revokedChallenges,
      };
    },
  );
};

export default keys;
