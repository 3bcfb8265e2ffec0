/**
 * The schemas of the provider callbacks: what Twilio, Plivo, SendGrid and SNS send, for the
 * OpenAPI document. They admit whatever the providers send: every field is optional (a
 * handler names what it needs, after the signature), and unknown fields are welcome
 * (`additionalProperties`), since providers add fields without notice. Form posts are
 * validated as such; the JSON and multipart bodies stay raw bytes until their signature or
 * path token holds, so their schemas describe them without being run (describedRawBody).
 */
import { CALLBACK_KEY_PARAM } from '../../providers/idempotency';
import { ErrorBody } from '../errors';

const FORM = 'application/x-www-form-urlencoded';

const text = (description: string) => ({ type: 'string', description }) as const;

function fields(names: Record<string, string>) {
  return Object.fromEntries(Object.entries(names).map(([name, description]) => [name, text(description)]));
}

/** A provider's form post: the fields named here are described, any other is accepted. */
function formBody(description: string, names: Record<string, string>) {
  return {
    content: {
      [FORM]: { schema: { type: 'object', description, properties: fields(names), additionalProperties: true } },
    },
  };
}

/** 204 once the signature holds and the report is applied (or acknowledged and ignored). */
const answered = (what: string) => ({
  204: { type: 'null', description: what },
  400: ErrorBody,
  401: ErrorBody,
  503: ErrorBody,
});

/** The idempotency key Warden appends to the status callback URL it gives the provider. */
const CallbackQuery = {
  type: 'object',
  properties: {
    [CALLBACK_KEY_PARAM]: text('the idempotency key of the send, as Warden put it in the callback URL'),
  },
  additionalProperties: true,
} as const;

/** A secret path token (SES_SNS_TOKEN, SENDGRID_INBOUND_TOKEN): compared in constant time, never logged. */
const TokenParams = {
  type: 'object',
  properties: { token: text('the secret path token the provider was configured with') },
} as const;

export const twilioStatus = {
  summary: "Twilio's message status callback",
  querystring: CallbackQuery,
  body: formBody('A StatusCallback: terminal statuses are applied, others acknowledged.', {
    MessageSid: 'the message',
    SmsSid: 'the message (older name)',
    MessageStatus: 'delivered, undelivered, failed; queued, sent... are acknowledged',
    SmsStatus: 'the status (older name)',
    ErrorCode: "Twilio's error code, when it failed",
    AccountSid: 'the account',
    From: 'the sender',
    To: 'the recipient',
  }),
  response: answered('accepted'),
} as const;

export const twilioInbound = {
  summary: "An SMS to the canary's number (Twilio's incoming-message webhook)",
  body: formBody('The incoming message; the canary reads its code.', {
    From: 'the sender',
    To: "the canary's number",
    Body: 'the text',
    MessageSid: 'the message',
  }),
  response: answered('accepted'),
} as const;

export const plivoStatus = {
  summary: "Plivo's message status callback",
  querystring: CallbackQuery,
  body: formBody('A status callback: delivered, undelivered, failed and rejected are applied, others acknowledged.', {
    MessageUUID: 'the message',
    Status: 'delivered, undelivered, failed, rejected; queued, sent... are acknowledged',
    ErrorCode: "Plivo's error code, when it failed",
    From: 'the sender',
    To: 'the recipient',
  }),
  response: answered('accepted'),
} as const;

export const plivoInbound = {
  summary: "An SMS to the canary's number (Plivo's message URL)",
  body: formBody('The incoming message; the canary reads its code.', {
    From: 'the sender',
    To: "the canary's number",
    Text: 'the text',
    MessageUUID: 'the message',
  }),
  response: answered('accepted'),
} as const;

const SendgridEvent = {
  type: 'object',
  properties: {
    event: text('delivered, bounce and dropped are applied; every other event is acknowledged'),
    sg_message_id: text("SendGrid's message id"),
    idempotency_key: text('the custom argument Warden sent the message with'),
    type: text('of a bounce: blocked (transient) or bounce (permanent)'),
    status: text('the SMTP status of a bounce'),
    email: text('the recipient'),
    timestamp: { type: 'integer' },
  },
  additionalProperties: true,
} as const;

export const sendgridEvents = {
  summary: "SendGrid's signed Event Webhook",
  body: {
    content: {
      'application/json': {
        schema: {
          type: 'array',
          description: 'The events, signed over the raw body.',
          maxItems: 1000,
          items: SendgridEvent,
        },
      },
    },
  },
  response: answered('accepted'),
} as const;

const InboundFields = {
  type: 'object',
  description: 'The received email, as Inbound Parse posts it; attachments are ignored.',
  properties: fields({
    to: 'the To header',
    from: 'the From header',
    subject: 'the subject',
    text: 'the plain-text body',
    html: 'the HTML body',
    envelope: 'JSON: the SMTP envelope, {"to": [...], "from": ...}',
    email: 'the raw MIME message ("POST the raw, full MIME message")',
  }),
  additionalProperties: true,
} as const;

export const sendgridInbound = {
  summary: "An email to the canary's mailbox (SendGrid Inbound Parse)",
  params: TokenParams,
  body: { content: { 'multipart/form-data': { schema: InboundFields }, [FORM]: { schema: InboundFields } } },
  response: answered('accepted'),
} as const;

/** An SNS message as SNS posts it (as text/plain): the SES event or receipt is JSON in `Message`. */
const SnsMessage = {
  type: 'object',
  description: 'An SNS message, RSA-signed by SNS when SES_SNS_SIGNING_CERT is set.',
  properties: fields({
    Type: 'Notification, SubscriptionConfirmation or UnsubscribeConfirmation',
    MessageId: 'the message',
    TopicArn: 'the topic; pinned when configured',
    Message: 'JSON: the SES event or receipt',
    Timestamp: 'when SNS published it',
    SignatureVersion: '1 or 2',
    Signature: 'base64',
    SigningCertURL: 'never fetched: the certificate is configured',
    SubscribeURL: 'of a SubscriptionConfirmation',
    Token: 'of a SubscriptionConfirmation',
  }),
  required: ['Type'],
  additionalProperties: true,
} as const;

const snsBody = { content: { 'text/plain': { schema: SnsMessage }, 'application/json': { schema: SnsMessage } } };

export const sesEvents = {
  summary: 'SES events through SNS',
  description:
    'Delivery, Bounce and Reject are applied; a SubscriptionConfirmation is confirmed when its signature holds.',
  params: TokenParams,
  body: snsBody,
  response: answered('accepted'),
} as const;

export const sesInbound = {
  summary: "An email to the canary's mailbox (an SES receipt through SNS)",
  params: TokenParams,
  body: snsBody,
  response: answered('accepted'),
} as const;
