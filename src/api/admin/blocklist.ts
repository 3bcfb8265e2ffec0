/**
 * The IP blocklist (`POST /admin/api/v1/blocklist/ip {"ip","reason"}`), plus
 * an optional `expires_at` and `incident_id`. A blocked client gets 403 on every public auth
 * route within one request: the check reads Postgres, no cache.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AuditEventType, recordAudit } from '../../auth/audit';
import { addBlock, BlockTooBroadError, listBlocks, removeBlock } from '../../auth/blocklist';
import { parseCidr, type ParsedCidr } from '../../auth/clientIp';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const Entry = Type.Object({
  id: Type.Integer(),
  cidr: Type.String(),
  reason: Type.String(),
  created_by: Type.String(),
  incident_id: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  expires_at: Type.Union([Type.String(), Type.Null()]),
  removed_at: Type.Union([Type.String(), Type.Null()]),
  active: Type.Boolean(),
});

const AddBody = Type.Object({
  ip: Type.String({ minLength: 1, maxLength: 64 }),
  reason: Type.String({ minLength: 1, maxLength: 500 }),
  expires_at: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  incident_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
});

function cidrOf(value: string): ParsedCidr {
  const cidr = parseCidr(value);
  if (!cidr)
    throw new ApiError(
      400,
      'invalid_request',
      '`ip` must be an IPv4 or IPv6 address, or a CIDR block like 198.51.100.0/24',
    );
  return cidr;
}

function expiryOf(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const at = /^\d{4}-\d{2}-\d{2}T/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(at.getTime()))
    throw new ApiError(400, 'invalid_request', '`expires_at` must be an ISO 8601 timestamp');
  if (at.getTime() <= Date.now()) throw new ApiError(400, 'invalid_request', '`expires_at` must be in the future');
  return at;
}

const blocklist: FastifyPluginAsyncTypebox = async (app) => {
  const audit = (actor: string, outcome: string, details: Record<string, unknown>, incidentId?: string) =>
    recordAudit(app.warden.db, app.warden.logger.child({ component: 'audit' }), {
      type: AuditEventType.blocklistChanged,
      outcome,
      incidentId,
      details: { ...details, actor },
    });

  app.post(
    '/blocklist/ip',
    {
      schema: {
        body: AddBody,
        response: { 200: Type.Object({ entry: Entry }), 201: Type.Object({ entry: Entry }), 400: ErrorBody },
      },
    },
    async (request, reply) => {
      const cidr = cidrOf(request.body.ip);
      const expiresAt = expiryOf(request.body.expires_at);
      const { entry, created } = await addBlock(
        app.warden.db,
        {
          cidr,
          reason: request.body.reason,
          expiresAt,
          createdBy: operatorOf(request).name,
          incidentId: request.body.incident_id,
        },
        app.warden.config.blockLimits,
      ).catch((err: unknown) => {
        if (err instanceof BlockTooBroadError) throw new ApiError(400, err.code, err.message);
        throw err;
      });
      await audit(
        operatorOf(request).name,
        created ? 'added' : 'updated',
        { cidr: entry.cidr, reason: entry.reason, expires_at: entry.expires_at },
        request.body.incident_id,
      );
      return reply.status(created ? 201 : 200).send({ entry });
    },
  );

  app.get(
    '/blocklist/ip',
    {
      schema: {
        querystring: Type.Object({ all: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) }),
        response: { 200: Type.Object({ entries: Type.Array(Entry) }), 400: ErrorBody },
      },
    },
    async (request) => ({ entries: await listBlocks(app.warden.db, request.query.all === 'true') }),
  );

  app.delete(
    '/blocklist/ip',
    {
      schema: {
        querystring: Type.Object({ ip: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: Type.Object({ removed: Type.Array(Entry) }), 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => {
      const cidr = cidrOf(request.query.ip);
      const removed = await removeBlock(app.warden.db, cidr);
      if (removed.length === 0) throw new ApiError(404, 'not_found', `${cidr.text} is not on the blocklist`);
      await audit(operatorOf(request).name, 'removed', { cidr: removed[0]!.cidr });
      return { removed };
    },
  );
};

export default blocklist;
