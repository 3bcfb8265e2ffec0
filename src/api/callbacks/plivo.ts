/**
 * Plivo's message status callback (the `url` of the send), signed with X-Plivo-Signature-V3.
 * delivered; undelivered (transient); failed and rejected (permanent). And the message URL of
 * the canary's number (an incoming SMS), signed the same way: the canary's code coming back
 * (src/canary/inbound.ts).
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { verifyPlivo } from '../../delivery/callbackAuth';
import { answerCanaryInbound } from '../../canary/inbound';
import { applyReport } from '../../delivery/reports';
import { CALLBACK_KEY_PARAM } from '../../providers/idempotency';
import { ApiError } from '../errors';
import { CALLBACK_BASE, callbackToken, forged, formParams, signedUrl } from './common';
import { plivoInbound, plivoStatus } from './schemas';

const FAILED: Record<string, 'transient' | 'permanent'> = {
  undelivered: 'transient',
  failed: 'permanent',
  rejected: 'permanent',
};

/** The form parameters of a request Plivo signed; a forged or unsigned one is refused. */
function signedParams(app: FastifyInstance, request: FastifyRequest): Record<string, string> {
  const params = formParams(request.body);
  const signature = request.headers['x-plivo-signature-v3'];
  const nonce = request.headers['x-plivo-signature-v3-nonce'];
  const token = callbackToken(app, 'plivo');
  const ok = verifyPlivo(
    token,
    typeof signature === 'string' ? signature : undefined,
    typeof nonce === 'string' ? nonce : undefined,
    signedUrl(app, request),
    params,
  );
  if (!ok) throw forged(app, 'plivo');
  return params;
}

const plivoCallbacks: FastifyPluginAsync = async (app) => {
  app.post(`${CALLBACK_BASE}/plivo/inbound`, { schema: plivoInbound }, async (request, reply) => {
    const params = signedParams(app, request);
    const { From: from, To: to, Text: text } = params;
    if (!from || !to || text === undefined)
      throw new ApiError(400, 'invalid_request', 'From, To and Text are required');
    const result = await answerCanaryInbound(app, request, { provider: 'plivo', from, to, text });
    app.warden.metrics.deliveryCallbacks.inc({ provider: 'plivo', outcome: `inbound_${result}` });
    return reply.code(204).send();
  });

  app.post(`${CALLBACK_BASE}/plivo/status`, { schema: plivoStatus }, async (request, reply) => {
    const params = signedParams(app, request);
    const status = params.Status;
    const uuid = params.MessageUUID;
    if (!status || !uuid) throw new ApiError(400, 'invalid_request', 'Status and MessageUUID are required');
    const key = (request.query as Record<string, unknown>)[CALLBACK_KEY_PARAM];
    const outcome = status === 'delivered' ? 'delivered' : FAILED[status] ? 'failed' : undefined;
    if (!outcome) {
      app.warden.metrics.deliveryCallbacks.inc({ provider: 'plivo', outcome: 'ignored' });
      return reply.code(204).send();
    }
    const result = await applyReport(app.warden, {
      provider: 'plivo',
      providerMessageId: uuid,
      ...(typeof key === 'string' ? { idempotencyKey: key } : {}),
      outcome,
      report: status,
      errorClass: FAILED[status],
      ...(params.ErrorCode ? { errorCode: params.ErrorCode } : {}),
    });
    app.warden.metrics.deliveryCallbacks.inc({ provider: 'plivo', outcome: result === 'applied' ? outcome : result });
    return reply.code(204).send();
  });
};

export default plivoCallbacks;
