import { randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import * as plivo from 'plivo';
import twilio from 'twilio';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config';
import {
  createProviders,
  ProviderError,
  ProviderPermanentError,
  ProviderTransientError,
  slackError,
  type EmailProviderName,
  type Providers,
  type SmsProviderName,
} from '../../src/providers';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server';
import { createLogger } from '../../src/telemetry/logger';

// Real SDKs against a real sandbox on a free port; nothing of ours is mocked.

let sandbox: RunningSandbox;
let config: Config;
let providers: Providers;
const logLines: string[] = [];

function configFor(url: string, extra: Record<string, string> = {}): Config {
  return loadConfig({ WARDEN_ADMIN_TOKEN: 'test-admin-token-0123456789', WARDEN_SANDBOX_URL: url, ...extra });
}

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0 });
  config = configFor(sandbox.url);
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  providers = createProviders(config, createLogger({ level: 'debug', destination }));
});

afterAll(async () => {
  await providers?.close();
  await sandbox?.close();
});

afterEach(async () => {
  await control('DELETE', '/sandbox/faults');
});

async function control<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(res.status, `${method} ${path}`).toBeLessThan(300);
  return (await res.json()) as T;
}

interface OutboxEntry {
  id: string;
  provider: string;
  channel: string;
  to: string;
  subject: string | null;
  body: string;
  idempotency_key: string | null;
  created_at: string;
}

async function outbox(to: string): Promise<OutboxEntry[]> {
  return (await control<{ messages: OutboxEntry[] }>('GET', `/sandbox/messages?to=${encodeURIComponent(to)}`)).messages;
}

const phone = () => `+1555${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;
const email = () => `user-${randomUUID().slice(0, 8)}@example.com`;
const otpBody = () => `Your Warden code is ${String(randomInt(0, 1_000_000)).padStart(6, '0')}`;

type Sender = { kind: 'sms'; name: SmsProviderName } | { kind: 'email'; name: EmailProviderName };
const SENDERS: Sender[] = [
  { kind: 'sms', name: 'twilio' },
  { kind: 'sms', name: 'plivo' },
  { kind: 'email', name: 'sendgrid' },
  { kind: 'email', name: 'ses' },
];

/** One send through `sender` with a fresh recipient; the body carries a secret-looking token. */
function sendVia(p: Providers, sender: Sender, key = `challenge-${randomUUID()}/deliver:1`) {
  const secret = `${randomUUID()}${randomInt(100_000, 999_999)}`;
  if (sender.kind === 'sms') {
    const msg = { to: phone(), body: `Your Warden code: ${secret}`, idempotencyKey: key };
    return { to: msg.to, key, secret, run: () => p.sms[sender.name].send(msg) };
  }
  const msg = {
    to: email(),
    subject: 'Sign in to Warden',
    text: `Sign in: https://warden.example/m/${secret}`,
    idempotencyKey: key,
  };
  return { to: msg.to, key, secret, run: () => p.email[sender.name].send(msg) };
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('sending through the real SDKs into the sandbox outbox', () => {
  it.each(['twilio', 'plivo'] as const)('delivers an SMS through %s with its idempotency key', async (name) => {
    const to = phone();
    const body = otpBody();
    const key = `challenge-${randomUUID()}/deliver:1`;
    const result = await providers.sms[name].send({ to, body, idempotencyKey: key });

    expect(result.provider).toBe(name);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    const [message, ...rest] = await outbox(to);
    expect(rest).toEqual([]);
    expect(message).toMatchObject({
      id: result.providerMessageId,
      provider: name,
      channel: 'sms',
      to,
      subject: null,
      body,
      idempotency_key: key,
    });
  });

  it.each(['sendgrid', 'ses'] as const)('delivers an email through %s with its idempotency key', async (name) => {
    const to = email();
    const key = `challenge-${randomUUID()}/deliver:2`;
    const text = `Sign in: https://warden.example/m/${randomUUID()}`;
    const result = await providers.email[name].send({
      to,
      subject: 'Sign in to Warden',
      text,
      html: `<a href="x">Sign in</a>`,
      idempotencyKey: key,
    });

    expect(result.provider).toBe(name);
    const [message, ...rest] = await outbox(to);
    expect(rest).toEqual([]);
    expect(message).toMatchObject({
      id: result.providerMessageId,
      provider: name,
      channel: 'email',
      to,
      subject: 'Sign in to Warden',
      body: text,
      idempotency_key: key,
    });
  });

  it.each(SENDERS)(
    'answers a repeated idempotency key through $name with the original id and one outbox entry',
    async (sender) => {
      const send = sendVia(providers, sender);
      const first = await send.run();
      const second = await send.run();

      expect(second.providerMessageId).toBe(first.providerMessageId);
      expect(await outbox(send.to)).toHaveLength(1);
      const { requests } = await control<{
        requests: { provider: string; outcome: string; idempotency_key: string | null }[];
      }>('GET', '/sandbox/requests');
      expect(requests.find((r) => r.provider === sender.name && r.idempotency_key === send.key)?.outcome).toBe(
        'deduplicated',
      );
    },
  );

  it('sends a signed Twilio and Plivo delivery callback that the SDKs own validators accept', async () => {
    const received: { url: string; headers: IncomingHttpHeaders; params: Record<string, string> }[] = [];
    const receiver: Server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      req.on('end', () => {
        received.push({
          url: req.url ?? '',
          headers: req.headers,
          params: Object.fromEntries(new URLSearchParams(raw)),
        });
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const address = receiver.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    try {
      const key = `challenge-${randomUUID()}/deliver:1`;
      const tw = await providers.sms.twilio.send({
        to: phone(),
        body: otpBody(),
        idempotencyKey: key,
        statusCallbackUrl: `${base}/twilio?tenant=a`,
      });
      const pl = await providers.sms.plivo.send({
        to: phone(),
        body: otpBody(),
        idempotencyKey: key,
        statusCallbackUrl: `${base}/plivo`,
      });
      await expect.poll(() => received.length, { timeout: 5_000 }).toBe(2);

      const twilioHit = received.find((r) => r.url.startsWith('/twilio'));
      const plivoHit = received.find((r) => r.url.startsWith('/plivo'));
      expect(twilioHit?.params).toMatchObject({ MessageSid: tw.providerMessageId, MessageStatus: 'delivered' });
      expect(new URL(`${base}${twilioHit?.url}`).searchParams.get('idempotency_key')).toBe(key);
      expect(
        twilio.validateRequest(
          config.providers.twilio.authToken,
          String(twilioHit?.headers['x-twilio-signature']),
          `${base}${twilioHit?.url}`,
          twilioHit?.params ?? {},
        ),
      ).toBe(true);

      expect(plivoHit?.params).toMatchObject({ MessageUUID: pl.providerMessageId, Status: 'delivered' });
      const valid = plivo.validateV3Signature(
        'POST',
        `${base}${plivoHit?.url}`,
        String(plivoHit?.headers['x-plivo-signature-v3-nonce']),
        config.providers.plivo.authToken,
        String(plivoHit?.headers['x-plivo-signature-v3']),
        plivoHit?.params,
      );
      expect(valid).toBe(true);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});

describe('fault injection and error classification', () => {
  it.each(SENDERS)(
    'turns a 503 from $name into a transient error with the status, and records nothing',
    async (sender) => {
      await control('POST', '/sandbox/faults', { provider: sender.name, mode: 'error', status: 503 });
      const send = sendVia(providers, sender);
      const err = await failure(send.run());

      expect(err).toBeInstanceOf(ProviderTransientError);
      expect(err).toMatchObject({
        name: 'ProviderTransientError',
        type: 'ProviderTransientError',
        kind: 'transient',
        provider: sender.name,
        status: 503,
      });
      expect(await outbox(send.to)).toEqual([]);
    },
  );

  it.each(SENDERS.filter((s) => s.name !== 'plivo'))(
    'carries Retry-After from a 429 by $name as retryAfterMs',
    async (sender) => {
      await control('POST', '/sandbox/faults', { provider: sender.name, mode: 'error', status: 429, retry_after: 7 });
      const err = await failure(sendVia(providers, sender).run());

      expect(err).toBeInstanceOf(ProviderTransientError);
      expect(err.status).toBe(429);
      expect(err.retryAfterMs).toBe(7_000);
    },
  );

  it('classifies a Plivo 429 as transient (plivo-node does not expose Retry-After)', async () => {
    await control('POST', '/sandbox/faults', { provider: 'plivo', mode: 'error', status: 429, retry_after: 7 });
    const err = await failure(sendVia(providers, { kind: 'sms', name: 'plivo' }).run());
    expect(err).toBeInstanceOf(ProviderTransientError);
    expect(err.status).toBe(429);
  });

  it.each(SENDERS)('turns an invalid-recipient answer from $name into a permanent error', async (sender) => {
    await control('POST', '/sandbox/faults', { provider: sender.name, mode: 'permanent' });
    const send = sendVia(providers, sender);
    const err = await failure(send.run());

    expect(err).toBeInstanceOf(ProviderPermanentError);
    expect(err).toMatchObject({
      name: 'ProviderPermanentError',
      kind: 'permanent',
      provider: sender.name,
      status: 400,
    });
    expect(await outbox(send.to)).toEqual([]);
  });

  it('rejects a malformed number through Twilio as permanent, without echoing the number', async () => {
    const err = await failure(
      providers.sms.twilio.send({ to: '+1-not-a-number', body: otpBody(), idempotencyKey: randomUUID() }),
    );
    expect(err).toBeInstanceOf(ProviderPermanentError);
    expect(err.providerCode).toBe(21211);
    expect(err.message).not.toContain('not-a-number');
  });

  it('lets a count=2 fault fail two calls and then expire', async () => {
    await control('POST', '/sandbox/faults', { provider: 'sendgrid', mode: 'error', status: 500, count: 2 });
    const sender: Sender = { kind: 'email', name: 'sendgrid' };
    await failure(sendVia(providers, sender).run());
    await failure(sendVia(providers, sender).run());
    const third = sendVia(providers, sender);
    const result = await third.run();
    expect((await outbox(third.to))[0]?.id).toBe(result.providerMessageId);
  });

  describe('with a 300 ms provider timeout', () => {
    let quick: Providers;
    beforeAll(() => {
      quick = createProviders(
        configFor(sandbox.url, { WARDEN_PROVIDER_TIMEOUT_MS: '300' }),
        createLogger({ level: 'silent' }),
      );
    });
    afterAll(() => quick.close());

    it.each(SENDERS)('gives up on a held $name request with a transient error instead of hanging', async (sender) => {
      await control('POST', '/sandbox/faults', { provider: sender.name, mode: 'timeout' });
      const started = Date.now();
      const err = await failure(sendVia(quick, sender).run());

      expect(err).toBeInstanceOf(ProviderTransientError);
      expect(err.status).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  });

  it.each(SENDERS)('never lets the message body reach a failed $name send error or the logs', async (sender) => {
    for (const fault of [
      { mode: 'error', status: 503 },
      { mode: 'error', status: 429, retry_after: 1 },
      { mode: 'permanent' },
    ]) {
      await control('POST', '/sandbox/faults', { provider: sender.name, ...fault });
      const send = sendVia(providers, sender);
      const err = await failure(send.run());

      const views = [
        err.message,
        String(err.stack),
        JSON.stringify(err),
        String(err),
        inspect(err, { depth: 10, showHidden: true }),
      ];
      for (let cause: unknown = err; cause; cause = (cause as { cause?: unknown }).cause)
        views.push(inspect(cause, { depth: 10, showHidden: true }));
      for (const view of views) {
        expect(view).not.toContain(send.secret);
        expect(view).not.toContain(send.to);
      }
      expect(err.cause).toBeUndefined();
      expect(logLines.join('')).not.toContain(send.secret);
    }
  });
});

describe('status pages, Slack and hCaptcha', () => {
  it('reports what /sandbox/status set for a provider', async () => {
    expect(await providers.statusPage('sendgrid')).toEqual({
      indicator: 'none',
      description: 'All Systems Operational',
    });
    await control('POST', '/sandbox/status', { provider: 'sendgrid', indicator: 'major' });
    expect(await providers.statusPage('sendgrid')).toEqual({
      indicator: 'major',
      description: 'Partial System Outage',
    });
    await control('POST', '/sandbox/status', { provider: 'sendgrid', indicator: 'none' });
  });

  it('records chat.postMessage and a threaded reply in /sandbox/slack', async () => {
    const channel = `#incidents-${randomUUID().slice(0, 6)}`;
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: '*INCIDENT ALERT - P1*' } }];
    const posted = await providers.slack.chat.postMessage({ channel, text: 'INCIDENT ALERT - P1', blocks });
    expect(posted.ok).toBe(true);
    await providers.slack.chat.postMessage({ channel, text: 'update', thread_ts: posted.ts });

    const { messages } = await control<{
      messages: {
        method: string;
        channel: string;
        text: string;
        blocks: unknown;
        thread_ts: string | null;
        ts: string;
      }[];
    }>('GET', '/sandbox/slack');
    const ours = messages.filter((m) => m.channel === channel);
    expect(ours.map((m) => m.text)).toEqual(['update', 'INCIDENT ALERT - P1']);
    expect(ours[1]).toMatchObject({ method: 'chat.postMessage', blocks, thread_ts: null, ts: posted.ts });
    expect(ours[0]?.thread_ts).toBe(posted.ts);
  });

  it('maps a Slack platform refusal to a permanent error and a Slack 429 to a transient one', async () => {
    await control('POST', '/sandbox/faults', { provider: 'slack', mode: 'permanent', count: 1 });
    const refused = slackError(
      await providers.slack.chat.postMessage({ channel: '#x', text: 'y' }).catch((e: unknown) => e),
    );
    expect(refused).toMatchObject({ kind: 'permanent', providerCode: 'channel_not_found' });

    await control('POST', '/sandbox/faults', {
      provider: 'slack',
      mode: 'error',
      status: 429,
      retry_after: 2,
      count: 1,
    });
    const limited = slackError(
      await providers.slack.chat.postMessage({ channel: '#x', text: 'y' }).catch((e: unknown) => e),
    );
    expect(limited).toMatchObject({ kind: 'transient', status: 429, retryAfterMs: 2_000 });
  });

  it('passes hCaptcha with the documented test token and fails anything else', async () => {
    expect(await providers.hcaptcha.verify('10000000-aaaa-bbbb-cccc-000000000001', '203.0.113.7')).toEqual({
      success: true,
      errorCodes: [],
    });
    expect(await providers.hcaptcha.verify('forged-token')).toEqual({
      success: false,
      errorCodes: ['invalid-input-response'],
    });
  });
});
