/**
 * Who may report deliveries: each provider proves itself by its own signature scheme.
 * Pure functions over what the request carried; the routes in src/api/callbacks call them.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import * as plivo from 'plivo';
import twilio from 'twilio';

/** Twilio: X-Twilio-Signature, HMAC-SHA1 of the full URL and the sorted POST parameters. */
export function verifyTwilio(
  authToken: string,
  signature: string | undefined,
  url: string,
  params: Record<string, string>,
): boolean {
  if (!signature) return false;
  return twilio.validateRequest(authToken, signature, url, params);
}

/** Plivo: X-Plivo-Signature-V3 (+ nonce), HMAC-SHA256 of the URL, sorted parameters and nonce. */
export function verifyPlivo(
  authToken: string,
  signature: string | undefined,
  nonce: string | undefined,
  url: string,
  params: Record<string, string>,
): boolean {
  if (!signature || !nonce) return false;
  try {
    return plivo.validateV3Signature('POST', url, nonce, authToken, signature, params) === true;
  } catch {
    return false;
  }
}

/** The verification key SendGrid shows: base64 of the DER SubjectPublicKeyInfo, or a PEM. */
export function parsePublicKey(value: string): KeyObject {
  const text = value.trim();
  if (text.startsWith('-----BEGIN')) return createPublicKey(text);
  return createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
}

/**
 * SendGrid's signed Event Webhook: ECDSA (P-256, SHA-256, DER signature in base64) over the
 * timestamp header followed by the raw body, byte for byte.
 */
export function verifySendgrid(
  key: KeyObject,
  rawBody: Buffer,
  signature: string | undefined,
  timestamp: string | undefined,
): boolean {
  if (!signature || !timestamp) return false;
  try {
    return verify(
      'sha256',
      Buffer.concat([Buffer.from(timestamp, 'utf8'), rawBody]),
      key,
      Buffer.from(signature, 'base64'),
    );
  } catch {
    return false;
  }
}

const NOTIFICATION_FIELDS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'];
const SUBSCRIPTION_FIELDS = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];

/** SNS's string to sign: the message's fields in a fixed order, each as "Name\nvalue\n". */
export function snsCanonical(message: Record<string, unknown>): string {
  const fields = message.Type === 'Notification' ? NOTIFICATION_FIELDS : SUBSCRIPTION_FIELDS;
  let out = '';
  for (const name of fields) {
    const value = message[name];
    if (typeof value === 'string') out += `${name}\n${value}\n`;
  }
  return out;
}

/**
 * An SNS message signature, checked offline against the configured signing certificate (or
 * its public key): SignatureVersion 1 is RSA SHA-1, 2 is RSA SHA-256. The certificate named by
 * SigningCertURL is never fetched: an operator pins the one to trust (and rotates it).
 */
export function verifySns(key: KeyObject, message: Record<string, unknown>): boolean {
  const signature = message.Signature;
  if (typeof signature !== 'string') return false;
  const algorithm = message.SignatureVersion === '2' ? 'sha256' : message.SignatureVersion === '1' ? 'sha1' : undefined;
  if (!algorithm) return false;
  try {
    return verify(algorithm, Buffer.from(snsCanonical(message), 'utf8'), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
