/**
 * SES events published to an SNS topic with an HTTPS subscription to
 * `<callback base>/callbacks/v1/ses/<SES_SNS_TOKEN>`. The secret path token is always
 * required; with SES_SNS_SIGNING_CERT set (required in production), every message's RSA
 * signature is verified offline too (SigningCertURL is never fetched), and SES_SNS_TOPIC_ARN
 * pins the topic. The token is a secret: request logs show the path without it. Delivery;
 * Bounce (Permanent: permanent, otherwise transient) and Reject (permanent); others ignored.
 * A SubscriptionConfirmation is confirmed when its signature verified and its SubscribeURL is
 * an https amazonaws.com URL; otherwise it is logged for a responder to confirm by hand.
 */
import type { KeyObject } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { parsePublicKey, verifySns } from '../../delivery/callbackAuth';
import { applyReport, type DeliveryReport } from '../../delivery/reports';
import { decodeTagValue, SES_TAG_NAME } from '../../providers/idempotency';
import { tokensMatch } from '../plugins/bearerAuth';
import { ApiError } from '../errors';
import { CALLBACK_BASE, forged, notConfigured } from './common';

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

const AWS_SNS = /^https:\/\/sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\//;

const sesCallbacks: FastifyPluginAsync = async (app) => {
  // SNS posts JSON as text/plain; keep it as text and parse it here
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    ['application/json', 'text/plain'],
    { parseAs: 'string', bodyLimit: 256 * 1024 },
    (_request, body, done) => done(null, body),
  );

  const { sesSnsToken, sesSnsSigningCert, sesSnsTopicArn } = app.warden.config.delivery;
  const cert: KeyObject | undefined = sesSnsSigningCert ? parsePublicKey(sesSnsSigningCert) : undefined;
  const log = app.warden.logger.child({ component: 'delivery' });

  app.post<{ Params: { token: string } }>(
    `${CALLBACK_BASE}/ses/:token`,
    { bodyLimit: 256 * 1024 },
    async (request, reply) => {
      if (!sesSnsToken) throw notConfigured(app, 'ses', 'SES_SNS_TOKEN is not set');
      // a secret path alone is not enough in production: it ends up in proxies' logs
      if (!cert && app.warden.config.env === 'production')
        throw notConfigured(app, 'ses', 'SES_SNS_SIGNING_CERT is required in production');
      if (!tokensMatch(request.params.token, sesSnsToken)) throw forged(app, 'ses');
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(typeof request.body === 'string' ? request.body : '') as Record<string, unknown>;
      } catch {
        throw new ApiError(400, 'invalid_request', 'the body is not an SNS message');
      }
      if (typeof message !== 'object' || message === null || typeof message.Type !== 'string')
        throw new ApiError(400, 'invalid_request', 'the body is not an SNS message');
      if (cert && !verifySns(cert, message)) throw forged(app, 'ses');
      if (sesSnsTopicArn && message.TopicArn !== sesSnsTopicArn) throw forged(app, 'ses');

      if (message.Type === 'SubscriptionConfirmation') {
        const url = typeof message.SubscribeURL === 'string' ? message.SubscribeURL : '';
        if (cert && AWS_SNS.test(url)) {
          await fetch(url, { signal: AbortSignal.timeout(app.warden.config.providers.timeoutMs) }).then((res) =>
            res.arrayBuffer(),
          );
          log.info({ topic: message.TopicArn }, 'SNS subscription for SES events confirmed');
        } else {
          log.warn(
            { topic: message.TopicArn, subscribeUrl: url },
            'SNS subscription for SES events awaits confirmation: open SubscribeURL to confirm',
          );
        }
        return reply.code(204).send();
      }
      if (message.Type !== 'Notification') return reply.code(204).send();
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
};

export default sesCallbacks;
