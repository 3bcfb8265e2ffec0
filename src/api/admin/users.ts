/**
 * Users: create, read, change, disable, delete, list and bulk import (src/auth/users.ts), and
 * the per-user containment and recovery steps: revoke active challenges, force a password
 * reset, clear rate-limit state (the runbooks call the same functions through activities).
 * Reading users needs a responder (they are personal data), changing them an admin.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parse as parseCsv } from 'csv-parse';
import { adminDeps, clearRateLimits, forcePasswordReset, revokeUserChallenges, type AdminDeps } from '../../auth/admin';
import {
  checkInput,
  checkSub,
  createUser,
  deleteUser,
  getUser,
  importUser,
  listUsers,
  normalizeEmail,
  normalizePhone,
  SUB_PATTERN,
  UserError,
  updateUser,
  type UserDeps,
} from '../../auth/users';
import { ApiError, ErrorBody } from '../errors';
import { describedRawBody } from '../plugins/openapi';
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

  // ---- the users themselves ---------------------------------------------------------------

  const userDeps = (): UserDeps => ({
    db: app.warden.db,
    logger: app.warden.logger,
    defaultCountry: app.warden.config.defaultPhoneCountry,
  });
  const http = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      if (err instanceof UserError) {
        const status = {
          invalid_request: 400,
          user_not_found: 404,
          user_exists: 409,
          phone_taken: 409,
          email_taken: 409,
        };
        throw new ApiError(status[err.code], err.code, err.message, err.field ? { field: err.field } : {});
      }
      throw err;
    }
  };
  const Nullable = Type.Union([Type.String({ maxLength: 320 }), Type.Null()]);
  const Fields = {
    phone: Type.Optional(Nullable),
    email: Type.Optional(Nullable),
    locale: Type.Optional(Nullable),
    metadata: Type.Optional(Type.Object({}, { additionalProperties: true })),
    disabled: Type.Optional(Type.Boolean()),
  };
  const Sub = Type.Object({ sub: Type.String({ pattern: SUB_PATTERN }) });
  const User = Type.Object({}, { additionalProperties: true });
  const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

  app.post(
    '/users',
    {
      schema: {
        body: Type.Object({ sub: Type.String({ maxLength: 200 }), ...Fields }, { additionalProperties: false }),
        response: { 201: User, ...errors },
      },
    },
    async (request, reply) => {
      const { sub, ...fields } = request.body;
      const user = await http(() =>
        createUser(userDeps(), checkSub(sub), checkInput(fields, userDeps().defaultCountry), operatorOf(request).name),
      );
      return reply
        .status(201)
        .header('location', `/admin/api/v1/users/${encodeURIComponent(user.sub)}`)
        .send(user);
    },
  );

  app.get(
    '/users',
    {
      config: { role: 'responder' },
      schema: {
        querystring: Type.Object({
          cursor: Type.Optional(Type.String({ pattern: SUB_PATTERN })),
          limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$' })),
          phone: Type.Optional(Type.String({ maxLength: 64 })),
          email: Type.Optional(Type.String({ maxLength: 320 })),
        }),
        response: { 200: Type.Object({ users: Type.Array(User), next_cursor: Nullable }), ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      return http(async () =>
        listUsers(app.warden.db, {
          cursor: q.cursor,
          limit: Math.min(Number(q.limit ?? 100), 500),
          // searched as stored: the same normalization as on the way in
          phone: q.phone === undefined ? undefined : normalizePhone(q.phone, app.warden.config.defaultPhoneCountry),
          email: q.email === undefined ? undefined : normalizeEmail(q.email),
        }),
      );
    },
  );

  app.get(
    '/users/:sub',
    { config: { role: 'responder' }, schema: { params: Sub, response: { 200: User, ...errors } } },
    async (request) => http(() => getUser(app.warden.db, request.params.sub)),
  );

  app.patch(
    '/users/:sub',
    {
      schema: {
        params: Sub,
        body: Type.Object(Fields, { additionalProperties: false, minProperties: 1 }),
        response: { 200: User, ...errors },
      },
    },
    async (request) =>
      (
        await http(() =>
          updateUser(
            userDeps(),
            request.params.sub,
            checkInput(request.body, userDeps().defaultCountry),
            operatorOf(request).name,
          ),
        )
      ).user,
  );

  app.delete(
    '/users/:sub',
    {
      schema: {
        params: Sub,
        response: { 204: Type.Unsafe<void>({ type: 'null', description: 'deleted' }), ...errors },
      },
    },
    async (request, reply) => {
      await http(() => deleteUser(userDeps(), request.params.sub, operatorOf(request).name));
      return reply.status(204).send();
    },
  );

  // Bulk import: NDJSON (one user object per line) or CSV (a header line naming sub, phone,
  // email, locale), read as it streams; each line is created or updated on its own, so a
  // repeat of the same file changes nothing, and a bad line is reported, not fatal.
  const IMPORT_MAX_LINES = 100_000;
  const IMPORT_MAX_ERRORS = 1000;
  const ImportReport = Type.Object({
    created: Type.Integer(),
    updated: Type.Integer(),
    unchanged: Type.Integer(),
    failed: Type.Integer(),
    errors: Type.Array(
      Type.Object({
        line: Type.Integer(),
        error: Type.String(),
        message: Type.String(),
        field: Type.Optional(Type.String()),
      }),
      { description: `the first ${IMPORT_MAX_ERRORS} lines that failed` },
    ),
  });
  await app.register(async (importer) => {
    importer.addContentTypeParser(['application/x-ndjson', 'text/csv'], (_request, payload, done) =>
      done(null, payload),
    );
    importer.post(
      '/users/import',
      {
        bodyLimit: 64 * 1024 * 1024,
        // read as a stream, line by line: the schema describes the upload, each line is checked on its own
        validatorCompiler: describedRawBody,
        schema: {
          body: {
            content: {
              'application/x-ndjson': {
                schema: Type.String({
                  description: 'one user object per line: {"sub", "phone", "email", "locale"...}',
                }),
              },
              'text/csv': {
                schema: Type.String({
                  description: 'a header line naming sub, phone, email, locale; one user per line',
                }),
              },
            },
          },
          response: { 200: ImportReport, ...errors },
        },
      },
      async (request) => {
        const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim();
        if (type !== 'application/x-ndjson' && type !== 'text/csv')
          throw new ApiError(415, 'unsupported_media_type', 'send application/x-ndjson or text/csv');
        const body = request.body as Readable;
        const counts = { created: 0, updated: 0, unchanged: 0, failed: 0 };
        const errorsSeen: Array<{ line: number; error: string; message: string; field?: string }> = [];
        const actor = operatorOf(request).name;
        let line = type === 'text/csv' ? 1 : 0; // CSV: line 1 is the header
        const records: AsyncIterable<unknown> =
          type === 'text/csv'
            ? body.pipe(parseCsv({ columns: true, skip_empty_lines: true, trim: true, relax_column_count: false }))
            : createInterface({ input: body, crlfDelay: Infinity });
        for await (const record of records) {
          line++;
          if (line > IMPORT_MAX_LINES)
            throw new ApiError(413, 'too_many_lines', `at most ${IMPORT_MAX_LINES} users per import`);
          let raw: unknown;
          if (typeof record === 'string') {
            if (!record.trim()) continue;
            try {
              raw = JSON.parse(record);
            } catch {
              raw = undefined;
            }
          } else {
            // CSV: empty cells leave a field as it is
            raw = Object.fromEntries(Object.entries(record as Record<string, string>).filter(([, v]) => v !== ''));
          }
          try {
            if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
              throw new UserError('invalid_request', 'not a JSON object');
            counts[await importUser(userDeps(), raw as Record<string, unknown>, actor)]++;
          } catch (err) {
            if (!(err instanceof UserError)) throw err;
            counts.failed++;
            if (errorsSeen.length < IMPORT_MAX_ERRORS)
              errorsSeen.push({
                line,
                error: err.code,
                message: err.message,
                ...(err.field ? { field: err.field } : {}),
              });
          }
        }
        return { ...counts, errors: errorsSeen };
      },
    );
  });
};

export default users;
