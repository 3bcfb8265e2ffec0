/**
 * Data-subject requests (docs/privacy.md): a user's export and erasure, each run by a workflow.
 * Both are admin-only, the downloads included: an export is everything Warden holds about a
 * person, and an erasure cannot be undone. Requests are audited by their ids, never the user's.
 *
 *   POST /users/:sub/export {format?}  -> 202 {export_id}
 *   GET  /users/:sub/exports/:id       -> 202 while it is built, then 200 the artifact (Content-Digest)
 *   POST /users/:sub/erasure           -> 202 {erasure_id}, or 200 the report when it is done
 *   GET  /users/:sub/erasure           -> 202 while it runs, then 200 the report
 */
import { Readable } from 'node:stream';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SUB_PATTERN } from '../../auth/users';
import {
  erasureState,
  exportState,
  PrivacyError,
  requestErasure,
  requestExport,
  type ErasureState,
  type PrivacyDeps,
} from '../../privacy/client';
import { EXPORT_FORMATS } from '../../shared/privacy';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const STATUS: Record<PrivacyError['code'], number> = {
  user_not_found: 404,
  export_not_found: 404,
  export_expired: 410,
  erasure_not_found: 404,
  erasure_running: 409,
};

async function http<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof PrivacyError) throw new ApiError(STATUS[err.code], err.code, err.message);
    throw err;
  }
}

const Sub = Type.String({ pattern: SUB_PATTERN });
const Running = (id: string) =>
  Type.Object(
    { [id]: Type.String({ format: 'uuid' }), status: Type.Literal('running') },
    { additionalProperties: false },
  );
const Counts = Type.Record(Type.String(), Type.Integer());
const Report = Type.Object(
  {
    erasure_id: Type.String({ format: 'uuid' }),
    status: Type.Literal('completed'),
    requested_at: Type.String({ format: 'date-time' }),
    completed_at: Type.String({ format: 'date-time' }),
    requested_by: Type.String(),
    revoked_challenges: Type.Integer(),
    workflows_ended: Type.Integer(),
    deleted: Counts,
    scrubbed: Counts,
    audit_pseudonymized: Type.Integer(),
    payload_key: Type.Union([Type.Literal('destroyed'), Type.Literal('none')]),
  },
  { description: 'what the erasure did, table by table: counts only, nothing that names the user' },
);
const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody };

const privacy: FastifyPluginAsyncTypebox = async (app) => {
  const deps = (): PrivacyDeps => ({
    db: app.warden.db,
    client: app.warden.temporal.client,
    taskQueue: app.warden.config.temporal.taskQueue,
    kek: app.warden.keys.keyring,
    logger: app.warden.logger.child({ component: 'audit' }),
    exportTtlMs: app.warden.config.privacy.exportTtlMs,
  });
  const admin = { role: 'admin' as const };

  app.post(
    '/users/:sub/export',
    {
      config: admin,
      schema: {
        summary: 'Export everything Warden holds about a user (a workflow builds it; fetch it from its URL)',
        params: Type.Object({ sub: Sub }),
        body: Type.Object(
          { format: Type.Optional(Type.Union(EXPORT_FORMATS.map((f) => Type.Literal(f)))) },
          { additionalProperties: false },
        ),
        response: {
          202: Type.Object({
            export_id: Type.String({ format: 'uuid' }),
            status: Type.Literal('running'),
            expires_at: Type.String({
              format: 'date-time',
              description: 'at the earliest; counted again once it is ready',
            }),
          }),
          ...errors,
          409: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { sub } = request.params;
      const { exportId, expiresAt } = await http(() =>
        requestExport(deps(), sub, request.body.format ?? 'json', operatorOf(request).name),
      );
      return reply
        .status(202)
        .header('location', `/admin/api/v1/users/${encodeURIComponent(sub)}/exports/${exportId}`)
        .send({ export_id: exportId, status: 'running', expires_at: expiresAt });
    },
  );

  app.get(
    '/users/:sub/exports/:id',
    {
      config: admin,
      schema: {
        summary: 'The export: its status while it is built, then the artifact with its SHA-256',
        params: Type.Object({ sub: Sub, id: Type.String({ format: 'uuid' }) }),
        response: {
          200: {
            description:
              'The artifact (JSON, or NDJSON: a header line, then one record per line); `Content-Digest` and `ETag` carry its SHA-256',
            // streamed: the serializer never sees it
            content: {
              'application/json': { schema: Type.Unsafe<unknown>({ type: 'object' }) },
              'application/x-ndjson': { schema: Type.Unsafe<unknown>({ type: 'string' }) },
            },
          },
          202: Running('export_id'),
          ...errors,
          410: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const state = await http(() => exportState(app.warden.db, request.params.sub, request.params.id));
      if (state.status === 'running') return reply.status(202).send({ export_id: state.exportId, status: 'running' });
      const digest = Buffer.from(state.sha256, 'hex').toString('base64');
      return reply
        .type(state.format === 'json' ? 'application/json' : 'application/x-ndjson')
        .header('Content-Digest', `sha-256=:${digest}:`)
        .header('ETag', `"${state.sha256}"`)
        .header('Content-Length', String(state.bytes))
        .header('Content-Disposition', `attachment; filename="warden-export-${state.exportId}.${state.format}"`)
        .header('Cache-Control', 'no-store')
        .header('X-Export-Expires-At', state.expiresAt)
        .send(Readable.from(state.chunks()));
    },
  );

  /** 202 while it runs, 200 with the report once it is done */
  const answer = (state: ErasureState) =>
    state.status === 'running'
      ? { code: 202 as const, body: { erasure_id: state.erasureId, status: 'running' as const } }
      : { code: 200 as const, body: state.report };

  app.post(
    '/users/:sub/erasure',
    {
      config: admin,
      schema: {
        summary: 'Erase a user: revoke, delete or pseudonymize their rows, make their Temporal payloads unreadable',
        params: Type.Object({ sub: Sub }),
        body: Type.Object({}, { additionalProperties: false }),
        response: { 200: Report, 202: Running('erasure_id'), ...errors },
      },
    },
    async (request, reply) => {
      const { code, body } = answer(
        await http(() => requestErasure(deps(), request.params.sub, operatorOf(request).name)),
      );
      return reply.status(code).send(body);
    },
  );

  app.get(
    '/users/:sub/erasure',
    {
      config: admin,
      schema: {
        summary: "The user's erasure: running, or its report",
        params: Type.Object({ sub: Sub }),
        response: { 200: Report, 202: Running('erasure_id'), ...errors },
      },
    },
    async (request, reply) => {
      const { code, body } = answer(await http(() => erasureState(deps(), request.params.sub)));
      return reply.status(code).send(body);
    },
  );
};

export default privacy;
