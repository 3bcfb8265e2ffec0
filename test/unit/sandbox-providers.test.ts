import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sandboxApp } from '../../src/sandbox/app';
import { CallbackSender } from '../../src/sandbox/callbacks';
import { startSandbox } from '../../src/sandbox/server';
import { SandboxState } from '../../src/sandbox/state';

// The provider endpoints answer bad input the way the providers do, so adapters meet the
// same error shapes in tests as in production. Requests here are hand-built on purpose:
// they are what the SDKs never send.

let app: FastifyInstance;
let state: SandboxState;
const basic = (user: string, password = 'token') => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = 'application/x-www-form-urlencoded';

beforeAll(async () => {
  state = new SandboxState({ callbacks: false });
  app = Fastify();
  await app.register(sandboxApp, { state, callbacks: new CallbackSender() });
  await app.ready();
});

afterAll(() => app.close());

beforeEach(() => {
  state.clearFaults();
  state.clearMessages();
});

describe('provider-shaped validation errors', () => {
  it('answers Twilio 21602 for a message without Body and 20003 without credentials', async () => {
    const url = '/2010-04-01/Accounts/AC123/Messages.json';
    const noBody = await app.inject({
      method: 'POST',
      url,
      headers: { authorization: basic('AC123'), 'content-type': FORM },
      payload: form({ To: '+15555550100', From: '+15005550006' }),
    });
    expect(noBody.statusCode).toBe(400);
    expect(noBody.json()).toEqual({
      code: 21602,
      message: 'Message body is required.',
      more_info: 'https://www.twilio.com/docs/errors/21602',
      status: 400,
    });

    const noAuth = await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': FORM },
      payload: form({ To: '+15555550100', From: '+1', Body: 'x' }),
    });
    expect(noAuth.statusCode).toBe(401);
    expect(noAuth.json()).toMatchObject({ code: 20003 });
    expect(state.messages()).toEqual([]);
  });

  it('answers Plivo {api_id, error} for a message without text', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/Account/MA1/Message/',
      headers: { authorization: basic('MA1') },
      payload: { src: '+15005550007', dst: '+15555550100' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ api_id: expect.any(String), error: 'text parameter is required' });
  });

  it('answers SendGrid {errors: [{message, field}]} for mail without a subject and 401 without a key', async () => {
    const mail = {
      personalizations: [{ to: [{ email: 'a@example.com' }] }],
      from: { email: 'no-reply@warden.example' },
      content: [{ type: 'text/plain', value: 'hi' }],
    };
    const res = await app.inject({
      method: 'POST',
      url: '/v3/mail/send',
      headers: { authorization: 'Bearer SG.x' },
      payload: mail,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ errors: [{ message: 'The subject is required.', field: 'subject', help: null }] });

    const unauthenticated = await app.inject({
      method: 'POST',
      url: '/v3/mail/send',
      payload: { ...mail, subject: 's' },
    });
    expect(unauthenticated.statusCode).toBe(401);
  });

  it('answers SES with an XML ErrorResponse for SendEmail without a Source', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/ses/',
      headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKIA/x', 'content-type': FORM },
      payload: form({
        Action: 'SendEmail',
        'Destination.ToAddresses.member.1': 'a@example.com',
        'Message.Subject.Data': 's',
        'Message.Body.Text.Data': 'b',
      }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/text\/xml/);
    expect(res.body).toMatch(/<ErrorResponse[^>]*><Error><Type>Sender<\/Type><Code>ValidationError<\/Code>/);
  });

  it('answers Slack not_authed without a token and records nothing', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/slack/api/chat.postMessage',
      payload: { channel: '#x', text: 'y' },
    });
    expect(res.json()).toEqual({ ok: false, error: 'not_authed' });
    expect(state.slackCalls()).toEqual([]);
  });

  it('answers a 429 fault with Retry-After and the provider error shape', async () => {
    await app.inject({
      method: 'POST',
      url: '/sandbox/faults',
      payload: { provider: 'plivo', mode: 'error', status: 429, retry_after: 9 },
    });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/Account/MA1/Message/',
      headers: { authorization: basic('MA1') },
      payload: { src: '+1500', dst: '+15555550100', text: 'x' },
    });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('9');
    expect(res.json()).toMatchObject({ error: 'too many requests' });
  });
});

describe('held requests', () => {
  it('releases a request held by a timeout fault when the sandbox closes', async () => {
    const sandbox = await startSandbox({ port: 0 });
    await fetch(`${sandbox.url}/sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'sendgrid', mode: 'timeout' }),
    });
    const held = fetch(`${sandbox.url}/v3/mail/send`, {
      method: 'POST',
      headers: { authorization: 'Bearer SG.x', 'content-type': 'application/json' },
      body: '{}',
    }).then(
      () => 'answered',
      () => 'dropped',
    );
    await expect.poll(() => sandbox.state.heldCount).toBe(1);

    await sandbox.close();
    expect(await held).toBe('dropped');
    expect(sandbox.state.heldCount).toBe(0);
  });
});
