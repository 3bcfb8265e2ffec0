import { createHmac, randomBytes, randomUUID, sign } from 'node:crypto';
import type { Logger } from '../telemetry/logger';

/**
 * Twilio's request signature: base64 HMAC-SHA1, keyed with the auth token, over the full
 * callback URL followed by every POST parameter as name+value, sorted by name.
 * https://www.twilio.com/docs/usage/security#validating-requests
 */
export function twilioSignature(authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => acc + key + params[key], url);
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf8')).digest('base64');
}

/**
 * Plivo's V3 signature: base64 HMAC-SHA256, keyed with the auth token, over
 * `<url without query>?<sorted query k=v&...>[.]<sorted params kv...>.<nonce>`,
 * mirroring plivo-node's validateV3Signature so that the SDK's validator accepts it.
 */
export function plivoV3Signature(
  authToken: string,
  url: string,
  params: Record<string, string>,
  nonce: string,
): string {
  const parsed = new URL(url);
  const query = new Map<string, string[]>();
  for (const [key, value] of parsed.searchParams) query.set(key, [...(query.get(key) ?? []), value]);
  const sortedQuery = [...query.keys()]
    .sort()
    .flatMap((key) => (query.get(key) ?? []).sort().map((value) => `${key}=${value}`))
    .join('&');
  const hasParams = Object.keys(params).length > 0;
  let base = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  if (sortedQuery.length > 0 || hasParams) base += `?${sortedQuery}`;
  if (sortedQuery.length > 0 && hasParams) base += '.';
  base += Object.keys(params)
    .sort()
    .map((key) => `${key}${params[key]}`)
    .join('');
  return createHmac('sha256', authToken).update(`${base}.${nonce}`).digest('base64');
}

export interface Callback {
  url: string;
  /** form parameters (Twilio, Plivo) */
  params: Record<string, string>;
  headers: Record<string, string>;
  /** a raw body instead of the form (SendGrid's JSON events, SNS's text/plain JSON) */
  body?: { contentType: string; text: string };
}

/** `undelivered`: the carrier could not deliver (Twilio 30003 "Unreachable destination handset"). */
export function twilioDeliveredCallback(
  url: string,
  authToken: string,
  message: { sid: string; accountSid: string; from: string; to: string },
  status: 'delivered' | 'undelivered' = 'delivered',
): Callback {
  const params: Record<string, string> = {
    AccountSid: message.accountSid,
    ApiVersion: '2010-04-01',
    From: message.from,
    MessageSid: message.sid,
    MessageStatus: status,
    SmsSid: message.sid,
    SmsStatus: status,
    To: message.to,
  };
  if (status === 'undelivered') params.ErrorCode = '30003';
  return { url, params, headers: { 'X-Twilio-Signature': twilioSignature(authToken, url, params) } };
}

export function plivoDeliveredCallback(
  url: string,
  authToken: string,
  message: { uuid: string; from: string; to: string },
  status: 'delivered' | 'undelivered' = 'delivered',
): Callback {
  const params = {
    From: message.from,
    To: message.to,
    Status: status,
    MessageUUID: message.uuid,
    ParentMessageUUID: message.uuid,
    PartInfo: '1 of 1',
    TotalAmount: '0.00000',
    TotalRate: '0.00000',
    Units: '1',
    ErrorCode: status === 'undelivered' ? '200' : '',
  };
  const nonce = randomBytes(10).toString('hex');
  return {
    url,
    params,
    headers: {
      'X-Plivo-Signature-V3': plivoV3Signature(authToken, url, params, nonce),
      'X-Plivo-Signature-V3-Nonce': nonce,
    },
  };
}

/** Twilio's incoming-message webhook: the message as the owner of `to` receives it. */
export function twilioInboundCallback(
  url: string,
  authToken: string,
  message: { from: string; to: string; body: string },
): Callback {
  const sid = `SM${randomBytes(16).toString('hex')}`;
  const params: Record<string, string> = {
    AccountSid: 'AC00000000000000000000000000000000',
    ApiVersion: '2010-04-01',
    Body: message.body,
    From: message.from,
    MessageSid: sid,
    NumMedia: '0',
    NumSegments: '1',
    SmsMessageSid: sid,
    SmsSid: sid,
    SmsStatus: 'received',
    To: message.to,
  };
  return { url, params, headers: { 'X-Twilio-Signature': twilioSignature(authToken, url, params) } };
}

/** Plivo's message URL for an incoming SMS: numbers without the +, the text in `Text`. */
export function plivoInboundCallback(
  url: string,
  authToken: string,
  message: { from: string; to: string; body: string },
): Callback {
  const params = {
    From: message.from.replace(/^\+/, ''),
    To: message.to.replace(/^\+/, ''),
    Type: 'sms',
    Text: message.body,
    MessageUUID: randomUUID(),
    TotalRate: '0.00000',
    TotalAmount: '0.00000',
    Units: '1',
  };
  const nonce = randomBytes(10).toString('hex');
  return {
    url,
    params,
    headers: {
      'X-Plivo-Signature-V3': plivoV3Signature(authToken, url, params, nonce),
      'X-Plivo-Signature-V3-Nonce': nonce,
    },
  };
}

/**
 * SendGrid's Event Webhook: a JSON array of events (custom_args appear as top-level fields),
 * signed with ECDSA P-256 over timestamp + body. https://docs.sendgrid.com/for-developers/tracking-events/getting-started-event-webhook-security-features
 */
export function sendgridEventCallback(
  url: string,
  privateKeyPem: string,
  message: { id: string; to: string; idempotencyKey: string | null },
  outcome: 'delivered' | 'bounce',
): Callback {
  const timestamp = Math.floor(Date.now() / 1000);
  const common = {
    email: message.to,
    timestamp,
    sg_message_id: `${message.id}.filter0001.1.0`,
    'smtp-id': `<${message.id}@sandbox>`,
    ...(message.idempotencyKey ? { idempotency_key: message.idempotencyKey } : {}),
  };
  const events = [
    { ...common, event: 'processed', sg_event_id: randomUUID() },
    outcome === 'delivered'
      ? { ...common, event: 'delivered', sg_event_id: randomUUID(), response: '250 OK' }
      : {
          ...common,
          event: 'bounce',
          type: 'bounce',
          sg_event_id: randomUUID(),
          status: '5.1.1',
          reason: '550 5.1.1 The email account does not exist',
        },
  ];
  const text = JSON.stringify(events);
  const signature = sign('sha256', Buffer.from(`${timestamp}${text}`, 'utf8'), privateKeyPem).toString('base64');
  return {
    url,
    params: {},
    headers: {
      'X-Twilio-Email-Event-Webhook-Signature': signature,
      'X-Twilio-Email-Event-Webhook-Timestamp': String(timestamp),
    },
    body: { contentType: 'application/json', text },
  };
}

/** The string SNS signs for a Notification: https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html */
export function snsStringToSign(m: Record<string, string | undefined>): string {
  const keys =
    m.Type === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return keys
    .filter((k) => m[k] !== undefined)
    .map((k) => `${k}\n${m[k]}\n`)
    .join('');
}

/**
 * An SES event (event publishing format, with the message's tags) delivered by SNS to an
 * HTTP subscription: text/plain JSON, SignatureVersion 2 (RSA SHA-256).
 */
export function sesEventCallback(
  url: string,
  privateKeyPem: string,
  sandboxUrl: string,
  message: { id: string; to: string; from: string; tagValue: string | null },
  outcome: 'Delivery' | 'Bounce',
): Callback {
  const now = new Date().toISOString();
  const mail = {
    timestamp: now,
    messageId: message.id,
    source: message.from,
    destination: [message.to],
    tags: message.tagValue ? { idempotency_key: [message.tagValue] } : {},
  };
  const event =
    outcome === 'Delivery'
      ? {
          eventType: 'Delivery',
          mail,
          delivery: { timestamp: now, recipients: [message.to], smtpResponse: '250 2.6.0 Message received' },
        }
      : {
          eventType: 'Bounce',
          mail,
          bounce: {
            bounceType: 'Permanent',
            bounceSubType: 'General',
            timestamp: now,
            bouncedRecipients: [
              { emailAddress: message.to, status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
            ],
          },
        };
  return snsNotification(url, privateKeyPem, sandboxUrl, {
    topicArn: 'arn:aws:sns:us-east-1:000000000000:warden-ses-events',
    message: JSON.stringify(event),
    timestamp: now,
  });
}

/** An SNS Notification to an HTTP subscription: text/plain JSON, SignatureVersion 2 (RSA SHA-256). */
function snsNotification(
  url: string,
  privateKeyPem: string,
  sandboxUrl: string,
  n: { topicArn: string; message: string; timestamp: string; subject?: string },
): Callback {
  const notification: Record<string, string> = {
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: n.topicArn,
    ...(n.subject ? { Subject: n.subject } : {}),
    Message: n.message,
    Timestamp: n.timestamp,
    SignatureVersion: '2',
    SigningCertURL: `${sandboxUrl}/sandbox/sns/SimpleNotificationService-sandbox.pem`,
    UnsubscribeURL: `${sandboxUrl}/sandbox/sns/unsubscribe`,
  };
  notification.Signature = sign('sha256', Buffer.from(snsStringToSign(notification), 'utf8'), privateKeyPem).toString(
    'base64',
  );
  return {
    url,
    params: {},
    headers: {
      'x-amz-sns-message-type': 'Notification',
      'x-amz-sns-message-id': notification.MessageId!,
      'x-amz-sns-topic-arn': notification.TopicArn!,
    },
    body: { contentType: 'text/plain; charset=UTF-8', text: JSON.stringify(notification) },
  };
}

/** An email as the sandbox delivers it to a mailbox with inbound email. */
export interface InboundMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  html?: string;
}

/** multipart/form-data of text fields, as a browser or SendGrid writes it. */
function formData(fields: Record<string, string>): { contentType: string; text: string } {
  const boundary = `xYzZY${randomBytes(12).toString('hex')}`;
  const parts = Object.entries(fields).map(
    ([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
  );
  return { contentType: `multipart/form-data; boundary=${boundary}`, text: `${parts.join('')}--${boundary}--\r\n` };
}

/**
 * SendGrid Inbound Parse: the received email broken into form fields, posted to the URL the
 * operator configured for the receiving domain (the URL carries Warden's secret path token:
 * Inbound Parse signs nothing).
 */
export function sendgridInboundParseCallback(url: string, mail: InboundMail): Callback {
  const headers = [
    `From: ${mail.from}`,
    `To: ${mail.to}`,
    `Subject: ${mail.subject}`,
    `Message-ID: <${randomUUID()}@sandbox>`,
    'MIME-Version: 1.0',
  ].join('\n');
  const body = formData({
    headers,
    dkim: '{@sandbox : pass}',
    to: mail.to,
    from: mail.from,
    subject: mail.subject,
    text: mail.text,
    ...(mail.html ? { html: mail.html } : {}),
    sender_ip: '192.0.2.25',
    envelope: JSON.stringify({ to: [mail.to], from: mail.from }),
    attachments: '0',
    charsets: JSON.stringify({ to: 'UTF-8', from: 'UTF-8', subject: 'UTF-8', text: 'utf-8', html: 'utf-8' }),
    SPF: 'pass',
  });
  return { url, params: {}, headers: {}, body };
}

/** Quoted-printable (RFC 2045): lines of at most 76 characters, soft breaks where a line is cut. */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const bytes = Buffer.from(line, 'utf8');
    let encoded = '';
    bytes.forEach((b, i) => {
      const last = i === bytes.length - 1;
      const plain = (b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && !last);
      encoded += plain ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
    });
    while (encoded.length > 76) {
      // never cut an =XX escape
      let cut = 75;
      const escape = encoded.lastIndexOf('=', cut - 1);
      if (escape >= cut - 2) cut = escape;
      out.push(`${encoded.slice(0, cut)}=`);
      encoded = encoded.slice(cut);
    }
    out.push(encoded);
  }
  return out.join('\r\n');
}

/** The raw message SES receives: multipart/alternative, text quoted-printable, HTML base64. */
function rawMime(mail: InboundMail, messageId: string, date: Date): string {
  const boundary = `----=_Part_${randomBytes(8).toString('hex')}`;
  const lines = [
    `Return-Path: <${mail.from}>`,
    `From: ${mail.from}`,
    `To: ${mail.to}`,
    `Subject: ${mail.subject}`,
    `Date: ${date.toUTCString()}`,
    `Message-ID: <${messageId}@email.amazonses.com>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=UTF-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(mail.text),
  ];
  if (mail.html)
    lines.push(
      `--${boundary}`,
      'Content-Type: text/html; charset=UTF-8',
      'Content-Transfer-Encoding: base64',
      '',
      ...(Buffer.from(mail.html, 'utf8')
        .toString('base64')
        .match(/.{1,76}/g) ?? []),
    );
  lines.push(`--${boundary}--`, '');
  return lines.join('\r\n');
}

/**
 * SES receiving: a receipt rule with an SNS action (encoding BASE64) publishes the received
 * message to a topic, whose HTTP subscription gets it as an SNS Notification signed with RSA.
 */
export function sesReceiptCallback(
  url: string,
  privateKeyPem: string,
  sandboxUrl: string,
  mail: InboundMail,
): Callback {
  const date = new Date();
  const now = date.toISOString();
  const messageId = randomBytes(16).toString('hex');
  const topicArn = 'arn:aws:sns:us-east-1:000000000000:warden-canary-inbound';
  const receipt = {
    notificationType: 'Received',
    mail: {
      timestamp: now,
      source: mail.from,
      messageId,
      destination: [mail.to],
      headersTruncated: false,
      headers: [
        { name: 'From', value: mail.from },
        { name: 'To', value: mail.to },
        { name: 'Subject', value: mail.subject },
      ],
      commonHeaders: { from: [mail.from], to: [mail.to], subject: mail.subject, messageId },
    },
    receipt: {
      timestamp: now,
      processingTimeMillis: 250,
      recipients: [mail.to],
      spamVerdict: { status: 'PASS' },
      virusVerdict: { status: 'PASS' },
      spfVerdict: { status: 'PASS' },
      dkimVerdict: { status: 'PASS' },
      dmarcVerdict: { status: 'PASS' },
      action: { type: 'SNS', topicArn, encoding: 'BASE64' },
    },
    content: Buffer.from(rawMime(mail, messageId, date), 'utf8').toString('base64'),
  };
  return snsNotification(url, privateKeyPem, sandboxUrl, {
    topicArn,
    subject: 'Amazon SES Email Receipt Notification',
    message: JSON.stringify(receipt),
    timestamp: now,
  });
}

/**
 * Sends delivery callbacks shortly after a message is accepted, as the providers do. Failures
 * are swallowed (a provider does not care whether the receiver was up); close() cancels the
 * pending ones so a closed sandbox leaves no timers or sockets behind.
 */
export class CallbackSender {
  private pending = new Set<{ timer: NodeJS.Timeout; abort: AbortController }>();

  constructor(
    private readonly logger?: Logger,
    private readonly delayMs = 25,
  ) {}

  /** `delayMs`: later than a provider usually calls back (a `late_receipt` fault) */
  schedule(callback: Callback, delayMs = this.delayMs): void {
    const entry = {
      timer: setTimeout(() => void this.send(callback, entry), delayMs),
      abort: new AbortController(),
    };
    entry.timer.unref();
    this.pending.add(entry);
  }

  private async send(callback: Callback, entry: { timer: NodeJS.Timeout; abort: AbortController }): Promise<void> {
    try {
      await fetch(callback.url, {
        method: 'POST',
        headers: {
          'Content-Type': callback.body?.contentType ?? 'application/x-www-form-urlencoded',
          ...callback.headers,
        },
        body: callback.body?.text ?? new URLSearchParams(callback.params).toString(),
        signal: AbortSignal.any([entry.abort.signal, AbortSignal.timeout(5_000)]),
      }).then((res) => res.arrayBuffer());
    } catch (err) {
      this.logger?.debug({ err: { name: (err as Error).name } }, 'sandbox status callback failed');
    } finally {
      this.pending.delete(entry);
    }
  }

  close(): void {
    for (const entry of this.pending) {
      clearTimeout(entry.timer);
      entry.abort.abort();
    }
    this.pending.clear();
  }
}
