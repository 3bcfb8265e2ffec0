/**
 * Genuine credentials for the endpoints that authenticate their callers by signature rather
 * than by the admin token: what Slack, Twilio, Plivo, SendGrid and SNS would send. Tests use
 * them to reach past authentication (fuzzing) and to forge near misses (credential tests).
 */
import { createHmac, randomUUID, sign, type KeyObject } from 'node:crypto';
import { plivoV3Signature, snsStringToSign, twilioSignature } from '../../src/sandbox/callbacks';
import type { Harness } from './harness';

export const nowSeconds = () => String(Math.floor(Date.now() / 1000));

export function slackHeaders(secret: string, body: string, timestamp = nowSeconds()): Record<string, string> {
  return {
    'x-slack-request-timestamp': timestamp,
    'x-slack-signature': `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`,
  };
}

/** The URL a provider signs: the configured public callback base plus path and query. */
export const callbackUrl = (h: Harness, url: string) => `${h.config.delivery.callbackBaseUrl}${url}`;

export function twilioHeaders(
  h: Harness,
  url: string,
  params: Record<string, string>,
  token = h.config.providers.twilio.authToken,
): Record<string, string> {
  return { 'x-twilio-signature': twilioSignature(token, callbackUrl(h, url), params) };
}

export function plivoHeaders(
  h: Harness,
  url: string,
  params: Record<string, string>,
  token = h.config.providers.plivo.authToken,
): Record<string, string> {
  const nonce = String(Math.floor(Math.random() * 1e12));
  return {
    'x-plivo-signature-v3': plivoV3Signature(token, callbackUrl(h, url), params, nonce),
    'x-plivo-signature-v3-nonce': nonce,
  };
}

export function sendgridHeaders(privateKey: KeyObject, body: string, timestamp = nowSeconds()): Record<string, string> {
  return {
    'x-twilio-email-event-webhook-signature': sign(
      'sha256',
      Buffer.from(`${timestamp}${body}`, 'utf8'),
      privateKey,
    ).toString('base64'),
    'x-twilio-email-event-webhook-timestamp': timestamp,
  };
}

/** An SNS message (SignatureVersion 2) signed with `privateKey`, as text/plain JSON. */
export function snsMessage(privateKey: KeyObject, fields: Record<string, string>): string {
  const message: Record<string, string> = {
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: 'arn:aws:sns:us-east-1:000000000000:warden-ses-events',
    Timestamp: new Date().toISOString(),
    SignatureVersion: '2',
    ...fields,
  };
  message.Signature = sign('sha256', Buffer.from(snsStringToSign(message), 'utf8'), privateKey).toString('base64');
  return JSON.stringify(message);
}
