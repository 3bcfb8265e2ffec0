/**
 * Operators and their API tokens (admins only), and `GET /whoami` for anyone with a token. A
 * token is in the answer of the request that issues it and nowhere else, ever.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  createOperator,
  issueToken,
  listOperators,
  listTokens,
  OperatorError,
  revokeToken,
  updateOperator,
  type OperatorDeps,
} from '../../auth/operators';
import { ROLES } from '../../shared/roles';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const lit = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
const OperatorId = Type.Object({ id: Uuid });
const Role = lit(ROLES);
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const Operator = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Type.String(),
  created_by: Type.String(),
  created_at: Type.String(),
  disabled_at: Nullable(Type.String()),
});
const Token = Type.Object({
  id: Type.String(),
  operator_id: Type.String(),
  hint: Type.String(),
  label: Nullable(Type.String()),
  created_by: Type.String(),
  created_at: Type.String(),
  expires_at: Nullable(Type.String()),
  last_used_at: Nullable(Type.String()),
  revoked_at: Nullable(Type.String()),
  active: Type.Boolean(),
});
const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const obj = Type.Object;

const STATUS = { operator_not_found: 404, token_not_found: 404, operator_exists: 409, operator_disabled: 409 };

async function http<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof OperatorError) throw new ApiError(STATUS[err.code], err.code, err.message);
    throw err;
  }
}

const operators: FastifyPluginAsyncTypebox = async (app) => {
  const deps = (): OperatorDeps => ({ db: app.warden.db, logger: app.warden.logger });

  app.get(
    '/whoami',
    { schema: { response: { 200: obj({ id: Nullable(Type.String()), name: Type.String(), role: Type.String() }) } } },
    async (request) => operatorOf(request),
  );

  app.get(
    '/operators',
    { config: { role: 'admin' }, schema: { response: { 200: obj({ operators: Type.Array(Operator) }), ...errors } } },
    async () => ({ operators: await listOperators(app.warden.db) }),
  );

  app.post(
    '/operators',
    {
      schema: {
        body: obj(
          { name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }), role: Role },
          { additionalProperties: false },
        ),
        response: { 201: Operator, ...errors },
      },
    },
    async (request, reply) => {
      const created = await http(createOperator(deps(), request.body, operatorOf(request).name));
      return reply.status(201).send(created);
    },
  );

  app.patch(
    '/operators/:id',
    {
      schema: {
        params: OperatorId,
        body: obj(
          { role: Type.Optional(Role), disabled: Type.Optional(Type.Boolean()) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: Operator, ...errors },
      },
    },
    async (request) => http(updateOperator(deps(), request.params.id, request.body, operatorOf(request).name)),
  );

  app.get(
    '/operators/:id/tokens',
    {
      config: { role: 'admin' },
      schema: { params: OperatorId, response: { 200: obj({ tokens: Type.Array(Token) }), ...errors } },
    },
    async (request) => ({ tokens: await http(listTokens(app.warden.db, request.params.id)) }),
  );

  app.post(
    '/operators/:id/tokens',
    {
      schema: {
        params: OperatorId,
        body: obj(
          {
            label: Type.Optional(
              Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }),
            ),
            expires_in_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: obj({ token: Type.String(), info: Token }), ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const issued = await http(
        issueToken(
          deps(),
          request.params.id,
          { label: body.label, expiresInDays: body.expires_in_days },
          operatorOf(request).name,
        ),
      );
      // the one answer that carries a credential: never cached anywhere
      return reply.status(201).header('Cache-Control', 'no-store').send(issued);
    },
  );

  app.delete(
    '/operators/:id/tokens/:token_id',
    {
      schema: {
        params: obj({ id: Uuid, token_id: Uuid }),
        response: { 200: Token, ...errors },
      },
    },
    async (request) => http(revokeToken(deps(), request.params.id, request.params.token_id, operatorOf(request).name)),
  );
};

export default operators;
