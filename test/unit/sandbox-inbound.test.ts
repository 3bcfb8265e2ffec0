/**
 * The sandbox as the canary's phone (POST /sandbox/inbound): an SMS either provider delivers to
 * a registered number comes back through that number's provider's incoming-message webhook,
 * signed as the provider signs, so Warden's own signature checks accept it. A lost message
 * never comes back; other numbers get nothing.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePublicKey, verifyPlivo, verifySns, verifyTwilio } from '../../src/delivery/callbackAuth';
import { findMagicLinks, mimeTexts } from '../../src/canary/mail';
import { sandboxApp } from '../../src/sandbox/app';
import { CallbackSender, type Callback } from '../../src/sandbox/callbacks';
import { SandboxState } from '../../src/sandbox/state';

/** Keeps what would be sent instead of sending it. */
class Recorder extends CallbackSender {
  sent: Callback[] = [];
  override schedule(callback: Callback): void {
    this.sent.push(callback);
  }
}

const CANARY = '+15550107788';
const TWILIO_URL = 'https://warden.example/callbacks/v1/twilio/inbound';
const PLIVO_URL = 'https://warden.example/callbacks/v1/plivo/inbound';
let app: FastifyInstance;
let state: SandboxState;
let recorder: Recorder;

const basic = (user: string) => `Basic ${Buffer.from(`${user}:token`).toString('base64')}`;
const twilioSend = (to: string) =>
  app.inject({
    method: 'POST',
    url: '/2010-04-01/Accounts/AC1/Messages.json',
    headers: { authorization: basic('AC1'), 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ To: to, From: '+15005550006', Body: 'Your code is 123456.' }).toString(),
  });
const plivoSend = (to: string) =>
  app.inject({
    method: 'POST',
    url: '/v1/Account/MA1/Message/',
    headers: { authorization: basic('MA1') },
    payload: { src: '+15005550007', dst: to, text: 'Your code is 654321.' },
  });
const inbound = () => recorder.sent.filter((c) => c.url.endsWith('/inbound'));

beforeAll(async () => {
  state = new SandboxState();
  recorder = new Recorder();
  app = Fastify();
  await app.register(sandboxApp, { state, callbacks: recorder });
  await app.ready();
});
afterAll(() => app.close());
beforeEach(async () => {
  recorder.sent = [];
  await app.inject({ method: 'DELETE', url: '/sandbox/inbound' });
  await app.inject({ method: 'DELETE', url: '/sandbox/mailboxes' });
  await app.inject({ method: 'DELETE', url: '/sandbox/faults' });
});

describe('sandbox inbound numbers', () => {
  it('registers a number without ever showing its token, and refuses a malformed one', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/sandbox/inbound',
      payload: { number: CANARY, provider: 'twilio', url: TWILIO_URL, auth_token: 'secret-token' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ numbers: [{ number: CANARY, provider: 'twilio', url: TWILIO_URL }] });
    expect(res.body).not.toContain('secret-token');
    const bad = await app.inject({
      method: 'POST',
      url: '/sandbox/inbound',
      payload: { number: 'call me', provider: 'twilio', url: TWILIO_URL, auth_token: 't' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('hands an SMS from either provider back through Twilio, signed with the number token', async () => {
    await app.inject({
      method: 'POST',
      url: '/sandbox/inbound',
      payload: { number: CANARY, provider: 'twilio', url: TWILIO_URL, auth_token: 'tw-token' },
    });
    expect((await twilioSend(CANARY)).statusCode).toBe(201);
    expect((await plivoSend(CANARY)).statusCode).toBe(202);
    expect((await twilioSend('+15550000001')).statusCode).toBe(201);
    const calls = inbound();
    expect(calls.map((c) => [c.params.To, c.params.Body])).toEqual([
      [CANARY, 'Your code is 123456.'],
      [CANARY, 'Your code is 654321.'],
    ]);
    for (const call of calls) {
      expect(verifyTwilio('tw-token', call.headers['X-Twilio-Signature'], TWILIO_URL, call.params)).toBe(true);
      expect(verifyTwilio('other', call.headers['X-Twilio-Signature'], TWILIO_URL, call.params)).toBe(false);
    }
  });

  it('hands it back through Plivo, numbers without the +, signed V3', async () => {
    await app.inject({
      method: 'POST',
      url: '/sandbox/inbound',
      payload: { number: CANARY, provider: 'plivo', url: PLIVO_URL, auth_token: 'pl-token' },
    });
    await twilioSend(CANARY);
    const [call] = inbound();
    expect(call!.params).toMatchObject({ To: CANARY.slice(1), From: '15005550006', Text: 'Your code is 123456.' });
    const sig = call!.headers['X-Plivo-Signature-V3'];
    const nonce = call!.headers['X-Plivo-Signature-V3-Nonce'];
    expect(verifyPlivo('pl-token', sig, nonce, PLIVO_URL, call!.params)).toBe(true);
  });

  it('never hands back a message the provider lost', async () => {
    await app.inject({
      method: 'POST',
      url: '/sandbox/inbound',
      payload: { number: CANARY, provider: 'twilio', url: TWILIO_URL, auth_token: 'tw-token' },
    });
    await app.inject({ method: 'POST', url: '/sandbox/faults', payload: { provider: 'twilio', mode: 'undelivered' } });
    expect((await twilioSend(CANARY)).statusCode).toBe(201);
    expect(inbound()).toEqual([]);
  });
});

const MAILBOX = 'Canary@Ops.Example';
const PARSE_URL = 'https://warden.example/callbacks/v1/sendgrid/inbound/parse-path-token-0123';
const RECEIPT_URL = 'https://warden.example/callbacks/v1/ses/sns-path-token-0123456/inbound';
const CONFIRM = 'https://warden.example/browser/api/v1/identity/auth/magic-link/verify';
const LINK = `${CONFIRM}?challenge=0b6f3a52-6c1e-4f7e-9a51-2c4d8e0f1a23&token=${'A'.repeat(43)}`;
const TEXT = `Sign in to Warden by opening this link:\n\n${LINK}\n\nThe link works once.`;
const HTML = `<p><a href="${LINK.replace(/&/g, '&amp;')}">Sign in</a></p>`;

const sendgridSend = (to: string) =>
  app.inject({
    method: 'POST',
    url: '/v3/mail/send',
    headers: { authorization: 'Bearer SG.key' },
    payload: {
      personalizations: [{ to: [{ email: to }] }],
      from: { email: 'no-reply@warden.example' },
      subject: 'Your Warden sign-in link',
      content: [
        { type: 'text/plain', value: TEXT },
        { type: 'text/html', value: HTML },
      ],
    },
  });
const sesSend = (to: string) =>
  app.inject({
    method: 'POST',
    url: '/ses/',
    headers: {
      authorization: 'AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/ses/aws4_request',
      'content-type': 'application/x-www-form-urlencoded',
    },
    payload: new URLSearchParams({
      Action: 'SendEmail',
      Source: 'no-reply@warden.example',
      'Destination.ToAddresses.member.1': to,
      'Message.Subject.Data': 'Your Warden sign-in link',
      'Message.Body.Text.Data': TEXT,
      'Message.Body.Html.Data': HTML,
    }).toString(),
  });
const mailboxCalls = () => recorder.sent.filter((c) => c.url === PARSE_URL || c.url === RECEIPT_URL);

describe('sandbox inbound mailboxes', () => {
  it('registers a mailbox per provider without ever showing its URL, and refuses a malformed one', async () => {
    const parse = await app.inject({
      method: 'POST',
      url: '/sandbox/mailboxes',
      payload: { address: MAILBOX, provider: 'sendgrid', url: PARSE_URL },
    });
    expect(parse.statusCode).toBe(200);
    const ses = await app.inject({
      method: 'POST',
      url: '/sandbox/mailboxes',
      payload: { address: MAILBOX, provider: 'ses', url: RECEIPT_URL },
    });
    const { mailboxes } = ses.json<{ mailboxes: Array<Record<string, string>> }>();
    expect(mailboxes.map((m) => [m.address, m.provider])).toEqual([
      [MAILBOX, 'sendgrid'],
      [MAILBOX, 'ses'],
    ]);
    expect(mailboxes[1]!.public_key).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(ses.body).not.toContain('path-token');
    expect((await app.inject({ method: 'GET', url: '/sandbox/mailboxes' })).body).not.toContain('path-token');
    for (const payload of [
      { address: 'not an address', provider: 'sendgrid', url: PARSE_URL },
      { address: MAILBOX, provider: 'mailgun', url: PARSE_URL },
      { address: MAILBOX, provider: 'sendgrid', url: PARSE_URL, private_key: '-----BEGIN PRIVATE KEY-----x' },
    ]) {
      const bad = await app.inject({ method: 'POST', url: '/sandbox/mailboxes', payload });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ error: 'invalid_request' });
    }
  });

  it('hands an email SendGrid delivered back as an Inbound Parse post', async () => {
    await app.inject({
      method: 'POST',
      url: '/sandbox/mailboxes',
      payload: { address: MAILBOX, provider: 'sendgrid', url: PARSE_URL },
    });
    expect((await sendgridSend('canary@ops.example')).statusCode).toBe(202);
    expect((await sendgridSend('someone@ops.example')).statusCode).toBe(202);
    // the mailbox receives through SendGrid only: what SES delivers does not come back here
    expect((await sesSend('canary@ops.example')).statusCode).toBe(200);
    const calls = mailboxCalls();
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.url).toBe(PARSE_URL);
    expect(call.body!.contentType).toMatch(/^multipart\/form-data; boundary=/);
    const form = await new Response(call.body!.text, {
      headers: { 'content-type': call.body!.contentType },
    }).formData();
    expect(form.get('to')).toBe('canary@ops.example');
    expect(form.get('text')).toBe(TEXT);
    expect(form.get('html')).toBe(HTML);
    expect(JSON.parse(form.get('envelope') as string)).toEqual({
      to: ['canary@ops.example'],
      from: 'no-reply@warden.example',
    });
  });

  it('hands an email SES delivered back as an SES receipt through SNS, signed', async () => {
    const registered = await app.inject({
      method: 'POST',
      url: '/sandbox/mailboxes',
      payload: { address: MAILBOX, provider: 'ses', url: RECEIPT_URL },
    });
    const key = parsePublicKey(
      registered.json<{ mailboxes: Array<{ public_key: string }> }>().mailboxes[0]!.public_key,
    );
    expect((await sesSend('canary@ops.example')).statusCode).toBe(200);
    const [call] = mailboxCalls();
    const notification = JSON.parse(call!.body!.text) as Record<string, string>;
    expect(notification).toMatchObject({ Type: 'Notification', Subject: 'Amazon SES Email Receipt Notification' });
    expect(verifySns(key, notification)).toBe(true);
    expect(verifySns(key, { ...notification, Message: notification.Message!.replace('canary', 'other') })).toBe(false);
    const receipt = JSON.parse(notification.Message!) as {
      notificationType: string;
      receipt: { recipients: string[]; action: { type: string; encoding: string } };
      content: string;
    };
    expect(receipt.notificationType).toBe('Received');
    expect(receipt.receipt).toMatchObject({
      recipients: ['canary@ops.example'],
      action: { type: 'SNS', encoding: 'BASE64' },
    });
    const texts = mimeTexts(Buffer.from(receipt.content, 'base64'));
    expect(texts.map((t) => t.type)).toEqual(['text/plain', 'text/html']);
    expect(texts[1]!.text).toBe(HTML);
    expect(findMagicLinks(texts, CONFIRM)).toHaveLength(1);
  });

  it('never hands back an email the provider lost', async () => {
    await app.inject({
      method: 'POST',
      url: '/sandbox/mailboxes',
      payload: { address: MAILBOX, provider: 'sendgrid', url: PARSE_URL },
    });
    await app.inject({
      method: 'POST',
      url: '/sandbox/faults',
      payload: { provider: 'sendgrid', mode: 'undelivered' },
    });
    expect((await sendgridSend('canary@ops.example')).statusCode).toBe(202);
    expect(mailboxCalls()).toEqual([]);
  });
});
