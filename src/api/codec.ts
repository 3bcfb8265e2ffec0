/**
 * Temporal's remote codec protocol, so authorised responders see decoded payloads in the
 * Temporal UI (`TEMPORAL_CODEC_ENDPOINT=<admin URL>/codec`) and CLI (`--codec-endpoint`):
 * POST {payloads: [{metadata: {k: base64}, data: base64}]} -> the same shape, decoded or
 * encoded with the process's payload keyring. Decoding accepts every key in the ring, so
 * histories written before a rotation stay readable.
 *
 * The Temporal UI calls the codec from the browser, hence CORS for its origin(s). Auth is a
 * dedicated bearer token per operation: WARDEN_CODEC_TOKEN decodes and does nothing else (the
 * UI needs no more, and the admin token would also let whoever holds the browser's copy revoke
 * challenges or resolve incidents); WARDEN_CODEC_ENCODE_TOKEN encodes and cannot read.
 * A payload of an erased user decodes to a placeholder marked `warden-erased` (docs/privacy.md).
 */
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { EncryptionCodec, loadPayloadKeyring } from '../temporal/codec';
import { SubjectCodec } from '../temporal/subjectCodec';
import { ApiError, ErrorBody } from './errors';
import { requireBearer } from './plugins/bearerAuth';
import { isLoopbackHost } from './plugins/loopbackHost';

const MAX_PAYLOADS = 1000;
const BODY_LIMIT = 4 * 1024 * 1024;
const ALLOWED_HEADERS = 'Content-Type, X-Namespace, Authorization';

const JsonPayloadSchema = {
  type: 'object',
  description: 'A Temporal payload in proto3 JSON: base64 metadata values and data',
  properties: {
    metadata: { type: 'object', additionalProperties: { type: 'string' } },
    data: { type: 'string' },
  },
} as const;

const PayloadsBody = {
  type: 'object',
  required: ['payloads'],
  properties: { payloads: { type: 'array', maxItems: MAX_PAYLOADS, items: JsonPayloadSchema } },
} as const;

const PayloadsAnswer = {
  type: 'object',
  required: ['payloads'],
  properties: { payloads: { type: 'array', items: JsonPayloadSchema } },
} as const;

const Preflight = {
  summary: "The browser's CORS preflight (the Temporal UI's origin, WARDEN_CODEC_CORS_ORIGINS)",
  response: { 204: { type: 'null', description: 'allowed: POST, with the headers the UI sends' }, 403: ErrorBody },
} as const;

const codecSchema = (operation: 'decode' | 'encode') => ({
  summary: `${operation === 'decode' ? 'Decode' : 'Encode'} payloads with the payload keyring`,
  body: PayloadsBody,
  headers: {
    type: 'object',
    properties: { 'x-namespace': { type: 'string', description: 'when given, the namespace this codec serves' } },
  },
  response: { 200: PayloadsAnswer, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 503: ErrorBody },
});

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function fromJson(payloads: JsonPayload[]): Payload[] {
  return payloads.map((p, index) => {
    for (const value of [p.data ?? '', ...Object.values(p.metadata ?? {})]) {
      if (!BASE64.test(value))
        throw new ApiError(400, 'invalid_request', `payload ${index} is not base64 (proto3 JSON)`);
    }
    return temporal.api.common.v1.Payload.fromObject(p);
  });
}

function toJson(payloads: Payload[]): JsonPayload[] {
  return payloads.map(
    (p) =>
      temporal.api.common.v1.Payload.toObject(temporal.api.common.v1.Payload.create(p), {
        bytes: String,
      }) as JsonPayload,
  );
}

/** What a failed decode or encode says: why, never any payload content; undefined: not the payload's fault. */
function failureReason(err: unknown): string | undefined {
  const message = err instanceof Error ? err.message : '';
  if (/no user payload key/.test(message)) return 'a user payload key this database does not hold';
  if (/no payload key/.test(message)) return 'a key id not in the keyring';
  if (/authenticate|Invalid|illegal|index out of range/i.test(message)) return 'data that does not authenticate';
  return undefined;
}

const codecRoutes: FastifyPluginAsync = async (app) => {
  const { config, metrics } = app.warden;
  const keyring = new EncryptionCodec(loadPayloadKeyring(config.keys));
  // the per-user layer inside the keyring's (src/temporal/subjectCodec.ts): an erased user's
  // payloads decode to a placeholder that says so
  const subject = app.warden.subjectKeys ? new SubjectCodec(app.warden.subjectKeys) : undefined;
  const codec = {
    decode: async (payloads: Payload[]) => {
      const outer = await keyring.decode(payloads);
      return subject ? subject.decode(outer) : outer;
    },
    encode: async (payloads: Payload[]) => keyring.encode(subject ? await subject.encode(payloads) : payloads),
  };
  const origins = new Set(config.codec.corsOrigins);
  const tokens = { decode: () => config.codec.token, encode: () => config.codec.encodeToken };
  const bearers = {
    decode: requireBearer(tokens.decode, 'warden-codec'),
    encode: requireBearer(tokens.encode, 'warden-codec-encode'),
  };

  // CORS headers go on every answer to an allowed origin, errors included, so the UI sees a
  // 401 as a 401 rather than as an opaque CORS failure
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin && origins.has(origin)) {
      reply.header('Access-Control-Allow-Origin', origin);
      reply.header('Access-Control-Allow-Credentials', 'true');
      reply.header('Vary', 'Origin');
    }
  });

  const authorise = (operation: 'decode' | 'encode') => async (request: FastifyRequest, reply: FastifyReply) => {
    if (config.codec.auth === 'none') {
      // no token on the dev stack: then only this machine, by a loopback name, may ask
      if (!isLoopbackHost(request.headers.host))
        throw new ApiError(403, 'loopback_only', 'without a codec token the codec answers loopback hosts only');
      return;
    }
    if (!tokens[operation]())
      throw new ApiError(
        503,
        'codec_not_configured',
        `${operation} needs ${operation === 'decode' ? 'WARDEN_CODEC_TOKEN' : 'WARDEN_CODEC_ENCODE_TOKEN'}`,
      );
    await bearers[operation](request, reply);
  };

  const checkNamespace = (request: FastifyRequest) => {
    const namespace = request.headers['x-namespace'];
    if (namespace !== undefined && namespace !== config.temporal.namespace) {
      throw new ApiError(400, 'unknown_namespace', `this codec serves namespace ${config.temporal.namespace}`);
    }
  };

  for (const operation of ['decode', 'encode'] as const) {
    const url = `/codec/${operation}`;

    app.options(url, { schema: Preflight }, async (request, reply) => {
      const origin = request.headers.origin;
      if (!origin || !origins.has(origin))
        throw new ApiError(403, 'origin_not_allowed', 'this origin may not call the codec (WARDEN_CODEC_CORS_ORIGINS)');
      return reply
        .header('Access-Control-Allow-Methods', 'POST, OPTIONS')
        .header('Access-Control-Allow-Headers', ALLOWED_HEADERS)
        .header('Access-Control-Max-Age', '600')
        .status(204)
        .send();
    });

    app.post<{ Body: { payloads: JsonPayload[] } }>(
      url,
      { bodyLimit: BODY_LIMIT, schema: codecSchema(operation), onRequest: authorise(operation) },
      async (request) => {
        checkNamespace(request);
        const payloads = fromJson(request.body.payloads);
        let result: Payload[];
        try {
          result = operation === 'decode' ? await codec.decode(payloads) : await codec.encode(payloads);
        } catch (err) {
          metrics.codecRequests.inc({ operation, outcome: 'failed' });
          // the reason (unknown key id, failed authentication tag) without any payload content;
          // anything else (the database down) is not the payload's fault
          const reason = failureReason(err);
          if (!reason) throw err;
          throw new ApiError(400, `${operation}_failed`, `a payload could not be ${operation}d: ${reason}`);
        }
        metrics.codecRequests.inc({ operation, outcome: 'ok' });
        request.log.info(
          { operation, payloads: payloads.length, namespace: config.temporal.namespace },
          'codec request',
        );
        return { payloads: toJson(result) };
      },
    );
  }
};

export default codecRoutes;
