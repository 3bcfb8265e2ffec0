/**
 * SendGrid's signed Event Webhook (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features):
 * a JSON array of events, ECDSA-signed over the timestamp header and the raw body with the key
 * whose public half is SENDGRID_WEBHOOK_PUBLIC_KEY. delivered; bounce (blocked: transient,
 * otherwise permanent) and dropped (permanent); every other event is acknowledged and ignored.
 * Messages are matched by custom_args.idempotency_key, else by sg_message_id.
 */
import type { KeyObject } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { parsePublicKey, verifySendgrid } from '../../delivery/callbackAuth';
import { applyReport, type DeliveryReport } from '../../delivery/reports';
import { ApiError } from '../errors';
import { CALLBACK_BASE, forged, notConfigured } from './common';

interface SendgridEvent {
  event?: unknown;
  type?: unknown;
  sg_message_id?: unknown;
  idempotency_key?: unknown;
  status?: unknown;
}

const MAX_EVENTS = 1000;

function report(e: SendgridEvent): DeliveryReport | undefined {
  const messageId = typeof e.sg_message_id === 'string' ? e.sg_message_id.split('.')[0] : undefined;
  const base = {
    provider: 'sendgrid' as const,
    ...(messageId ? { providerMessageId: messageId } : {}),
    ...(typeof e.idempotency_key === 'string' ? { idempotencyKey: e.idempotency_key } : {}),
  };
  if (!base.providerMessageId && !base.idempotencyKey) return undefined;
  if (e.event === 'delivered') return { ...base, outcome: 'delivered', report: 'delivered' };
  if (e.event === 'bounce' || e.event === 'dropped') {
    const errorClass = e.event === 'bounce' && e.type === 'blocked' ? 'transient' : 'permanent';
    return {
      ...base,
      outcome: 'failed',
      report: e.event,
      errorClass,
      ...(typeof e.status === 'string' ? { errorCode: e.status.slice(0, 32) } : {}),
    };
  }
  return undefined;
}

const sendgridCallbacks: FastifyPluginAsync = async (app) => {
  // the signature is over the exact bytes: this plugin keeps JSON bodies raw
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_request, body, done) =>
    done(null, body),
  );

  let key: KeyObject | undefined;
  const configured = app.warden.config.delivery.sendgridWebhookPublicKey;
  if (configured) key = parsePublicKey(configured);

  app.post(`${CALLBACK_BASE}/sendgrid/events`, { bodyLimit: 1024 * 1024 }, async (request, reply) => {
    if (!key) throw notConfigured(app, 'sendgrid', 'SENDGRID_WEBHOOK_PUBLIC_KEY is not set');
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const signature = request.headers['x-twilio-email-event-webhook-signature'];
    const timestamp = request.headers['x-twilio-email-event-webhook-timestamp'];
    if (
      !verifySendgrid(
        key,
        raw,
        typeof signature === 'string' ? signature : undefined,
        typeof timestamp === 'string' ? timestamp : undefined,
      )
    ) {
      throw forged(app, 'sendgrid');
    }
    let events: unknown;
    try {
      events = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ApiError(400, 'invalid_request', 'the body is not JSON');
    }
    if (!Array.isArray(events) || events.length > MAX_EVENTS)
      throw new ApiError(400, 'invalid_request', `the body must be an array of at most ${MAX_EVENTS} events`);
    for (const event of events) {
      const r = typeof event === 'object' && event !== null ? report(event as SendgridEvent) : undefined;
      if (!r) {
        app.warden.metrics.deliveryCallbacks.inc({ provider: 'sendgrid', outcome: 'ignored' });
        continue;
      }
      const result = await applyReport(app.warden, r);
      app.warden.metrics.deliveryCallbacks.inc({
        provider: 'sendgrid',
        outcome: result === 'applied' ? r.outcome : result,
      });
    }
    return reply.code(204).send();
  });
};

export default sendgridCallbacks;
