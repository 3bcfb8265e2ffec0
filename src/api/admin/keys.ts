/**
 * Data-key rotation (the emergency key rotation), which turns the token signing key over too.
 * The same `rotateKeys` function backs the compromised-token runbook's activity. Key material
 * never leaves the process: these routes show ids, statuses and dates only.
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
  /** the token signing key now active, and the one retired (published until its tokens expire) */
  token_kid: Type.Union([Type.String(), Type.Null()]),
  previous_token_kid: Type.Union([Type.String(), Type.Null()]),
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

const TokenKeyView = Type.Object({
  kid: Type.String(),
  alg: Type.String(),
  kek_id: Type.String(),
  status: Type.String(),
  created_at: Type.String(),
  retired_at: Type.Union([Type.String(), Type.Null()]),
  /** until when a retired key stays in /.well-known/jwks.json */
  published_until: Type.Union([Type.String(), Type.Null()]),
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
  from_token_kid: Type.Union([Type.String(), Type.Null()]),
  to_token_kid: Type.Union([Type.String(), Type.Null()]),
});

const iso = (d: Date | null) => d?.toISOString() ?? null;

const keys: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/keys',
    {
      schema: {
        response: {
          200: Type.Object({
            keys: Type.Array(KeyView),
            token_keys: Type.Array(TokenKeyView),
            rotations: Type.Array(RotationView),
          }),
        },
      },
    },
    async () => {
      // make sure a fresh deployment shows its first keys rather than empty lists
      await app.warden.keys.active();
      await app.warden.tokenKeys.jwks();
      const { keys: keyRows, tokenKeys, rotations: rotationRows } = await listKeys(app.warden.db);
      return {
        keys: keyRows.map((k) => ({
          ...k,
          created_at: k.created_at.toISOString(),
          retired_at: iso(k.retired_at),
        })),
        token_keys: tokenKeys.map((k) => ({
          ...k,
          created_at: k.created_at.toISOString(),
          retired_at: iso(k.retired_at),
          published_until: iso(k.published_until),
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
        token_kid: result.tokenKid,
        previous_token_kid: result.previousTokenKid,
        rotation_id: result.rotationId,
        rotated_at: result.rotatedAt,
        revoked_challenges: result.revokedChallenges,
      };
    },
  );
};

export default keys;
