/**
 * Every endpoint that authenticates its caller refuses a missing or forged credential with a
 * 401/403 JSON error and changes nothing: the admin API (every route, from the app's
 * router), Slack (unsigned, wrong secret, stale timestamp, tampered body, replay), Alertmanager
 * (missing or wrong bearer), the provider status callbacks (Twilio and Plivo signatures,
 * SendGrid's ECDSA, SES through SNS) and the codec server (bearer token, CORS origin). Each
 * forged request carries a body that would change something if it were let through, and
 * "nothing changed" is checked on every table of the database, on the workflows of the task
 * queue and on the sandbox (messages and Slack posts).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WardenApp } from '../../src/api/app';
import { initiate } from '../helpers/authClient';
import { deliveryOutcome, sendKey } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';
import { appRoutes } from '../helpers/routes';
import { nowSeconds, plivoHeaders, sendgridHeaders, slackHeaders, snsMessage, twilioHeaders } from '../helpers/signing';

describe('credential refusal on every authenticated endpoint', () => {
  let h: Harness;
  const sendgridKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const snsKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const snsToken = randomBytes(16).toString('hex');
  const alertmanagerToken = randomBytes(18).toString('base64url');
  const codecToken = randomBytes(18).toString('base64url');
  const UI_ORIGIN = 'http://localhost:8233';
  let sms: { challenge: string; sid: string; key: string };
  let email: { challenge: string; sid: string; key: string };

  beforeAll(async () => {
    h = await startHarness({
      env: {
        SENDGRID_WEBHOOK_PUBLIC_KEY: sendgridKeys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        SES_SNS_TOKEN: snsToken,
        SES_SNS_SIGNING_CERT: snsKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        WARDEN_ALERTMANAGER_TOKEN: alertmanagerToken,
        WARDEN_CODEC_TOKEN: codecToken,
        WARDEN_CODEC_ENCODE_TOKEN: randomBytes(18).toString('base64url'),
        WARDEN_CODEC_CORS_ORIGINS: UI_ORIGIN,
      },
    });
    // two delivered challenges whose reports a forged callback would turn into failures
    const sent = async (method: 'otp' | 'magic-link', user: string) => {
      const challenge = (await initiate(h, method, user)).json<{ challenge_id: string }>().challenge_id;
      await deliveryOutcome(h, challenge);
      const [row] = await h.sql<{ provider_message_id: string }>(
        'SELECT provider_message_id FROM delivery_attempts WHERE challenge_id = $1',
        [challenge],
      );
      return { challenge, sid: row!.provider_message_id, key: sendKey(challenge) };
    };
    sms = await sent('otp', 'alice');
    email = await sent('magic-link', 'bob');
  }, 180_000);
  afterAll(async () => h?.close());

  /** Every table's content as one digest per table, the task queue's workflows and the sandbox's outputs. */
  async function snapshot() {
    const tables = await h.sql<{ name: string }>(
      `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
    );
    const digests: Record<string, string> = {};
    for (const { name } of tables) {
      const quoted = `"${name.replace(/"/g, '""')}"`;
      const [row] = await h.sql<{ d: string | null }>(
        `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS d FROM ${quoted} t`,
      );
      digests[name] = row?.d ?? 'empty';
    }
    const workflows = await h.runtime.temporal.client.workflow.count(`TaskQueue = '${h.config.temporal.taskQueue}'`);
    const sandbox = async (path: string) =>
      (await (await fetch(`${h.sandbox.url}${path}`)).json()) as Record<string, unknown[]>;
    return {
      digests,
      workflows: workflows.count,
      messages: (await sandbox('/sandbox/messages')).messages?.length,
      slack: JSON.stringify(await sandbox('/sandbox/slack')),
    };
  }

  interface Forgery {
    endpoint: string;
    forgery: string;
    app: () => WardenApp;
    method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS' | 'HEAD';
    url: string;
    headers?: Record<string, string>;
    payload?: string;
    status: 401 | 403;
    error: string;
  }

  const json = { 'content-type': 'application/json' };
  const formType = { 'content-type': 'application/x-www-form-urlencoded' };
  const slackCommand = () =>
    new URLSearchParams({
      command: '/incident',
      text: 'p1 other forged incident',
      user_id: 'U0MALLORY',
      user_name: 'mallory',
      channel_id: 'C0X',
      trigger_id: randomBytes(4).toString('hex'),
    }).toString();
  const slackClick = () =>
    new URLSearchParams({
      payload: JSON.stringify({
        type: 'block_actions',
        user: { id: 'U0MALLORY' },
        channel: { id: 'C0X' },
        actions: [{ action_id: 'incident_resolve', value: 'INC-2020-01-01-01' }],
      }),
    }).toString();
  const alert = JSON.stringify({
    version: '4',
    groupKey: `{}:{alertname="ForgedAlert-${randomBytes(3).toString('hex')}"}`,
    status: 'firing',
    receiver: 'warden',
    alerts: [{ status: 'firing', labels: { alertname: 'TwilioDown', severity: 'critical' }, annotations: {} }],
  });
  const codecBody = JSON.stringify({
    payloads: [
      {
        metadata: { encoding: Buffer.from('json/plain').toString('base64') },
        data: Buffer.from('"x"').toString('base64'),
      },
    ],
  });

  /** Bodies that would change something on the admin routes that change things, were they let through. */
  const ADMIN_BODIES: Record<string, unknown> = {
    'POST /admin/api/v1/incidents': { type: 'other', severity: 'P3', title: 'forged incident' },
    'POST /admin/api/v1/blocklist/ip': { ip: '203.0.113.9', reason: 'forged' },
    'DELETE /admin/api/v1/blocklist/ip': { ip: '203.0.113.9' },
    'PUT /admin/api/v1/ratelimits': { per_user: { max_attempts: 1 } },
    'PUT /admin/api/v1/auth/settings': { otp_ttl_seconds: 60 },
    'POST /admin/api/v1/keys/rotate': { reason: 'forged', revoke_outstanding: true },
    'POST /admin/api/v1/users/revoke-challenges': { user_ids: ['alice', 'bob'] },
    'POST /admin/api/v1/users/force-password-reset': { user_ids: ['alice'] },
    'POST /admin/api/v1/users/clear-rate-limits': { user_ids: ['alice'] },
    'PUT /admin/api/v1/delivery/routes/:channel': { enabled: false },
    'POST /admin/api/v1/delivery/routes/:channel/switch': { to: 'backup' },
    'POST /admin/api/v1/delivery/failures/resend': {},
    'PUT /admin/api/v1/database/read-only': { read_only: true },
    'PUT /admin/api/v1/database/pool': { max: 1 },
    'POST /admin/api/v1/database/switch': {},
    'POST /admin/api/v1/runbooks/:name': { severity: 'P0', by: 'mallory', users: ['alice'] },
  };
  const PARAMS: Record<string, string> = {
    channel: 'sms',
    name: 'compromised-token',
    id: 'INC-2020-01-01-01',
    task: 'x',
    item: 'x',
  };

  function adminForgeries(): Forgery[] {
    const routes = appRoutes(h.admin).filter((r) => r.url.startsWith('/admin/api/v1'));
    const presented: Array<[string, Record<string, string>]> = [
      ['no token', {}],
      ['a wrong token', { authorization: `Bearer ${randomBytes(24).toString('base64url')}` }],
      ['the codec token', { authorization: `Bearer ${codecToken}` }],
      ['the token in another scheme', { authorization: `Basic ${h.config.adminToken}` }],
    ];
    const out: Forgery[] = [];
    for (const route of [...routes, { method: 'GET', url: '/admin/api/v1/no-such-route' }]) {
      const body = ADMIN_BODIES[`${route.method} ${route.url}`];
      for (const [forgery, headers] of presented) {
        out.push({
          endpoint: `admin ${route.method} ${route.url}`,
          forgery,
          app: () => h.admin,
          method: route.method as Forgery['method'],
          url: route.url.replace(/:(\w+)/g, (_, name: string) => PARAMS[name] ?? 'x'),
          headers: { ...headers, ...(body ? json : {}) },
          ...(body ? { payload: JSON.stringify(body) } : {}),
          status: 401,
          error: 'unauthorized',
        });
      }
    }
    return out;
  }

  function integrationForgeries(): Forgery[] {
    const secret = h.config.providers.slack.signingSecret!;
    const out: Forgery[] = [];
    for (const [endpoint, body] of [
      ['/slack/commands', slackCommand],
      ['/slack/interactions', slackClick],
    ] as const) {
      const b = body();
      const stale = String(Number(nowSeconds()) - 600);
      const slack = (forgery: string, headers: Record<string, string>, error: string, payload = b): Forgery => ({
        endpoint: `slack ${endpoint}`,
        forgery,
        app: () => h.admin,
        method: 'POST',
        url: endpoint,
        headers: { ...formType, ...headers },
        payload,
        status: 401,
        error,
      });
      out.push(
        slack('no signature', {}, 'invalid_signature'),
        slack('a signature by another secret', slackHeaders('not-the-signing-secret', b), 'invalid_signature'),
        slack('a genuine signature over another body', slackHeaders(secret, b), 'invalid_signature', `${b}&tampered=1`),
        slack('a genuine signature with a stale timestamp', slackHeaders(secret, b, stale), 'stale_request'),
        slack(
          'a malformed timestamp',
          { ...slackHeaders(secret, b), 'x-slack-request-timestamp': 'yesterday' },
          'invalid_signature',
        ),
      );
    }
    for (const [forgery, headers] of [
      ['no token', {}],
      ['a wrong token', { authorization: `Bearer ${randomBytes(18).toString('base64url')}` }],
      ['the admin token', h.adminHeaders],
    ] as const) {
      out.push({
        endpoint: 'alertmanager /alertmanager/webhook',
        forgery,
        app: () => h.admin,
        method: 'POST',
        url: '/alertmanager/webhook',
        headers: { ...json, ...headers },
        payload: alert,
        status: 401,
        error: 'unauthorized',
      });
    }
    for (const op of ['decode', 'encode']) {
      for (const [forgery, headers] of [
        ['no token', {}],
        ['a wrong token', { authorization: `Bearer ${randomBytes(18).toString('base64url')}` }],
        ['the admin token', h.adminHeaders],
        // the decode token cannot encode; the encode token is the only one that can
        ...(op === 'encode' ? ([['the decode token', { authorization: `Bearer ${codecToken}` }]] as const) : []),
      ] as const) {
        out.push({
          endpoint: `codec /codec/${op}`,
          forgery,
          app: () => h.admin,
          method: 'POST',
          url: `/codec/${op}`,
          headers: { ...json, origin: UI_ORIGIN, ...headers },
          payload: codecBody,
          status: 401,
          error: 'unauthorized',
        });
      }
      out.push({
        endpoint: `codec /codec/${op}`,
        forgery: 'a preflight from an origin not allowed',
        app: () => h.admin,
        method: 'OPTIONS',
        url: `/codec/${op}`,
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
        status: 403,
        error: 'origin_not_allowed',
      });
    }
    return out;
  }

  function callbackForgeries(): Forgery[] {
    const out: Forgery[] = [];
    const callback = (
      endpoint: string,
      forgery: string,
      url: string,
      headers: Record<string, string>,
      payload: string,
    ): Forgery => ({
      endpoint: `callback ${endpoint}`,
      forgery,
      app: () => h.public,
      method: 'POST',
      url,
      headers,
      payload,
      status: 401,
      error: 'invalid_signature',
    });
    const twilioUrl = `/callbacks/v1/twilio/status?idempotency_key=${encodeURIComponent(sms.key)}`;
    const twilio = { MessageSid: sms.sid, MessageStatus: 'failed', ErrorCode: '30007' };
    const twilioForm = new URLSearchParams(twilio).toString();
    out.push(
      callback('twilio', 'no signature', twilioUrl, formType, twilioForm),
      callback(
        'twilio',
        'a signature with another auth token',
        twilioUrl,
        { ...formType, ...twilioHeaders(h, twilioUrl, twilio, 'not-the-auth-token') },
        twilioForm,
      ),
      callback(
        'twilio',
        'a genuine signature for another URL',
        twilioUrl,
        { ...formType, ...twilioHeaders(h, '/callbacks/v1/twilio/status', twilio) },
        twilioForm,
      ),
      callback(
        'twilio',
        'a genuine signature over other parameters',
        twilioUrl,
        { ...formType, ...twilioHeaders(h, twilioUrl, { ...twilio, MessageStatus: 'delivered' }) },
        twilioForm,
      ),
    );
    const plivoUrl = '/callbacks/v1/plivo/status';
    const plivo = { MessageUUID: sms.sid, Status: 'failed', ErrorCode: '200' };
    const plivoForm = new URLSearchParams(plivo).toString();
    out.push(
      callback('plivo', 'no signature', plivoUrl, formType, plivoForm),
      callback(
        'plivo',
        'a signature with another auth token',
        plivoUrl,
        { ...formType, ...plivoHeaders(h, plivoUrl, plivo, 'not-the-auth-token') },
        plivoForm,
      ),
      callback(
        'plivo',
        'a signature without its nonce',
        plivoUrl,
        { ...formType, 'x-plivo-signature-v3': plivoHeaders(h, plivoUrl, plivo)['x-plivo-signature-v3']! },
        plivoForm,
      ),
    );
    const sgUrl = '/callbacks/v1/sendgrid/events';
    const events = JSON.stringify([
      { event: 'bounce', type: 'bounce', idempotency_key: email.key, sg_message_id: `${email.sid}.filter` },
    ]);
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    out.push(
      callback('sendgrid', 'no signature', sgUrl, json, events),
      callback(
        'sendgrid',
        'a signature by another key',
        sgUrl,
        { ...json, ...sendgridHeaders(otherKey, events) },
        events,
      ),
      callback(
        'sendgrid',
        'a genuine signature over another body',
        sgUrl,
        { ...json, ...sendgridHeaders(sendgridKeys.privateKey, '[]') },
        events,
      ),
      callback(
        'sendgrid',
        'a genuine signature with another timestamp',
        sgUrl,
        { ...json, ...sendgridHeaders(sendgridKeys.privateKey, events), 'x-twilio-email-event-webhook-timestamp': '1' },
        events,
      ),
    );
    const sesEvent = JSON.stringify({
      eventType: 'Bounce',
      mail: { messageId: email.sid },
      bounce: { bounceType: 'Permanent', bouncedRecipients: [{ status: '5.1.1' }] },
    });
    const text = { 'content-type': 'text/plain; charset=UTF-8' };
    const genuine = snsMessage(snsKeys.privateKey, { Message: sesEvent });
    out.push(
      callback('ses', 'a wrong path token', `/callbacks/v1/ses/${randomBytes(16).toString('hex')}`, text, genuine),
      callback(
        'ses',
        'no signature',
        `/callbacks/v1/ses/${snsToken}`,
        text,
        JSON.stringify({ ...JSON.parse(genuine), Signature: undefined }),
      ),
      callback(
        'ses',
        'a signature by another key',
        `/callbacks/v1/ses/${snsToken}`,
        text,
        snsMessage(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, { Message: sesEvent }),
      ),
      callback(
        'ses',
        'a genuine signature over another message',
        `/callbacks/v1/ses/${snsToken}`,
        text,
        genuine.replace('Permanent', 'Transient'),
      ),
    );
    return out;
  }

  it(
    'refuses every forged or missing credential with a 401/403 JSON error and changes nothing',
    { timeout: 120_000 },
    async () => {
      const forgeries = [...adminForgeries(), ...integrationForgeries(), ...callbackForgeries()];
      const before = await snapshot();
      const wrong: string[] = [];
      for (const f of forgeries) {
        const res = await f.app().inject({
          method: f.method,
          url: f.url,
          headers: f.headers ?? {},
          ...(f.payload !== undefined ? { payload: f.payload } : {}),
          remoteAddress: '198.51.100.7',
        });
        const body = f.method === 'HEAD' ? { error: f.error } : (JSON.parse(res.body || '{}') as { error?: string });
        const jsonType = /^application\/json/.test(String(res.headers['content-type']));
        if (res.statusCode !== f.status || body.error !== f.error || !jsonType)
          wrong.push(`${f.endpoint} with ${f.forgery}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
      expect(wrong).toEqual([]);
      // every endpoint family is in the table, each admin route with four forgeries
      const endpoints = new Set(forgeries.map((f) => f.endpoint.split(' ')[0]));
      expect([...endpoints].sort()).toEqual(['admin', 'alertmanager', 'callback', 'codec', 'slack']);
      expect(forgeries.filter((f) => f.endpoint.startsWith('admin')).length).toBe(
        4 * (appRoutes(h.admin).filter((r) => r.url.startsWith('/admin/api/v1')).length + 1),
      );

      // the refusals changed nothing: a forged callback would have failed the challenges, a forged
      // command or alert would have opened an incident, a forged admin call would have written rows
      const after = await snapshot();
      const changed = Object.keys(before.digests).filter((t) => before.digests[t] !== after.digests[t]);
      expect(changed).toEqual([]);
      expect(after.workflows).toBe(before.workflows);
      expect(after.messages).toBe(before.messages);
      expect(after.slack).toBe(before.slack);
      for (const { challenge } of [sms, email]) {
        expect(
          (await h.sql('SELECT delivery_status FROM auth_challenges WHERE id = $1', [challenge]))[0],
        ).not.toMatchObject({ delivery_status: 'failed' });
      }
      expect(await h.sql('SELECT 1 FROM delivery_failures')).toEqual([]);

      // the detector is not blind: the same blocklist request with the genuine token changes a table
      const genuine = await h.admin.inject({
        method: 'POST',
        url: '/admin/api/v1/blocklist/ip',
        headers: { ...h.adminHeaders, ...json },
        payload: JSON.stringify(ADMIN_BODIES['POST /admin/api/v1/blocklist/ip']),
      });
      expect(genuine.statusCode, genuine.body).toBeLessThan(300);
      const control = await snapshot();
      expect(Object.keys(after.digests).filter((t) => after.digests[t] !== control.digests[t])).toContain(
        'ip_blocklist',
      );
    },
  );

  it('refuses a replayed Slack request after accepting the original, on both Slack endpoints', async () => {
    const secret = h.config.providers.slack.signingSecret!;
    for (const url of ['/slack/commands', '/slack/interactions']) {
      // a genuine request that changes nothing by itself (an unknown command, a non-button payload)
      const body =
        url === '/slack/commands'
          ? new URLSearchParams({ command: '/unknown', text: 'x' }).toString()
          : new URLSearchParams({ payload: JSON.stringify({ type: 'view_closed' }) }).toString();
      const headers = { ...formType, ...slackHeaders(secret, body) };
      const first = await h.admin.inject({ method: 'POST', url, headers, payload: body });
      expect(first.statusCode).toBe(200);
      const before = await snapshot();
      const replay = await h.admin.inject({ method: 'POST', url, headers, payload: body });
      expect(replay.statusCode).toBe(401);
      expect(replay.headers['content-type']).toMatch(/^application\/json/);
      expect(replay.json()).toMatchObject({ error: 'replayed_request' });
      expect(await snapshot()).toEqual(before);
    }
  });
});
