/** The sandbox extensions delivery tests rely on: `delay` and `undelivered` faults, event webhooks. */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sandboxApp } from '../../src/sandbox/app';
import { CallbackSender } from '../../src/sandbox/callbacks';
import { SandboxState } from '../../src/sandbox/state';

let app: FastifyInstance;
let state: SandboxState;
const basic = (user: string) => `Basic ${Buffer.from(`${user}:token`).toString('base64')}`;
const twilioSend = (key: string) =>
  app.inject({
    method: 'POST',
    url: '/2010-04-01/Accounts/AC1/Messages.json',
    headers: {
      authorization: basic('AC1'),
      'content-type': 'application/x-www-form-urlencoded',
      'i-twilio-idempotency-token': key,
    },
    payload: new URLSearchParams({ To: '+15555550100', From: '+15005550006', Body: 'code 123456' }).toString(),
  });

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
  state.clearWebhooks();
});

describe('sandbox faults for delivery tests', () => {
  it('lists the new modes in its validation message and shows delay_ms only for delay faults', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/sandbox/faults',
      payload: { provider: 'twilio', mode: 'slow' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ message: string }>().message).toMatch(
      /mode must be one of: error, timeout, permanent, delay, undelivered/,
    );
    const delay = await app.inject({
      method: 'POST',
      url: '/sandbox/faults',
      payload: { provider: 'twilio', mode: 'delay', delay_ms: 150, count: 1 },
    });
    expect(delay.json()).toEqual({
      faults: [{ provider: 'twilio', mode: 'delay', status: 503, count: 1, retry_after: null, delay_ms: 150 }],
    });
    await app.inject({ method: 'POST', url: '/sandbox/faults', payload: { provider: 'plivo', mode: 'error' } });
    const listed = await app.inject({ method: 'GET', url: '/sandbox/faults' });
    expect(listed.json<{ faults: unknown[] }>().faults).toContainEqual({
      provider: 'plivo',
      mode: 'error',
      status: 503,
      count: null,
      retry_after: null,
    });
  });

  it('accepts and records a message under a delay fault before answering, and deduplicates the repeat', async () => {
    state.setFault({ provider: 'twilio', mode: 'delay', status: 503, delayMs: 150, remaining: 1 });
    const started = Date.now();
    const first = await twilioSend('k-delay');
    expect(first.statusCode).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(state.messages()).toHaveLength(1);
    const again = await twilioSend('k-delay');
    expect(again.json<{ sid: string }>().sid).toBe(first.json<{ sid: string }>().sid);
    expect(state.messages()).toHaveLength(1);
    expect(state.requestLog().map((r) => [r.outcome, r.fault])).toEqual([
      ['deduplicated', null],
      ['accepted', 'delay'],
    ]);
  });

  it('accepts a message under an undelivered fault without putting it in the outbox', async () => {
    state.setFault({ provider: 'twilio', mode: 'undelivered', status: 503, remaining: 1 });
    const res = await twilioSend('k-lost');
    expect(res.statusCode).toBe(201);
    expect(state.messages()).toEqual([]);
    expect(state.requestLog()[0]).toMatchObject({ outcome: 'accepted', fault: 'undelivered' });
  });

  it('registers event webhooks with a generated or given key and never shows the private key', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/sandbox/webhooks',
      payload: { provider: 'sendgrid', url: 'ftp://x' },
    });
    expect(bad.statusCode).toBe(400);
    const sendgrid = await app.inject({
      method: 'POST',
      url: '/sandbox/webhooks',
      payload: { provider: 'sendgrid', url: 'http://127.0.0.1:1/events' },
    });
    expect(sendgrid.statusCode).toBe(200);
    expect(sendgrid.json<{ public_key: string }>().public_key).toMatch(/^MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/);
    const ses = await app.inject({
      method: 'POST',
      url: '/sandbox/webhooks',
      payload: { provider: 'ses', url: 'http://127.0.0.1:1/sns' },
    });
    expect(ses.json<{ public_key: string }>().public_key).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const listed = await app.inject({ method: 'GET', url: '/sandbox/webhooks' });
    expect(JSON.stringify(listed.json())).not.toMatch(/PRIVATE/);
    const cleared = await app.inject({ method: 'DELETE', url: '/sandbox/webhooks?provider=sendgrid' });
    expect(cleared.json<{ webhooks: Array<{ provider: string }> }>().webhooks.map((w) => w.provider)).toEqual(['ses']);
  });
});
