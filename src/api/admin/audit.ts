/**
 * `GET /admin/api/v1/audit/export?since=24h` streams audit events as NDJSON, oldest first,
 * one line per event in the same shape as the audit log lines (the forensic export,
 * without grepping container logs). `since`/`until` take a duration back from now (`90m`,
 * `24h`, `7d`) or an ISO timestamp; the window is capped at 31 days.
 */
import { Readable } from 'node:stream';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { exportAuditLines } from '../../auth/audit';
import { durationMs } from '../../shared/format';
import { ApiError, ErrorBody } from '../errors';

const MAX_WINDOW_MS = 31 * 24 * 3600 * 1000;

function instant(name: string, value: string | undefined, fallback: Date): Date {
  if (value === undefined) return fallback;
  const ago = durationMs(value);
  if (ago !== undefined) return new Date(Date.now() - ago);
  const at = /^\d{4}-\d{2}-\d{2}(T|$)/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(at.getTime()))
    throw new ApiError(400, 'invalid_request', `\`${name}\` must be a duration like 24h or an ISO 8601 timestamp`);
  return at;
}

const audit: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/audit/export',
    {
      // the trail names users and addresses (masked): more than a viewer needs
      config: { role: 'responder' },
      schema: {
        querystring: Type.Object({
          since: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
          until: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
          type: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
        }),
        response: {
          200: {
            description: 'One audit event per line, oldest first',
            // streamed: the serializer never sees it
            content: { 'application/x-ndjson': { schema: Type.Unsafe<unknown>({ type: 'string' }) } },
          },
          400: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const now = new Date();
      const until = instant('until', request.query.until, now);
      const since = instant('since', request.query.since, new Date(until.getTime() - 24 * 3_600_000));
      if (since.getTime() >= until.getTime())
        throw new ApiError(400, 'invalid_request', '`since` must be before `until`');
      if (until.getTime() - since.getTime() > MAX_WINDOW_MS)
        throw new ApiError(400, 'invalid_request', 'the export window is at most 31 days');
      return reply
        .type('application/x-ndjson')
        .header('Cache-Control', 'no-store')
        .send(Readable.from(exportAuditLines(app.warden.db, since, until, request.query.type)));
    },
  );
};

export default audit;
