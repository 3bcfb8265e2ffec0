/**
 * SNS HTTPS subscriptions to `<callback base>/callbacks/v1/ses/<SES_SNS_TOKEN>...`: SES events
 * (ses.ts) and, for the delivery canary, SES receipts (the canary's email coming back). Both
 * are authenticated here, the same way: the secret path token is always required; with
 * SES_SNS_SIGNING_CERT set (required in production) every message's RSA signature is verified
 * offline too (SigningCertURL is never fetched), and a pinned topic ARN must match. The token
 * is a secret: request logs show the path without it (src/api/redact.ts). A
 * SubscriptionConfirmation is confirmed when its signature verified and its SubscribeURL is an
 * https amazonaws.com URL; otherwise it is logged for a responder to confirm by hand.
 */
import type { KeyObject } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parsePublicKey, verifySns } from '../../delivery/callbackAuth';
import { tokensMatch } from '../plugins/bearerAuth';
import { ApiError } from '../errors';
import { forged, notConfigured } from './common';

const AWS_SNS = /^https:\/\/sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\//;

export type SnsMessage = Record<string, unknown> & { Type: string };

export interface SnsEndpoint {
  /** the topic this endpoint accepts, when pinned */
  topicArn?: string;
  /** what the subscription carries, for the confirmation's log line */
  what: string;
}

/** The configured signing certificate, parsed once per app. */
export function snsSigningKey(app: FastifyInstance): KeyObject | undefined {
  const pem = app.warden.config.delivery.sesSnsSigningCert;
  return pem ? parsePublicKey(pem) : undefined;
}

/**
 * The Notification an SNS POST carries, once its path token, signature and topic hold;
 * undefined when the request was answered here already (a subscription confirmation, another
 * message type): the route then answers 204. A forged or unsigned call is a 401, a body that
 * is not an SNS message a 400, an endpoint without its token a 503; nothing is changed by any.
 */
export async function acceptSns(
  app: FastifyInstance,
  request: FastifyRequest<{ Params: { token: string } }>,
  key: KeyObject | undefined,
  endpoint: SnsEndpoint,
): Promise<SnsMessage | undefined> {
  const { sesSnsToken } = app.warden.config.delivery;
  if (!sesSnsToken) throw notConfigured(app, 'ses', 'SES_SNS_TOKEN is not set');
  // a secret path alone is not enough in production: it ends up in proxies' logs
  if (!key && app.warden.config.env === 'production')
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
  if (key && !verifySns(key, message)) throw forged(app, 'ses');
  if (endpoint.topicArn && message.TopicArn !== endpoint.topicArn) throw forged(app, 'ses');

  if (message.Type === 'SubscriptionConfirmation') {
    const log = app.warden.logger.child({ component: 'delivery' });
    const url = typeof message.SubscribeURL === 'string' ? message.SubscribeURL : '';
    if (key && AWS_SNS.test(url)) {
      await fetch(url, { signal: AbortSignal.timeout(app.warden.config.providers.timeoutMs) }).then((res) =>
        res.arrayBuffer(),
      );
      log.info({ topic: message.TopicArn }, `SNS subscription for ${endpoint.what} confirmed`);
    } else {
      log.warn(
        { topic: message.TopicArn, subscribeUrl: url },
        `SNS subscription for ${endpoint.what} awaits confirmation: open SubscribeURL to confirm`,
      );
    }
    return undefined;
  }
  if (message.Type !== 'Notification') return undefined;
  return message as SnsMessage;
}
