/**
 * SES through SNS HTTPS subscriptions, authenticated in sns.ts (the secret path token
 * SES_SNS_TOKEN, the RSA signature against SES_SNS_SIGNING_CERT, a pinned topic):
 * - events, at `<callback base>/callbacks/v1/ses/<SES_SNS_TOKEN>` (topic SES_SNS_TOPIC_ARN):
 *   Delivery; Bounce (Permanent: permanent, otherwise transient) and Reject (permanent);
 *   others ignored;
 * - receipts of the canary's mailbox, at `.../ses/<SES_SNS_TOKEN>/inbound` (topic
 *   SES_INBOUND_TOPIC_ARN): the canary's magic link coming back (src/canary/inbound.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { answerCanaryEmail } from '../../canary/inbound';
import { mimeTexts } from '../../canary/mail';
import { applyReport, type DeliveryReport } from '../../delivery/reports';
import { decodeTagValue, SES_TAG_NAME } from '../../providers/idempotency';
import { ApiError } from '../errors';
import { describedRawBody } from '../plugins/openapi';
import { CALLBACK_BASE } from './common';
import { sesEvents, sesInbound } from './schemas';
import { acceptSns, snsSigningKey } from './sns';

interface SesEvent {
  eventType?: unknown;
  notificationType?: unknown;
  mail?: { messageId?: unknown; tags?: Record<string, unknown> };
  bounce?: { bounceType?: unknown; bouncedRecipients?: Array<{ status?: unknown }> };
}

function report(event: SesEvent): DeliveryReport | undefined {
  const kind = event.eventType ?? event.notificationType;
  const tag = event.mail?.tags?.[SES_TAG_NAME];
  const tagValue = Array.isArray(tag) && typeof tag[0] === 'string' ? tag[0] : undefined;
  const base = {
    provider: 'ses' as const,
    ...(typeof event.mail?.messageId === 'string' ? { providerMessageId: event.mail.messageId } : {}),
    ...(tagValue ? { idempotencyKey: decodeTagValue(tagValue) } : {}),
  };
  if (!base.providerMessageId && !base.idempotencyKey) return undefined;
  if (kind === 'Delivery') return { ...base, outcome: 'delivered', report: 'Delivery' };
  if (kind === 'Bounce') {
    const status = event.bounce?.bouncedRecipients?.[0]?.status;
    return {
      ...base,
      outcome: 'failed',
      report: 'Bounce',
      errorClass: event.bounce?.bounceType === 'Permanent' ? 'permanent' : 'transient',
      ...(typeof status === 'string' ? { errorCode: status.slice(0, 32) } : {}),
    };
  }
  if (kind === 'Reject') return { ...base, outcome: 'failed', report: 'Reject', errorClass: 'permanent' };
  return undefined;
}

interface SesReceipt {
  notificationType?: unknown;
  mail?: { destination?: unknown };
  receipt?: { recipients?: unknown; action?: { type?: unknown; encoding?: unknown } };
  content?: unknown;
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

const sesCallbacks: FastifyPluginAsync = async (app) => {
  // SNS posts JSON as text/plain; keep it as text and parse it here
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    ['application/json', 'text/plain'],
    { parseAs: 'string', bodyLimit: 256 * 1024 },
    (_request, body, done) => done(null, body),
  );

  const { sesSnsTopicArn, sesInboundTopicArn } = app.warden.config.delivery;
  const key = snsSigningKey(app);

  app.post<{ Params: { token: string } }>(
    `${CALLBACK_BASE}/ses/:token`,
    // the body stays text until the token and signature hold: its schema is the document's (schemas.ts)
    { bodyLimit: 256 * 1024, schema: sesEvents, validatorCompiler: describedRawBody },
    async (request, reply) => {
      const message = await acceptSns(app, request, key, { topicArn: sesSnsTopicArn, what: 'SES events' });
      if (!message) return reply.code(204).send();
      let event: SesEvent;
      try {
        event = JSON.parse(typeof message.Message === 'string' ? message.Message : '') as SesEvent;
      } catch {
        throw new ApiError(400, 'invalid_request', 'the notification does not carry an SES event');
      }
      // the Message is JSON of any shape: only an object can be an SES event
      const r = typeof event === 'object' && event !== null ? report(event) : undefined;
      if (!r) {
        app.warden.metrics.deliveryCallbacks.inc({ provider: 'ses', outcome: 'ignored' });
        return reply.code(204).send();
      }
      const result = await applyReport(app.warden, r);
      app.warden.metrics.deliveryCallbacks.inc({ provider: 'ses', outcome: result === 'applied' ? r.outcome : result });
      return reply.code(204).send();
    },
  );

  /**
   * SES receiving: a receipt rule for the canary user's address with an SNS action publishes
   * the whole message (content, base64 or UTF-8) to a topic subscribed here. Authenticated
   * exactly like the events above; the magic link in it is the canary's (src/canary/inbound.ts).
   */
  app.post<{ Params: { token: string } }>(
    `${CALLBACK_BASE}/ses/:token/inbound`,
    { bodyLimit: 256 * 1024, schema: sesInbound, validatorCompiler: describedRawBody },
    async (request, reply) => {
      const message = await acceptSns(app, request, key, { topicArn: sesInboundTopicArn, what: 'SES receipts' });
      if (!message) return reply.code(204).send();
      let receipt: SesReceipt;
      try {
        receipt = JSON.parse(typeof message.Message === 'string' ? message.Message : '') as SesReceipt;
      } catch {
        throw new ApiError(400, 'invalid_request', 'the notification does not carry an SES receipt');
      }
      if (typeof receipt !== 'object' || receipt === null || Array.isArray(receipt))
        throw new ApiError(400, 'invalid_request', 'the notification does not carry an SES receipt');
      // another notification (SES's setup test), or a receipt of an action that carries no content
      if (
        receipt.notificationType !== 'Received' ||
        receipt.receipt?.action?.type !== 'SNS' ||
        typeof receipt.content !== 'string'
      ) {
        app.warden.metrics.deliveryCallbacks.inc({ provider: 'ses', outcome: 'inbound_ignored' });
        return reply.code(204).send();
      }
      const to = strings(receipt.receipt.recipients);
      if (to.length === 0) to.push(...strings(receipt.mail?.destination));
      if (to.length === 0) throw new ApiError(400, 'invalid_request', 'the receipt names no recipient');
      const raw =
        receipt.receipt.action.encoding === 'BASE64'
          ? Buffer.from(receipt.content, 'base64')
          : Buffer.from(receipt.content, 'utf8');
      const result = await answerCanaryEmail(app, request, { provider: 'ses', to, texts: mimeTexts(raw) });
      app.warden.metrics.deliveryCallbacks.inc({ provider: 'ses', outcome: `inbound_${result}` });
      return reply.code(204).send();
    },
  );
};

export default sesCallbacks;
