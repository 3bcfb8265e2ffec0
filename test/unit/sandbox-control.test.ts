import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeTagValue, encodeTagValue } from '../../src/providers/idempotency';
import { sandboxApp } from '../../src/sandbox/app';
import { CallbackSender } from '../../src/sandbox/callbacks';
import { SandboxState } from '../../src/sandbox/state';

let app: FastifyInstance;
let state: SandboxState;

beforeAll(async () => {
  state = new SandboxState({ callbacks: false, maxEntries: 5 });
  app = Fastify();
  await app.register(sandboxApp, { state, callbacks: new CallbackSender() });
  await app.ready();
});

afterAll(() => app.close());

beforeEach(async () => {
  await app.inject({ method: 'DELETE', url: '/sandbox/faults' });
  await app.inject({ method: 'DELETE', url: '/sandbox/messages' });
});

async function postFault(payload: unknown) {
  return app.inject({ method: 'POST', url: '/sandbox/faults', payload: payload as object });
}

describe('sandbox control API validation', () => {
  it.each([
    ['an unknown provider', { provider: 'acme', mode: 'error' }, /provider must be one of: twilio, plivo/],
    ['an unknown mode', { provider: 'twilio', mode: 'explode' }, /mode must be one of: error, timeout, permanent/],
    ['a missing mode', { provider: 'twilio' }, /required properties mode/],
    ['a non-error status', { provider: 'twilio', mode: 'error', status: 200 }, /status must be >= 400/],
    ['a zero count', { provider: 'twilio', mode: 'error', count: 0 }, /count must be >= 1/],
    ['a fractional count', { provider: 'twilio', mode: 'error', count: 1.5 }, /count/],
    ['a negative retry_after', { provider: 'twilio', mode: 'error', status: 429, retry_after: -1 }, /retry_after/],
    ['a misspelled field', { provider: 'twilio', mode: 'error', cuont: 3 }, /unknown properties: cuont/],
    ['a non-object body', [1, 2], /must be object/],
  ])('answers 400 JSON for %s and installs no fault', async (_name, payload, message) => {
    const res = await postFault(payload);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const body = res.json<{ error: string; message: string }>();
    expect(body.error).toBe('invalid_request');
    expect(body.message).toMatch(message);
    expect(state.listFaults()).toEqual([]);
  });

  it('answers 400 JSON for a body that is not JSON', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/sandbox/faults',
      headers: { 'content-type': 'application/json' },
      payload: '{"provider":',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('defaults an error fault to 503 until cleared, and clears per provider', async () => {
    const res = await postFault({ provider: 'twilio', mode: 'error' });
    expect(res.statusCode).toBe(200);
    await postFault({ provider: 'ses', mode: 'timeout', count: 2 });
    expect(state.listFaults()).toEqual(
      expect.arrayContaining([
        { provider: 'twilio', mode: 'error', status: 503 },
        { provider: 'ses', mode: 'timeout', status: 503, remaining: 2 },
      ]),
    );
    const cleared = await app.inject({ method: 'DELETE', url: '/sandbox/faults?provider=twilio' });
    expect(cleared.json()).toEqual({
      faults: [{ provider: 'ses', mode: 'timeout', status: 503, count: 2, retry_after: null }],
    });
    const bad = await app.inject({ method: 'DELETE', url: '/sandbox/faults?provider=acme' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('validates status page updates', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/sandbox/status',
      payload: { provider: 'twilio', indicator: 'on-fire' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ message: string }>().message).toMatch(/indicator must be one of: none, minor, major, critical/);

    const ok = await app.inject({
      method: 'POST',
      url: '/sandbox/status',
      payload: { provider: 'plivo', indicator: 'critical' },
    });
    expect(ok.json()).toEqual({
      provider: 'plivo',
      status: { indicator: 'critical', description: 'Major Service Outage' },
    });
    const page = await app.inject({ method: 'GET', url: '/status/plivo/api/v2/status.json' });
    expect(page.json()).toMatchObject({ page: { name: 'Plivo' }, status: { indicator: 'critical' } });
  });

  it('answers a status page request for an unknown provider with 404 JSON', async () => {
    const res = await app.inject({ method: 'GET', url: '/status/acme/api/v2/status.json' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
  });

  it('keeps only the newest maxEntries messages, newest first', async () => {
    for (let i = 0; i < 7; i += 1) {
      state.addMessage({
        id: `m${i}`,
        provider: 'twilio',
        channel: 'sms',
        to: '+15555550100',
        subject: null,
        body: `b${i}`,
        idempotency_key: null,
      });
    }
    const res = await app.inject({ method: 'GET', url: '/sandbox/messages?to=%2B15555550100' });
    expect(res.json<{ messages: { id: string }[] }>().messages.map((m) => m.id)).toEqual([
      'm6',
      'm5',
      'm4',
      'm3',
      'm2',
    ]);
  });

  it('counts a fault down and then lets calls through', () => {
    state.setFault({ provider: 'plivo', mode: 'error', status: 500, remaining: 2 });
    expect(state.takeFault('plivo')?.status).toBe(500);
    expect(state.takeFault('plivo')?.status).toBe(500);
    expect(state.takeFault('plivo')).toBeUndefined();
  });
});

describe('SES tag encoding of idempotency keys', () => {
  it.each(['challenge-0f8e/deliver:1', 'plain-key.v1@x', 'under_score', 'h.looks-hashed', 'ünïcode ☃'])(
    'round-trips %s through tag-safe characters',
    (key) => {
      const encoded = encodeTagValue(key);
      expect(encoded).toMatch(/^[A-Za-z0-9_\-.@]+$/);
      expect(decodeTagValue(encoded)).toBe(key);
    },
  );

  it('hashes a key too long for a tag value into a stable, valid value', () => {
    const key = '/'.repeat(200);
    const encoded = encodeTagValue(key);
    expect(encoded).toMatch(/^h\.[0-9a-f]{64}$/);
    expect(encodeTagValue(key)).toBe(encoded);
  });
});
