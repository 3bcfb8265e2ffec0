import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DatabaseReadOnlyError } from '../db/database';

/**
 * An error the API answers with on purpose: a status, a stable machine-readable `error`
 * code and a human sentence. Anything else that escapes a handler is logged and answered as
 * a 500 without detail; bad input never gets there because every route validates first.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * The body of every error answer. `error` is the stable code clients branch on (snake case,
 * never reworded); `message` is for people and may change. Some errors carry more fields
 * (`remaining_attempts`, `retry_after_seconds`, `needed_role`...). The title names it in the
 * OpenAPI document, where every error response refers to it (plugins/openapi.ts).
 */
export const ErrorBody = {
  title: 'ErrorBody',
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: {
      type: 'string',
      pattern: '^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$',
      description: 'a stable, machine-readable code, e.g. invalid_request, not_found, rate_limited',
    },
    message: { type: 'string', description: 'what went wrong, for people' },
  },
  additionalProperties: true,
} as const;

function send(reply: FastifyReply, status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  return reply
    .status(status)
    .type('application/json')
    .send({ error: code, message, ...extra });
}

/** The error and its causes: Temporal wraps an activity's failure (a workflow update's, say) in layers. */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err; e && out.length < 8; e = (e as { cause?: unknown }).cause) out.push(e);
  return out;
}

/**
 * Postgres refused a write: this process's read-only degradation, a standby, or an activity
 * that met either (its failure type is the error's name).
 */
function isReadOnly(err: unknown): boolean {
  return causes(err).some(
    (e) =>
      e instanceof DatabaseReadOnlyError ||
      (e as { code?: unknown }).code === '25006' ||
      (e as { type?: unknown }).type === 'DatabaseReadOnlyError',
  );
}

/**
 * Postgres refused a text value itself (U+0000 in text, or a \u0000 escape in jsonb): the
 * request carried it, so it is bad input, and the statement (or its transaction) did nothing.
 */
function isUnstorableText(err: unknown): boolean {
  return causes(err).some((e) => ['22021', '22P05'].includes(String((e as { code?: unknown }).code)));
}

/** Connection-level failures from pg or Temporal: the dependency is down, not the request. */
function isUnavailable(err: unknown): boolean {
  return causes(err).some((e) => {
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === 'string' &&
      ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '08006', '08001', '08003'].includes(code)
    ) {
      return true;
    }
    const message = e instanceof Error ? e.message : '';
    return /Connection terminated|connection timeout|timeout exceeded when trying to connect|ECONNREFUSED|ECONNRESET|UNAVAILABLE|DEADLINE_EXCEEDED/i.test(
      message,
    );
  });
}

/**
 * The router's own refusals (a path with a broken percent-escape, a path parameter over
 * maxParamLength) happen before any route or error handler: Fastify's default body for them is
 * `{"error": "Bad Request", "code": "FST_..."}`. This answers them like every other error. The
 * path is not echoed: it may carry a secret path token (the SES callback's).
 */
export function answerFrameworkError(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  if (tooLong || err.code === 'FST_ERR_BAD_URL') {
    void send(
      reply,
      tooLong ? 414 : 400,
      tooLong ? 'uri_too_long' : 'invalid_url',
      tooLong ? 'a path segment is too long' : 'the path is not a valid URL component',
    );
    return;
  }
  void send(reply, 500, 'internal', 'internal error');
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) =>
    send(reply, 404, 'not_found', `no route for ${request.method} ${request.routeOptions.url ?? 'this path'}`),
  );

  app.setErrorHandler((err: FastifyError | ApiError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ApiError) {
      for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
      return send(reply, err.statusCode, err.code, err.message, err.extra);
    }
    if (isReadOnly(err)) {
      reply.header('Retry-After', '30');
      return send(reply, 503, 'read_only', new DatabaseReadOnlyError().message);
    }
    const fastifyError = err as FastifyError;
    if (fastifyError.validation) {
      return send(
        reply,
        400,
        'invalid_request',
        `${fastifyError.validationContext ?? 'request'} ${fastifyError.validation[0]?.message ?? 'is invalid'}`.replace(
          /\s+/g,
          ' ',
        ),
      );
    }
    const status = fastifyError.statusCode;
    if (status && status >= 400 && status < 500) {
      // Fastify's own client errors: bad JSON, wrong content type, body too large...
      const code = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'invalid_request';
      return send(reply, status, code, fastifyError.message.replace(/^FST_\w+: /, ''));
    }
    if (isUnstorableText(err)) {
      return send(reply, 400, 'invalid_request', 'a text value contains a character that cannot be stored (U+0000)');
    }
    if (isUnavailable(err)) {
      request.log.warn({ err: { name: err.name, code: (err as { code?: string }).code } }, 'dependency unavailable');
      reply.header('Retry-After', '5');
      return send(reply, 503, 'unavailable', 'a dependency is unavailable; try again shortly');
    }
    request.log.error({ err: { name: err.name, message: err.message, stack: err.stack } }, 'unhandled error');
    return send(reply, 500, 'internal', 'internal error');
  });
}
