/**
 * Twilio's StatusCallback (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status).
 * Terminal statuses only: delivered; undelivered (the carrier gave up: transient, a resend may
 * work) and failed (Twilio refused it: permanent). queued/sent/sending... are acknowledged.
 * And the incoming-message webhook of the canary's number, signed the same way: the canary's
 * code coming back (src/canary/inbound.ts). Either answers 204 once the signature holds.
 */
import type { FastifyPluginAsync } from 'fastify';
import { verifyTwilio } from '../../delivery/callbackAuth';
import { answerCanaryInbound } from '../../canary/inbound';
import { applyReport, type DeliveryReport } from '../../delivery/reports';
import { CALLBACK_KEY_PARAM } from '../../providers/idempotency';
import { ApiError } from '../errors';
import { CALLBACK_BASE, callbackToken, forged, formParams, signedUrl } from './common';
import { twilioInbound, twilioStatus } from './schemas';

const FAILED: Record<string, 'transient' | 'permanent'> = { undelivered: 'transient', failed: 'permanent' };

const twilioCallbacks: FastifyPluginAsync = async (app) => {
  app.post(`${CALLBACK_BASE}/twilio/status`, { schema: twilioStatus }, async (request, reply) => {
    const params = formParams(request.body);
    const header = request.headers['x-twilio-signature'];
    const token = callbackToken(app, 'twilio');
    if (!verifyTwilio(token, typeof header === 'string' ? header : undefined, signedUrl(app, request), params))
      throw forged(app, 'twilio');
    const status = params.MessageStatus ?? params.SmsStatus;
    const sid = params.MessageSid ?? params.SmsSid;
    if (!status || !sid) throw new ApiError(400, 'invalid_request', 'MessageStatus and MessageSid are required');
    const key = (request.query as Record<string, unknown>)[CALLBACK_KEY_PARAM];
    const outcome = status === 'delivered' ? 'delivered' : FAILED[status] ? 'failed' : undefined;
    if (outcome) {
      const report: DeliveryReport = {
        provider: 'twilio',
        providerMessageId: sid,
        ...(typeof key === 'string' ? { idempotencyKey: key } : {}),
        outcome,
        report: status,
        errorClass: FAILED[status],
        ...(params.ErrorCode ? { errorCode: params.ErrorCode } : {}),
      };
      const result = await applyReport(app.warden, report);
      app.warden.metrics.deliveryCallbacks.inc({
        provider: 'twilio',
        outcome: result === 'applied' ? outcome : result,
      });
    } else {
      app.warden.metrics.deliveryCallbacks.inc({ provider: 'twilio', outcome: 'ignored' });
    }
    return reply.code(204).send();
  });

  app.post(`${CALLBACK_BASE}/twilio/inbound`, { schema: twilioInbound }, async (request, reply) => {
    const params = formParams(request.body);
    const header = request.headers['x-twilio-signature'];
    const token = callbackToken(app, 'twilio');
    if (!verifyTwilio(token, typeof header === 'string' ? header : undefined, signedUrl(app, request), params))
      throw forged(app, 'twilio');
    const { From: from, To: to, Body: text } = params;
    if (!from || !to || text === undefined)
      throw new ApiError(400, 'invalid_request', 'From, To and Body are required');
    const result = await answerCanaryInbound(app, request, { provider: 'twilio', from, to, text });
    app.warden.metrics.deliveryCallbacks.inc({ provider: 'twilio', outcome: `inbound_${result}` });
    return reply.code(204).send();
  });
};

export default twilioCallbacks;
