import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { plivoDeliveredCallback } from '../callbacks';
import type { SandboxContext } from '../context';
import { deliverInbound } from '../inbound';
import {
  answerLate,
  applyFault,
  basicAuth,
  receiptTiming,
  record,
  sendFailure,
  undelivered,
  urlParam,
  type FaultShapes,
  type ProviderFailure,
} from '../http';

/** Plivo answers errors as `{api_id, error}`. */
function plivoError(status: number, error: string): ProviderFailure {
  return { status, body: { api_id: randomUUID(), error } };
}

const shapes: FaultShapes = {
  error: (status) => plivoError(status, status === 429 ? 'too many requests' : 'internal server error'),
  permanent: () => plivoError(400, 'dst parameter is invalid'),
};

const PLIVO_NUMBER = /^\+?[1-9]\d{6,14}$/;

interface PlivoBody {
  src?: unknown;
  dst?: unknown;
  text?: unknown;
  url?: unknown;
  powerpack_uuid?: unknown;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * POST /v1/Account/:authId/Message/ as plivo-node sends it: JSON src, dst (several joined
 * by "<"), text, url. The idempotency key is the `idempotency_key` query parameter of `url`.
 */
export async function plivoRoutes(app: FastifyInstance, { state, callbacks }: SandboxContext): Promise<void> {
  app.post<{ Params: { authId: string }; Body: PlivoBody }>('/v1/Account/:authId/Message/', async (request, reply) => {
    const body: PlivoBody = typeof request.body === 'object' && request.body !== null ? request.body : {};
    const callbackUrl = str(body.url);
    const key = urlParam(callbackUrl, 'idempotency_key') ?? null;

    const auth = basicAuth(request);
    if (!auth || auth.user !== request.params.authId) {
      record(state, 'plivo', request, 'rejected', 401, key);
      return sendFailure(reply, plivoError(401, 'authentication failed'));
    }

    if (await applyFault(state, 'plivo', request, reply, shapes, key)) return reply;

    const src = str(body.src) ?? str(body.powerpack_uuid);
    const dst = str(body.dst);
    const text = str(body.text);
    if (!src || !dst || !text) {
      const missing = !src ? 'src' : !dst ? 'dst' : 'text';
      record(state, 'plivo', request, 'rejected', 400, key);
      return sendFailure(reply, plivoError(400, `${missing} parameter is required`));
    }
    const recipients = dst.split('<');
    const valid = recipients.filter((n) => PLIVO_NUMBER.test(n));
    const invalid = recipients.filter((n) => !PLIVO_NUMBER.test(n));
    if (valid.length === 0) {
      record(state, 'plivo', request, 'rejected', 400, key);
      return sendFailure(reply, shapes.permanent());
    }

    const original = state.recall('plivo', key);
    if (original) {
      record(state, 'plivo', request, 'deduplicated', 202, key);
      await answerLate(state, request, reply);
      return reply.code(202).send(original.response);
    }

    const uuids = valid.map(() => randomUUID());
    const response: Record<string, unknown> = {
      api_id: randomUUID(),
      message: 'message(s) queued',
      message_uuid: uuids,
    };
    if (invalid.length > 0) response.invalid_number = invalid;
    const lost = undelivered(request);
    const receipt = receiptTiming(request);
    valid.forEach((to, i) => {
      const id = uuids[i] ?? randomUUID();
      if (!lost) {
        state.addMessage({
          id,
          provider: 'plivo',
          channel: 'sms',
          to,
          subject: null,
          body: text,
          idempotency_key: key,
        });
        deliverInbound(state, callbacks, { from: src, to, body: text });
      }
      if (callbackUrl && state.callbacksEnabled && receipt.send) {
        callbacks.schedule(
          plivoDeliveredCallback(
            callbackUrl,
            auth.password,
            { uuid: id, from: src, to },
            lost ? 'undelivered' : 'delivered',
          ),
          receipt.delayMs,
        );
      }
    });
    state.remember('plivo', key, uuids, response);
    record(state, 'plivo', request, 'accepted', 202, key);
    await answerLate(state, request, reply);
    return reply.code(202).send(response);
  });
}
