/**
 * The delivery canary (src/canary, src/workflows/ops/canary.ts): its schedule starts a real
 * sign-in for the canary user, the sandbox delivers the SMS to the canary's number and hands it
 * back through the number's inbound webhook, signed as the provider signs, and Warden verifies
 * the code right there. Real worker, dev server, Postgres and sandbox, the public port
 * listening. Nothing here times anything: each test waits for a run's outcome and looks at it.
 */
import { temporal } from '@temporalio/proto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAuthChecklistActivities } from '../../src/activities/checklistAuth';
import type { CheckInput } from '../../src/activities/checklistTypes';
import { ensureCanarySchedule } from '../../src/canary/schedule';
import { freePort } from '../../src/dev/process';
import { plivoV3Signature, twilioSignature } from '../../src/sandbox/callbacks';
import { canaryScheduleId } from '../../src/shared/canary';
import { EncryptionCodec, parsePayloadKeyring } from '../../src/temporal/codec';
import { messages, waitFor } from '../helpers/authClient';
import { metric, raiseRateLimits, resetDelivery, setFault } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const CANARY = 'canary-operator';
const PHONE = '+15550107788';
const TIMEOUT_MS = 10_000;

interface RunRow {
  id: string;
  status: string;
  latency_ms: number | null;
  challenge_id: string | null;
  detail: string | null;
  workflow_id: string;
}

describe('delivery canary', () => {
  let h: Harness;
  let control: (method: string, path: string, body?: unknown) => Promise<Response>;

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
        // the email channel has its own file (canary-email.test.ts)
        WARDEN_CANARY_CHANNELS: 'sms',
      },
    });
    await raiseRateLimits(h);
    await h.sql('INSERT INTO users (sub, phone, email) VALUES ($1, $2, $3)', [CANARY, PHONE, 'canary@ops.example']);
    control = (method, path, body) =>
      fetch(`${h.sandbox.url}${path}`, {
        method,
        ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
      });
  });
  afterAll(async () => {
    await h?.runtime.temporal.client.schedule
      .getHandle(canaryScheduleId(h.config.temporal.taskQueue))
      .delete()
      .catch(() => {});
    await h?.close();
  });
  afterEach(async () => resetDelivery(h));

  const runs = () => h.sql<RunRow>('SELECT * FROM canary_runs ORDER BY started_at');
  const schedule = () => h.runtime.temporal.client.schedule.getHandle(canaryScheduleId(h.config.temporal.taskQueue));

  /** Triggers the schedule once and waits for that run's row to have an outcome. */
  async function scheduledRun(): Promise<RunRow> {
    const before = (await runs()).length;
    await schedule().trigger();
    return waitFor(
      'a canary run with an outcome',
      async () => {
        const all = await runs();
        const run = all[before];
        return run && run.status !== 'waiting' ? run : undefined;
      },
      TIMEOUT_MS + 60_000,
    );
  }

  const inboundUrl = (provider: 'twilio' | 'plivo') =>
    `${h.config.delivery.callbackBaseUrl}/callbacks/v1/${provider}/inbound`;
  const form = (url: string, params: Record<string, string>, headers: Record<string, string>) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(params).toString(),
    });

  it(
    'ensures one schedule, and a scheduled run verifies its code through Twilio inbound',
    { timeout: 120_000 },
    async () => {
      expect(await ensureCanarySchedule(h.runtime)).toBe('created');
      // every worker ensures it at start: the second call finds it
      expect(await ensureCanarySchedule(h.runtime)).toBe('updated');
      const described = await schedule().describe();
      expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'canaryWorkflow' });
      const numbers = (await (await control('GET', '/sandbox/inbound')).json()) as { numbers: unknown[] };
      expect(numbers.numbers).toEqual([{ number: PHONE, provider: 'twilio', url: inboundUrl('twilio') }]);

      const run = await scheduledRun();
      expect(run).toMatchObject({ status: 'success', detail: null });
      expect(run.latency_ms).toBeGreaterThan(0);
      expect(run.workflow_id).toMatch(/^canary-/);
      // the code was verified by the inbound webhook, through the public verify path
      const [challenge] = await h.sql<{ status: string; user_id: string }>(
        'SELECT status, user_id FROM auth_challenges WHERE id = $1',
        [run.challenge_id],
      );
      expect(challenge).toEqual({ status: 'verified', user_id: CANARY });
      const audit = await h.sql<{ outcome: string }>(
        "SELECT outcome FROM audit_events WHERE event_type = 'identity.auth.validation_attempt' AND challenge_id = $1",
        [run.challenge_id],
      );
      expect(audit.map((a) => a.outcome)).toEqual(['success']);
      const result = await h.runtime.temporal.client.workflow.getHandle(run.workflow_id).result();
      expect(result).toEqual({ runs: [{ channel: 'sms', outcome: 'success', latencyMs: run.latency_ms }] });

      expect(await metric(h, 'warden_canary_runs_total', { channel: 'sms', outcome: 'success' })).toBe(1);
      expect(await metric(h, 'warden_canary_latency_seconds_count', { channel: 'sms' })).toBe(1);
      expect(await metric(h, 'warden_canary_last_success_timestamp_seconds', { channel: 'sms' })).toBeGreaterThan(
        Date.now() / 1000 - 600,
      );
      expect(
        await metric(h, 'warden_delivery_callbacks_total', { provider: 'twilio', outcome: 'inbound_success' }),
      ).toBe(1);
    },
  );

  it(
    'refuses a forged inbound message with 401 and changes nothing; a signed Plivo one verifies',
    { timeout: 120_000 },
    async () => {
      // the canary's number stops answering: the code stays in the outbox, the run waits
      await control('DELETE', '/sandbox/inbound');
      const before = (await runs()).length;
      await schedule().trigger();
      const run = await waitFor('a waiting run with its challenge', async () => {
        const r = (await runs())[before];
        return r?.challenge_id ? r : undefined;
      });
      const sms = await waitFor('the canary SMS', async () =>
        (await messages(h, PHONE)).find((m) => m.idempotency_key?.startsWith(`challenge-${run.challenge_id}/`)),
      );
      const body = { From: '+15550000000', To: PHONE, Body: sms.body, MessageSid: 'SM0' };

      const forged = await form(inboundUrl('twilio'), body, {
        'X-Twilio-Signature': twilioSignature('not-the-token', inboundUrl('twilio'), body),
      });
      expect(forged.status).toBe(401);
      expect(await forged.json()).toMatchObject({ error: 'invalid_signature' });
      const unsigned = await form(inboundUrl('plivo'), { From: '15550000000', To: PHONE.slice(1), Text: sms.body }, {});
      expect(unsigned.status).toBe(401);
      // nothing was tried: the challenge is open and untouched, the run still waits
      const [challenge] = await h.sql<{ status: string; attempts: number }>(
        'SELECT status, attempts FROM auth_challenges WHERE id = $1',
        [run.challenge_id],
      );
      expect(challenge).toEqual({ status: 'open', attempts: 0 });
      expect(
        await h.sql(
          "SELECT 1 FROM audit_events WHERE event_type = 'identity.auth.validation_attempt' AND challenge_id = $1",
          [run.challenge_id],
        ),
      ).toEqual([]);
      expect((await runs())[before]!.status).toBe('waiting');

      // a signed message without its text is bad input, not a server error
      const incomplete = { From: '+15550000000', To: PHONE };
      const bad = await form(inboundUrl('twilio'), incomplete, {
        'X-Twilio-Signature': twilioSignature(h.config.providers.twilio.authToken, inboundUrl('twilio'), incomplete),
      });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: 'invalid_request' });

      // the same message, signed as Plivo signs an incoming SMS, is the canary's answer
      const plivo = { From: '15550000000', To: PHONE.slice(1), Type: 'sms', Text: sms.body, MessageUUID: 'm-1' };
      const nonce = '8f2c1d9e7a';
      const signed = await form(inboundUrl('plivo'), plivo, {
        'X-Plivo-Signature-V3': plivoV3Signature(h.config.providers.plivo.authToken, inboundUrl('plivo'), plivo, nonce),
        'X-Plivo-Signature-V3-Nonce': nonce,
      });
      expect(signed.status).toBe(204);
      const done = await waitFor('the run to succeed', async () => {
        const r = (await runs())[before];
        return r && r.status !== 'waiting' ? r : undefined;
      });
      expect(done.status).toBe('success');
      expect(await metric(h, 'warden_canary_runs_total', { channel: 'sms', outcome: 'success' })).toBe(2);
      await ensureCanarySchedule(h.runtime); // the number answers again
    },
  );

  it(
    "runs the recovery checklist's SMS items through one canary run when the providers are live",
    { timeout: 120_000 },
    async () => {
      // the same Warden as seen by a worker with live SMS credentials: no outbox to read codes from
      const p = h.config.providers;
      const live = {
        ...h.config,
        providers: { ...p, twilio: { ...p.twilio, sandbox: false }, plivo: { ...p.plivo, sandbox: false } },
      };
      const checks = createAuthChecklistActivities({ ...h.runtime, config: live });
      const input = {
        incidentId: 'INC-canary',
        baseline: { takenAt: new Date().toISOString(), values: {} },
      } as unknown as CheckInput;
      const outcome = await checks.checkSmsOtpFlow(input);
      expect(outcome.items.map((i) => [i.id, i.status])).toEqual([
        ['sms_otp_generation', 'passed'],
        ['valid_token_validation', 'passed'],
      ]);
      const workflowId = `canary-checklist-INC-canary-sms-${Date.parse(input.baseline.takenAt)}`;
      expect(outcome.items[1]!.detail).toMatch(
        new RegExp(`^canary canary-operator \\(${workflowId}\\): verified in \\d+ ms`),
      );

      // its webhook submitted a wrong code first: refused as invalid, then the right one verified
      const [run] = await h.sql<RunRow & { checks: boolean }>('SELECT * FROM canary_runs WHERE workflow_id = $1', [
        workflowId,
      ]);
      expect(run).toMatchObject({ status: 'success', checks: true });
      expect(run!.detail).toBe(
        'wrong code refused (401 invalid_otp); the code in no history, log line, audit row or metric scanned',
      );
      const audit = await h.sql<{ outcome: string }>(
        "SELECT outcome FROM audit_events WHERE event_type = 'identity.auth.validation_attempt' AND challenge_id = $1 ORDER BY id",
        [run!.challenge_id],
      );
      expect(audit.map((a) => a.outcome)).toEqual(['invalid_otp', 'success']);

      // the other SMS items read the same run: no second message, nothing from the outbox
      const invalid = await checks.checkInvalidTokens(input);
      expect(invalid.items[0]!.detail).toContain(
        `refused: wrong code (canary canary-operator (${workflowId}): 401 invalid_otp, then the right code verified)`,
      );
      const leaks = await checks.checkTokenLeaks(input);
      expect(leaks.items[0], leaks.items[0]!.detail).toMatchObject({ id: 'no_plaintext_tokens', status: 'passed' });
      // the email channel is the sandbox's here: its synthetic flow, then the canary's verdict
      expect(leaks.items[0]!.detail).toMatch(
        /^not found in \d+ audit rows, 1 challenge rows, 1 workflow histories \(\d+ payloads, decoded\), \d+ log lines of this process, 1 metrics page\(s\); the canary code not found in \d+ audit rows, 1 challenge rows, 1 canary runs, 2 workflow histories/,
      );
      expect(await h.sql('SELECT 1 FROM canary_runs WHERE workflow_id = $1', [workflowId])).toHaveLength(1);
      expect(await metric(h, 'warden_canary_runs_total', { channel: 'sms', outcome: 'success' })).toBe(3);
    },
  );

  it('records a timeout when the message never comes back, and counts it', { timeout: 120_000 }, async () => {
    const lastSuccess = await metric(h, 'warden_canary_last_success_timestamp_seconds', { channel: 'sms' });
    // both SMS providers take the message and lose it
    await setFault(h, { provider: 'twilio', mode: 'undelivered' });
    await setFault(h, { provider: 'plivo', mode: 'undelivered' });
    const run = await scheduledRun();
    expect(run).toMatchObject({ status: 'timeout', latency_ms: null });
    expect(run.detail).toBe(`no message came back within ${TIMEOUT_MS} ms`);
    const [challenge] = await h.sql<{ status: string }>('SELECT status FROM auth_challenges WHERE id = $1', [
      run.challenge_id,
    ]);
    expect(challenge!.status).toBe('open');
    expect(await metric(h, 'warden_canary_runs_total', { channel: 'sms', outcome: 'timeout' })).toBe(1);
    expect(await metric(h, 'warden_canary_runs_total', { channel: 'sms', outcome: 'success' })).toBe(3);
    expect(await metric(h, 'warden_canary_latency_seconds_count', { channel: 'sms' })).toBe(3);
    expect(await metric(h, 'warden_canary_last_success_timestamp_seconds', { channel: 'sms' })).toBe(lastSuccess);
    expect(h.logs.text()).toContain('canary run failed: timeout');
  });

  it('keeps the canary codes out of histories, logs, metrics and its table', { timeout: 60_000 }, async () => {
    const codes = (await messages(h, PHONE)).map((m) => /\b(\d{6})\b/.exec(m.body)![1]!);
    // the lost message of the timeout test never reached the outbox
    expect(codes).toHaveLength(3);
    const find = (text: string) =>
      [...text.matchAll(/(?<![0-9A-Za-z])[0-9]{6}(?![0-9A-Za-z])/g)].map((m) => m[0]).filter((c) => codes.includes(c));

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
    }
    // a scheduled run's signal carried a channel, an outcome and a latency, nothing else; the
    // checklist's also its verdicts: an answer and the names of places
    const signalled = await h.sql<{ workflow_id: string; checks: boolean }>(
      "SELECT workflow_id, checks FROM canary_runs WHERE status = 'success' ORDER BY started_at",
    );
    expect(signalled.map((r) => r.checks)).toEqual([false, false, true]);
    for (const { workflow_id: id, checks } of signalled) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      const signal = history.events!.find((e) => e.workflowExecutionSignaledEventAttributes)!;
      const [payload] = await codec.decode(signal.workflowExecutionSignaledEventAttributes!.input!.payloads!);
      const report = JSON.parse(Buffer.from(payload!.data!).toString('utf8')) as Record<string, unknown>;
      expect(Object.keys(report).sort()).toEqual(
        ['channel', 'latencyMs', 'outcome', ...(checks ? ['checks'] : [])].sort(),
      );
      if (checks)
        expect(report.checks).toEqual({
          wrongSecret: { verdict: 'refused', answer: '401 invalid_otp' },
          plaintext: {
            found: [],
            scanned: expect.arrayContaining([expect.stringMatching(/log lines of this process$/)]),
          },
        });
    }

    expect(find(h.logs.text())).toEqual([]);
    expect(find(await (await fetch(`${h.servers!.urls.metrics}/metrics`)).text())).toEqual([]);
    expect(find(JSON.stringify(await h.sql('SELECT * FROM canary_runs')))).toEqual([]);
    expect(find(JSON.stringify(await h.sql('SELECT * FROM audit_events')))).toEqual([]);
  });
});
