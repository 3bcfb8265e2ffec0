/**
 * The sandbox's receipt faults, which the receipt-failover tests rely on: `no_receipt` (the
 * provider takes the message and never calls back) and `late_receipt` (it calls back, late).
 * Callbacks go to a real local HTTP listener; the order they arrive in is the proof, never
 * a measured time.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sandboxApp } from '../../src/sandbox/app';
import { CallbackSender } from '../../src/sandbox/callbacks';
import { SandboxState } from '../../src/sandbox/state';
import { waitFor } from '../helpers/authClient';

let app: FastifyInstance;
let state: SandboxState;
let sender: CallbackSender;
let receiver: Server;
let callbackUrl: string;
/** MessageSid and MessageStatus of every callback received, in arrival order */
let received: Array<{ sid: string; status: string }> = [];

const basic = (user: string) => `Basic ${Buffer.from(`${user}:token`).toString('base64')}`;
async function twilioSend(key: string): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/2010-04-01/Accounts/AC1/Messages.json',
    headers: { authorization: basic('AC1'), 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      To: '+15555550100',
      From: '+15005550006',
      Body: 'code 123456',
      StatusCallback: `${callbackUrl}?idempotency_key=${encodeURIComponent(key)}`,
    }).toString(),
  });
  expect(res.statusCode).toBe(201);
  return res.json<{ sid: string }>().sid;
}
const setFault = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/sandbox/faults', payload });

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const params = new URLSearchParams(body);
      received.push({ sid: params.get('MessageSid') ?? '', status: params.get('MessageStatus') ?? '' });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/status`;
  state = new SandboxState({ callbacks: true });
  sender = new CallbackSender();
  app = Fastify();
  await app.register(sandboxApp, { state, callbacks: sender });
  await app.ready();
});
afterAll(async () => {
  sender.close();
  await app.close();
  await new Promise((resolve) => receiver.close(resolve));
});
beforeEach(() => {
  state.clearFaults();
  state.clearMessages();
  received = [];
});

describe('sandbox receipt faults', () => {
  it('validates the receipt modes and shows delay_ms for late_receipt only', async () => {
    const silent = await setFault({ provider: 'twilio', mode: 'no_receipt', count: 1 });
    expect(silent.statusCode).toBe(200);
    expect(silent.json()).toEqual({
      faults: [{ provider: 'twilio', mode: 'no_receipt', status: 503, count: 1, retry_after: null }],
    });
    const late = await setFault({ provider: 'plivo', mode: 'late_receipt', delay_ms: 700 });
    expect(late.json<{ faults: unknown[] }>().faults).toContainEqual({
      provider: 'plivo',
      mode: 'late_receipt',
      status: 503,
      count: null,
      retry_after: null,
      delay_ms: 700,
    });
    const bad = await setFault({ provider: 'twilio', mode: 'late_receipt', delay_ms: 60_001 });
    expect(bad.statusCode).toBe(400);
  });

  it('no_receipt: the message is taken and in the outbox, and its status callback never comes', async () => {
    await setFault({ provider: 'twilio', mode: 'no_receipt', count: 1 });
    const silent = await twilioSend('k-silent');
    expect(state.messages().map((m) => m.id)).toEqual([silent]);
    expect(state.requestLog()[0]).toMatchObject({ outcome: 'accepted', status: 201, fault: 'no_receipt' });
    // the next message (the fault is used up) is reported as usual; callbacks go out in order,
    // so once its receipt is here the silent one would have been too
    const heard = await twilioSend('k-heard');
    await waitFor('the second message receipt', async () => (received.length > 0 ? true : undefined));
    expect(received).toEqual([{ sid: heard, status: 'delivered' }]);
  });

  it('late_receipt: the message is taken at once and reported delivered only after delay_ms', async () => {
    await setFault({ provider: 'twilio', mode: 'late_receipt', delay_ms: 1500, count: 1 });
    const late = await twilioSend('k-late');
    expect(state.messages().map((m) => m.id)).toEqual([late]);
    expect(state.requestLog()[0]).toMatchObject({ outcome: 'accepted', status: 201, fault: 'late_receipt' });
    const prompt = await twilioSend('k-prompt');
    await waitFor('both receipts', async () => (received.length === 2 ? true : undefined));
    // the message sent after it is reported first
    expect(received).toEqual([
      { sid: prompt, status: 'delivered' },
      { sid: late, status: 'delivered' },
    ]);
  });
});
