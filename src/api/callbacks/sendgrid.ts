/**
 * SendGrid's signed Event Webhook (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features):
 * a JSON array of events, ECDSA-signed over the timestamp header and the raw body with the key
 * whose public half is SENDGRID_WEBHOOK_PUBLIC_KEY. delivered; bounce (blocked: transient,
 * otherwise permanent) and dropped (permanent); every other event is acknowledged and ignored.
 * Messages are matched by custom_args.idempotency_key, else by sg_message_id.
 *
 * And Inbound Parse for the canary's mailbox: a multipart/form-data POST per received email
 * (`to`, `from`, `subject`, `text`, `html`, `envelope`..., or the raw message in `email`), to
 * `<callback base>/callbacks/v1/sendgrid/inbound/<SENDGRID_INBOUND_TOKEN>`. Inbound Parse
 * signs nothing here, so the secret path token is what authenticates it (compared in constant
 * time; request logs show the path without it). The magic link in it is the canary's
 * (src/canary/inbound.ts).
 */
import type { KeyObject } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { answerCanaryEmail } from '../../canary/inbound';
import { addressesIn, mimeTexts, type MailText } from '../../canary/mail';
import { parsePublicKey, verifySendgrid } from '../../delivery/callbackAuth';
import { applyReport, type DeliveryReport } from '../../delivery/reports';
import { describedRawBody } from '../plugins/openapi';
import { tokensMatch } from '../plugins/bearerAuth';
import { ApiError } from '../errors';
import { CALLBACK_BASE, forged, formParams, notConfigured } from './common';
import { sendgridEvents, sendgridInbound } from './schemas';

interface SendgridEvent {
  event?: unknown;
  type?: unknown;
  sg_message_id?: unknown;
  idempotency_key?: unknown;
  status?: unknown;
}

const MAX_EVENTS = 1000;
/** an Inbound Parse post carries the whole email, attachments included; a sign-in email is a few kB */
const INBOUND_LIMIT = 2 * 1024 * 1024;

/** An Inbound Parse post's fields: multipart/form-data as SendGrid sends it (a form post is read too). */
async function inboundFields(request: FastifyRequest): Promise<Record<string, string>> {
  if (!Buffer.isBuffer(request.body)) return formParams(request.body);
  let form: FormData;
  try {
    form = await new Response(request.body, {
      headers: { 'content-type': request.headers['content-type'] ?? '' },
    }).formData();
  } catch {
    throw new ApiError(400, 'invalid_request', 'the body is not multipart/form-data');
  }
  const out: Record<string, string> = {};
  // attachments are files: only the text fields are read
  for (const [name, value] of form) if (typeof value === 'string' && !(name in out)) out[name] = value;
  return out;
}

/** The envelope's recipients (what the MX received for), else the To header's addresses. */
function inboundRecipients(fields: Record<string, string>): string[] {
  if (fields.envelope) {
    try {
      const envelope = JSON.parse(fields.envelope) as { to?: unknown };
      if (Array.isArray(envelope?.to)) {
        const to = envelope.to.filter((t): t is string => typeof t === 'string');
        if (to.length) return to;
      }
    } catch {
      // a malformed envelope: the To header still names the recipients
    }
  }
  return fields.to ? addressesIn(fields.to) : [];
}

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

  // Inbound Parse posts multipart/form-data: kept raw here, parsed once the path token holds
  app.addContentTypeParser(
    'multipart/form-data',
    { parseAs: 'buffer', bodyLimit: INBOUND_LIMIT },
    (_request, body, done) => done(null, body),
  );

  app.post<{ Params: { token: string } }>(
    `${CALLBACK_BASE}/sendgrid/inbound/:token`,
    { bodyLimit: INBOUND_LIMIT, schema: sendgridInbound, validatorCompiler: describedRawBody },
    async (request, reply) => {
      const expected = app.warden.config.delivery.sendgridInboundToken;
      if (!expected) throw notConfigured(app, 'sendgrid', 'SENDGRID_INBOUND_TOKEN is not set');
      if (!tokensMatch(request.params.token, expected)) throw forged(app, 'sendgrid');
      const fields = await inboundFields(request);
      const to = inboundRecipients(fields);
      const texts: MailText[] = [
        ...(fields.text ? [{ type: 'text/plain' as const, text: fields.text }] : []),
        ...(fields.html ? [{ type: 'text/html' as const, text: fields.html }] : []),
        // "POST the raw, full MIME message": the whole message in one field
        ...(fields.email ? mimeTexts(Buffer.from(fields.email, 'utf8')) : []),
      ];
      if (to.length === 0) throw new ApiError(400, 'invalid_request', 'to (or envelope) is required');
      if (fields.text === undefined && fields.html === undefined && fields.email === undefined)
        throw new ApiError(400, 'invalid_request', 'text, html or email is required');
      const result = await answerCanaryEmail(app, request, { provider: 'sendgrid', to, texts });
      app.warden.metrics.deliveryCallbacks.inc({ provider: 'sendgrid', outcome: `inbound_${result}` });
      return reply.code(204).send();
    },
  );

  // the body stays raw bytes until the signature holds: its schema is the document's (schemas.ts)
  const eventsRoute = { bodyLimit: 1024 * 1024, schema: sendgridEvents, validatorCompiler: describedRawBody };
  app.post(`${CALLBACK_BASE}/sendgrid/events`, eventsRoute, async (request, reply) => {
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
