/**
 * The sandbox as the canary's phone (POST /sandbox/inbound): an SMS either provider delivers to
 * a registered number comes back through that number's provider's incoming-message webhook,
 * signed as the provider signs, so Warden's own signature checks accept it. A lost message
 * never comes back; other numbers get nothing.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyPlivo, verifyTwilio } from '../../src/delivery/callbackAuth';
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
