/**
 * The delivery canary's email channel (docs/canary.md): a run signs the canary user in by
 * magic link, the sandbox delivers the email to the canary's mailbox and hands it back through
 * the receiving side of the provider that sent it (a SendGrid Inbound Parse post to a secret
 * path, an SES receipt through a signed SNS notification), and Warden confirms the link as the
 * user's browser would. Real worker, dev server, Postgres and sandbox, the public port
 * listening. Nothing here times anything: each test waits for a run's outcome and looks at it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAuthChecklistActivities } from '../../src/activities/checklistAuth';
import { linkFrom } from '../../src/activities/checklistHttp';
import type { CheckInput } from '../../src/activities/checklistTypes';
import { ensureCanarySchedule } from '../../src/canary/schedule';
import { freePort } from '../../src/dev/process';
import { canaryScheduleId, type CanaryResult } from '../../src/shared/canary';
import { EncryptionCodec, parsePayloadKeyring } from '../../src/temporal/codec';
import type { canaryWorkflow } from '../../src/workflows/ops/canary';
import { messages, messagesFor, waitFor } from '../helpers/authClient';
import { metric, raiseRateLimits, resetDelivery } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';
import { snsMessage } from '../helpers/signing';

const CANARY = 'canary-operator';
const PHONE = '+15550107799';
const EMAIL = 'canary@ops.example';
const TIMEOUT_MS = 10_000;
const INBOUND_TOPIC = 'arn:aws:sns:us-east-1:000000000000:warden-canary-inbound';
const EVENTS_TOPIC = 'arn:aws:sns:us-east-1:000000000000:warden-ses-events';

interface RunRow {
  id: string;
  channel: string;
  status: string;
  latency_ms: number | null;
  challenge_id: string | null;
  detail: string | null;
  workflow_id: string;
}

describe('delivery canary by email', () => {
  let h: Harness;
  const snsKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const otherKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const snsToken = randomBytes(16).toString('hex');
  const parseToken = randomBytes(16).toString('hex');

  const control = (method: string, path: string, body?: unknown) =>
    fetch(`${h.sandbox.url}${path}`, {
      method,
      ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
  const callbacks = () => `${h.config.delivery.callbackBaseUrl}/callbacks/v1`;
  const parseUrl = (token = parseToken) => `${callbacks()}/sendgrid/inbound/${token}`;
  const receiptUrl = (token = snsToken) => `${callbacks()}/ses/${token}/inbound`;
  /** SES's mailbox: the worker leaves it to the test, as Warden pins a certificate only the test can sign for. */
  const registerSesMailbox = async () => {
    const res = await control('POST', '/sandbox/mailboxes', {
      address: EMAIL,
      provider: 'ses',
      url: receiptUrl(),
      private_key: snsKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    });
    expect(res.status).toBe(200);
  };

  beforeAll(async () => {
    const port = await freePort();
    h = await startHarness({
      listen: true,
      env: {
        WARDEN_PUBLIC_PORT: String(port),
        WARDEN_CANARY_USER: CANARY,
        // the schedule's own hour would not come during the test: runs are triggered
        WARDEN_CANARY_INTERVAL: '1h',
        WARDEN_CANARY_TIMEOUT_MS: String(TIMEOUT_MS),
        SENDGRID_INBOUND_TOKEN: parseToken,
        SES_SNS_TOKEN: snsToken,
        SES_SNS_SIGNING_CERT: snsKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        SES_INBOUND_TOPIC_ARN: INBOUND_TOPIC,
      },
    });
    await raiseRateLimits(h);
    await h.sql('INSERT INTO users (sub, phone, email) VALUES ($1, $2, $3)', [CANARY, PHONE, EMAIL]);
  });
  afterAll(async () => {
    await h?.runtime.temporal.client.schedule
      .getHandle(canaryScheduleId(h.config.temporal.taskQueue))
      .delete()
      .catch(() => {});
    await h?.close();
  });
  afterEach(async () => resetDelivery(h));

  const runs = () => h.sql<RunRow>('SELECT * FROM canary_runs ORDER BY started_at, channel');
  const runsOf = (workflowId: string) =>
    h.sql<RunRow>('SELECT * FROM canary_runs WHERE workflow_id = $1 ORDER BY channel', [workflowId]);
  const schedule = () => h.runtime.temporal.client.schedule.getHandle(canaryScheduleId(h.config.temporal.taskQueue));
  /** One run on the email channel alone, as the checklist starts one. */
  const emailRun = (workflowId: string) =>
    h.runtime.temporal.client.workflow.start<typeof canaryWorkflow>('canaryWorkflow', {
      workflowId,
      taskQueue: h.config.temporal.taskQueue,
      args: [{ channels: ['email'] }],
    });
  const challenge = async (id: string | null) =>
    (
      await h.sql<{ status: string; user_id: string; method: string; attempts: number }>(
        'SELECT status, user_id, method, attempts FROM auth_challenges WHERE id = $1',
        [id],
      )
    )[0];
  const validations = (challengeId: string | null) =>
    h.sql<{ outcome: string }>(
      "SELECT outcome FROM audit_events WHERE event_type = 'identity.auth.validation_attempt' AND challenge_id = $1",
      [challengeId],
    );

  it(
    'a scheduled run signs in by SMS and by magic link; the link comes back through SendGrid Inbound Parse',
    { timeout: 120_000 },
    async () => {
      expect(await ensureCanarySchedule(h.runtime)).toBe('created');
      // the worker registered the canary's mailbox for SendGrid's receiving; SES's signing key is the test's
      const mailboxes = (await (await control('GET', '/sandbox/mailboxes')).json()) as { mailboxes: unknown[] };
      expect(mailboxes.mailboxes).toEqual([{ address: EMAIL, provider: 'sendgrid' }]);
      await registerSesMailbox();

      const before = (await runs()).length;
      await schedule().trigger();
      const [email, sms] = await waitFor(
        'both channels of a canary run with an outcome',
        async () => {
          const mine = (await runs()).slice(before);
          return mine.length === 2 && mine.every((r) => r.status !== 'waiting')
            ? mine.sort((a, b) => a.channel.localeCompare(b.channel))
            : undefined;
        },
        TIMEOUT_MS + 60_000,
      );
      expect(email).toMatchObject({ channel: 'email', status: 'success', detail: null });
      expect(sms).toMatchObject({ channel: 'sms', status: 'success', detail: null });
      expect(email!.workflow_id).toBe(sms!.workflow_id);
      expect(email!.latency_ms).toBeGreaterThan(0);
      // the link was confirmed through the public confirm path: the challenge is verified and audited
      expect(await challenge(email!.challenge_id)).toMatchObject({
        status: 'verified',
        user_id: CANARY,
        method: 'magic_link',
      });
      expect((await validations(email!.challenge_id)).map((a) => a.outcome)).toEqual(['success']);
      const [sent] = await messagesFor(h, email!.challenge_id!, EMAIL);
      expect(sent!.provider).toBe('sendgrid');
      const result = await h.runtime.temporal.client.workflow.getHandle(email!.workflow_id).result();
      expect((result as CanaryResult).runs).toEqual([
        { channel: 'sms', outcome: 'success', latencyMs: sms!.latency_ms },
        { channel: 'email', outcome: 'success', latencyMs: email!.latency_ms },
      ]);

      expect(await metric(h, 'warden_canary_runs_total', { channel: 'email', outcome: 'success' })).toBe(1);
      expect(await metric(h, 'warden_canary_runs_total', { channel: 'sms', outcome: 'success' })).toBe(1);
      expect(await metric(h, 'warden_canary_latency_seconds_count', { channel: 'email' })).toBe(1);
      expect(await metric(h, 'warden_canary_last_success_timestamp_seconds', { channel: 'email' })).toBeGreaterThan(
        Date.now() / 1000 - 600,
      );
      expect(
        await metric(h, 'warden_delivery_callbacks_total', { provider: 'sendgrid', outcome: 'inbound_success' }),
      ).toBe(1);
      expect(h.logs.text()).toContain('canary run succeeded');
    },
  );

  it('an email SES sent comes back as an SES receipt through SNS and verifies', { timeout: 120_000 }, async () => {
    const switched = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/delivery/routes/email/switch',
      headers: h.adminHeaders,
      payload: { to: 'backup' },
    });
    expect(switched.statusCode).toBe(200);
    const workflowId = `canary-ses-${Date.now()}`;
    const result = await (await emailRun(workflowId)).result();
    const [run] = await runsOf(workflowId);
    expect(result.runs).toEqual([{ channel: 'email', outcome: 'success', latencyMs: run!.latency_ms }]);
    expect(run).toMatchObject({ channel: 'email', status: 'success' });
    const [sent] = await messagesFor(h, run!.challenge_id!, EMAIL);
    expect(sent!.provider).toBe('ses');
    expect(await challenge(run!.challenge_id)).toMatchObject({ status: 'verified', method: 'magic_link' });
    expect(await metric(h, 'warden_delivery_callbacks_total', { provider: 'ses', outcome: 'inbound_success' })).toBe(1);
    expect(await metric(h, 'warden_canary_runs_total', { channel: 'email', outcome: 'success' })).toBe(2);
  });

  it(
    'refuses a wrong path token and a forged or unsigned SNS receipt with 4xx and changes nothing',
    { timeout: 120_000 },
    async () => {
      // the mailbox stops receiving: the link stays in the outbox, the run waits
      await control('DELETE', '/sandbox/mailboxes');
      const workflowId = `canary-forged-${Date.now()}`;
      const handle = await emailRun(workflowId);
      const run = await waitFor('a waiting email run with its challenge', async () => {
        const [r] = await runsOf(workflowId);
        return r?.challenge_id ? r : undefined;
      });
      const sent = await waitFor('the canary email', async () => (await messagesFor(h, run.challenge_id!, EMAIL))[0]);
      const text = sent.body;
      expect(linkFrom(text)?.challenge).toBe(run.challenge_id);

      const parsePost = (url: string, fields: Record<string, string>) => {
        const form = new FormData();
        for (const [name, value] of Object.entries(fields)) form.append(name, value);
        return fetch(url, { method: 'POST', body: form });
      };
      const genuine = { to: EMAIL, from: 'no-reply@warden.example', subject: 'Your Warden sign-in link', text };
      const wrongToken = await parsePost(parseUrl(randomBytes(16).toString('hex')), genuine);
      expect(wrongToken.status).toBe(401);
      expect(await wrongToken.json()).toMatchObject({ error: 'invalid_signature' });

      const receipt = (content: string) =>
        JSON.stringify({
          notificationType: 'Received',
          mail: { source: 'no-reply@warden.example', destination: [EMAIL] },
          receipt: { recipients: [EMAIL], action: { type: 'SNS', topicArn: INBOUND_TOPIC, encoding: 'UTF8' } },
          content,
        });
      const mime = `From: no-reply@warden.example\r\nTo: ${EMAIL}\r\nSubject: Your Warden sign-in link\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n${text}\r\n`;
      const signed = (key = snsKeys.privateKey, fields: Record<string, string> = {}) =>
        snsMessage(key, { TopicArn: INBOUND_TOPIC, Message: receipt(mime), ...fields });
      const sns = (url: string, body: string) =>
        fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain; charset=UTF-8' }, body });
      const { Signature: _dropped, ...unsignedFields } = JSON.parse(signed()) as Record<string, string>;

      for (const [what, url, body] of [
        ['signed with another key', receiptUrl(), signed(otherKeys.privateKey)],
        ['unsigned', receiptUrl(), JSON.stringify(unsignedFields)],
        ['signed, on a wrong path token', receiptUrl(randomBytes(16).toString('hex')), signed()],
        ['signed, from the events topic', receiptUrl(), signed(snsKeys.privateKey, { TopicArn: EVENTS_TOPIC })],
      ] as const) {
        const res = await sns(url, body);
        expect(res.status, what).toBe(401);
        expect(await res.json(), what).toMatchObject({ error: 'invalid_signature' });
      }

      // authenticated but malformed: bad input, answered 400 with a stable code, never a 500
      const malformedMultipart = await fetch(parseUrl(), {
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=nothing-here' },
        body: 'this is not multipart',
      });
      expect(malformedMultipart.status).toBe(400);
      expect(await malformedMultipart.json()).toMatchObject({ error: 'invalid_request' });
      const noText = await parsePost(parseUrl(), { to: EMAIL, subject: 'hello' });
      expect(noText.status).toBe(400);
      expect(await noText.json()).toMatchObject({ error: 'invalid_request' });
      const notJson = await sns(
        receiptUrl(),
        snsMessage(snsKeys.privateKey, { TopicArn: INBOUND_TOPIC, Message: '{' }),
      );
      expect(notJson.status).toBe(400);
      expect(await notJson.json()).toMatchObject({ error: 'invalid_request' });
      const notSns = await sns(receiptUrl(), 'plain text');
      expect(notSns.status).toBe(400);

      // nothing was tried: the challenge is open and untouched, the run still waits
      expect(await challenge(run.challenge_id)).toMatchObject({ status: 'open', attempts: 0 });
      expect(await validations(run.challenge_id)).toEqual([]);
      expect((await runsOf(workflowId))[0]!.status).toBe('waiting');
      expect(
        await metric(h, 'warden_delivery_callbacks_total', { provider: 'ses', outcome: 'invalid_signature' }),
      ).toBe(4);
      expect(
        await metric(h, 'warden_delivery_callbacks_total', { provider: 'sendgrid', outcome: 'invalid_signature' }),
      ).toBe(1);

      // the same email, in a genuine receipt (UTF-8 content this time), is the canary's answer
      const answered = await sns(receiptUrl(), signed());
      expect(answered.status).toBe(204);
      const result = await handle.result();
      expect(result.runs).toEqual([
        { channel: 'email', outcome: 'success', latencyMs: (await runsOf(workflowId))[0]!.latency_ms },
      ]);
      expect(await challenge(run.challenge_id)).toMatchObject({ status: 'verified' });
      // SES's own setup notification, or a receipt of another action, is acknowledged and ignored
      const setup = await sns(
        receiptUrl(),
        snsMessage(snsKeys.privateKey, {
          TopicArn: INBOUND_TOPIC,
          Message: JSON.stringify({ notificationType: 'AMAZON_SES_SETUP_NOTIFICATION' }),
        }),
      );
      expect(setup.status).toBe(204);
    },
  );

  it(
    "runs the recovery checklist's magic-link items through the canary when the email providers are live",
    { timeout: 120_000 },
    async () => {
      await ensureCanarySchedule(h.runtime); // the mailbox receives again
      // the same Warden as seen by a worker with live email credentials: no outbox to read links from
      const p = h.config.providers;
      const live = {
        ...h.config,
        providers: { ...p, sendgrid: { ...p.sendgrid, sandbox: false }, ses: { ...p.ses, sandbox: false } },
      };
      const checks = createAuthChecklistActivities({ ...h.runtime, config: live });
      const input = {
        incidentId: 'INC-email',
        baseline: { takenAt: new Date().toISOString(), values: {} },
      } as unknown as CheckInput;
      const outcome = await checks.checkMagicLinkFlow(input);
      expect(outcome.items.map((i) => [i.id, i.status])).toEqual([
        ['magic_link_generation', 'passed'],
        ['valid_token_validation', 'passed'],
      ]);
      expect(outcome.items[0]!.detail).toMatch(/the magic link came back through the provider$/);
      const workflowId = `canary-checklist-INC-email-email-${Date.parse(input.baseline.takenAt)}`;
      expect(outcome.items[1]!.detail).toMatch(
        new RegExp(`^canary canary-operator \\(${workflowId}\\): verified in \\d+ ms`),
      );
      const [run] = await h.sql<RunRow>("SELECT * FROM canary_runs WHERE workflow_id LIKE 'canary-checklist-%'");
      expect(run).toMatchObject({ channel: 'email', status: 'success', workflow_id: workflowId });
      expect(await metric(h, 'warden_canary_runs_total', { channel: 'email', outcome: 'success' })).toBe(4);

      // its webhook confirmed a tampered link first, which was refused as invalid, then the right one
      expect(run!.detail).toBe(
        'tampered link token refused (401 invalid_token); the link token in no history, log line, audit row or metric scanned',
      );
      expect((await validations(run!.challenge_id)).map((a) => a.outcome).sort()).toEqual(['invalid_token', 'success']);
      const invalid = await checks.checkInvalidTokens(input);
      expect(invalid.items[0]!.detail).toContain(
        `tampered link token (canary canary-operator (${workflowId}): 401 invalid_token, then the right link verified)`,
      );
      const leaks = await checks.checkTokenLeaks(input);
      expect(leaks.items[0], leaks.items[0]!.detail).toMatchObject({ id: 'no_plaintext_tokens', status: 'passed' });
      expect(leaks.items[0]!.detail).toMatch(
        new RegExp(
          `; the canary link token not found in \\d+ audit rows, 1 challenge rows, 1 canary runs, 2 workflow histories .*\\(${workflowId}\\)\\)$`,
        ),
      );
      // every check read the one run
      expect(await h.sql('SELECT 1 FROM canary_runs WHERE workflow_id = $1', [workflowId])).toHaveLength(1);
    },
  );

  it(
    'keeps the links and the path tokens out of histories, logs, metrics and the tables',
    { timeout: 60_000 },
    async () => {
      const tokens = (await messages(h, EMAIL)).map((m) => linkFrom(m.body)!.token);
      expect(tokens).toHaveLength(4);
      const secrets = [...tokens, parseToken, snsToken];
      const find = (text: string) => secrets.filter((s) => text.includes(s));

      const codec = new EncryptionCodec(parsePayloadKeyring(h.env.WARDEN_PAYLOAD_KEYS!));
      const client = h.runtime.temporal.client;
      const ids: string[] = [];
      for await (const wf of client.workflow.list({
        query: `TaskQueue = '${h.config.temporal.taskQueue}' AND WorkflowType = 'canaryWorkflow'`,
      }))
        ids.push(wf.workflowId);
      expect(ids).toHaveLength(4);
      for (const id of ids) {
        const history = await client.workflow.getHandle(id).fetchHistory();
        const raw = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
        expect(find(raw.toString('latin1')), `raw history of ${id}`).toEqual([]);
        const payloads = (history.events ?? []).flatMap((e) => [
          ...(e.workflowExecutionSignaledEventAttributes?.input?.payloads ?? []),
          ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []),
          ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
          ...(e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? []),
        ]);
        const decoded = await codec.decode(payloads);
        const text = decoded.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8')).join('\n');
        expect(text).toContain('runId');
        expect(find(text), `decoded history of ${id}`).toEqual([]);
        // the email run's signal carried a channel, an outcome and a latency, nothing else; the
        // checklist's also its verdicts: an answer and the names of places
        for (const event of history.events ?? []) {
          const signal = event.workflowExecutionSignaledEventAttributes;
          if (!signal) continue;
          const [payload] = await codec.decode(signal.input!.payloads!);
          const report = JSON.parse(Buffer.from(payload!.data!).toString('utf8')) as Record<string, unknown>;
          const checklist = id.startsWith('canary-checklist-');
          expect(Object.keys(report).sort()).toEqual(
            ['channel', 'latencyMs', 'outcome', ...(checklist ? ['checks'] : [])].sort(),
          );
          if (checklist)
            expect(report.checks).toMatchObject({
              wrongSecret: { verdict: 'refused', answer: '401 invalid_token' },
              plaintext: { found: [] },
            });
        }
      }

      const logs = h.logs.text();
      expect(find(logs)).toEqual([]);
      // the inbound requests were logged, their path tokens redacted
      expect(logs).toContain('/callbacks/v1/sendgrid/inbound/[REDACTED]');
      expect(logs).toContain('/callbacks/v1/ses/[REDACTED]/inbound');
      expect(find(await (await fetch(`${h.servers!.urls.metrics}/metrics`)).text())).toEqual([]);
      expect(find(JSON.stringify(await h.sql('SELECT * FROM canary_runs')))).toEqual([]);
      expect(find(JSON.stringify(await h.sql('SELECT * FROM audit_events')))).toEqual([]);
      expect(find(JSON.stringify(await h.sql('SELECT * FROM auth_challenges')))).toEqual([]);
    },
  );
});
