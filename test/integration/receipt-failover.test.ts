/**
 * Failover on a missing receipt (src/delivery/receipts.ts): a send the provider took but never
 * reported, delivered or failed, within the channel's deadline is re-sent once through the
 * backup with the same code or link. Real worker, dev server, Postgres; the sandbox calls back
 * on the public port, and its `no_receipt` / `late_receipt` / `undelivered` faults play the
 * silent, the late and the failing provider. Nothing here times anything: a test waits for an
 * outcome (a message, a workflow's end, its receipt timer resolved) and then looks at it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { temporal } from '@temporalio/proto';
import { applyReport } from '../../src/delivery/reports';
import { freePort } from '../../src/dev/process';
import { challengeWorkflowId } from '../../src/shared/auth';
import { initiate, messagesFor, post, waitFor, type OutboxMessage } from '../helpers/authClient';
import {
  deliveryOutcome,
  metric,
  raiseRateLimits,
  requestsFor,
  resetDelivery,
  sendKey,
  setFault,
} from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

// long enough for a verify to beat it on a busy machine, short enough for the suite
const DEADLINE_MS = 4000;
const EventType = temporal.api.enums.v1.EventType;

const secretOf = (m: OutboxMessage) =>
  (m.channel === 'sms' ? /\b(\d{6})\b/.exec(m.body) : /[?&]token=([A-Za-z0-9_-]{43})/.exec(m.body))?.[1];

describe('failover on a missing delivery receipt', () => {
  let h: Harness;
  beforeAll(async () => {
    const port = await freePort();
    h = await startHarness({
      listen: true,
      env: {
        WARDEN_PUBLIC_PORT: String(port),
        WARDEN_RECEIPT_DEADLINE_SMS_MS: String(DEADLINE_MS),
        WARDEN_RECEIPT_DEADLINE_EMAIL_MS: String(DEADLINE_MS),
      },
    });
    expect(h.config.delivery.receiptDeadlineMs).toEqual({ sms: DEADLINE_MS, email: DEADLINE_MS });
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());
  afterEach(async () => resetDelivery(h));

  const history = (challengeId: string) =>
    h.runtime.temporal.client.workflow.getHandle(challengeWorkflowId(challengeId)).fetchHistory();

  /**
   * The send's receipt timer (the one timer of the deadline's length): `fired`, `canceled`,
   * `pending`, or `none` when the watch never needed one (its receipt or the end came first).
   */
  async function receiptTimer(challengeId: string): Promise<'fired' | 'canceled' | 'pending' | 'none'> {
    const events = (await history(challengeId)).events ?? [];
    const started = events.find((e) => {
      const timeout = e.timerStartedEventAttributes?.startToFireTimeout;
      return timeout && Number(String(timeout.seconds ?? 0)) * 1000 + (timeout.nanos ?? 0) / 1e6 === DEADLINE_MS;
    });
    if (!started) return 'none';
    const id = started.timerStartedEventAttributes!.timerId;
    if (events.some((e) => e.timerFiredEventAttributes?.timerId === id)) return 'fired';
    if (events.some((e) => e.timerCanceledEventAttributes?.timerId === id)) return 'canceled';
    return 'pending';
  }

  /** Waits until the workflow has taken in a receipt signal and its receipt timer, if any, is resolved. */
  async function watchSettled(challengeId: string): Promise<'fired' | 'canceled' | 'none'> {
    return waitFor(
      `the receipt watch of ${challengeId}`,
      async () => {
        const events = (await history(challengeId)).events ?? [];
        const signalled = events.findIndex(
          (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'deliveryReceipt',
        );
        const handled =
          signalled >= 0 &&
          events.slice(signalled).some((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
        const timer = await receiptTimer(challengeId);
        return handled && timer !== 'pending' ? timer : undefined;
      },
      30_000,
    );
  }

  const circuitFailures = async (provider: string) =>
    (
      await h.sql<{ consecutive_failures: number }>(
        'SELECT consecutive_failures FROM provider_circuits WHERE provider = $1',
        [provider],
      )
    )[0]?.consecutive_failures;

  const timeouts = (provider: string) => metric(h, 'warden_delivery_receipt_timeouts_total', { provider });

  it('re-sends a send Twilio never reports through Plivo once, with the same code, which verifies', async () => {
    await setFault(h, { provider: 'twilio', mode: 'no_receipt', count: 1 });
    const timeoutsBefore = await timeouts('twilio');
    const failoversBefore = await metric(h, 'warden_delivery_failovers_total', { scope: 'receipt' });
    const { challenge_id } = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>();

    const sent = await waitFor(
      'the backup re-send',
      async () => {
        const all = await messagesFor(h, challenge_id);
        return all.some((m) => m.provider === 'plivo') ? all.reverse() : undefined;
      },
      30_000,
    );
    expect(sent.map((m) => [m.provider, m.idempotency_key])).toEqual([
      ['twilio', sendKey(challenge_id)],
      ['plivo', sendKey(challenge_id)],
    ]);
    const code = secretOf(sent[0]!);
    expect(code).toMatch(/^\d{6}$/);
    expect(secretOf(sent[1]!)).toBe(code);
    expect(await receiptTimer(challenge_id)).toBe('fired');

    expect((await requestsFor(h, sendKey(challenge_id))).map((r) => [r.provider, r.outcome, r.fault])).toEqual([
      ['twilio', 'accepted', 'no_receipt'],
      ['plivo', 'accepted', null],
    ]);
    // the sandbox holds the message as soon as Plivo takes it; Warden records the outcome when
    // Plivo's answer comes back, a moment later
    const outcome = await waitFor(
      'the re-send recorded',
      async () => {
        const row = await deliveryOutcome(h, challenge_id);
        return row?.delivery_provider === 'plivo' ? row : undefined;
      },
      15_000,
    ).catch(() => deliveryOutcome(h, challenge_id));
    expect(outcome).toMatchObject({
      delivery_provider: 'plivo',
      delivery_outcome: 'failed_over',
      sends: 1,
    });
    const ledger = await h.sql(
      'SELECT provider, status, error_code FROM delivery_attempts WHERE challenge_id = $1 ORDER BY id',
      [challenge_id],
    );
    expect(ledger).toEqual([
      { provider: 'twilio', status: 'sent', error_code: 'receipt_timeout' },
      { provider: 'plivo', status: 'sent', error_code: null },
    ]);
    // the silence is a failure of Twilio's, on its circuit and in the metrics
    expect(await circuitFailures('twilio')).toBe(1);
    expect(await timeouts('twilio')).toBe(timeoutsBefore + 1);
    expect(await metric(h, 'warden_delivery_failovers_total', { from: 'twilio', to: 'plivo', scope: 'receipt' })).toBe(
      failoversBefore + 1,
    );
    expect(h.logs.lines.some((l) => l.includes('no delivery receipt from twilio'))).toBe(true);

    const ok = await post(h, '/otp/verify', { challenge_id, otp: code });
    expect(ok.statusCode, ok.body).toBe(200);
    await h.runtime.temporal.client.workflow.getHandle(challengeWorkflowId(challenge_id)).result();
    // once: nothing more went out, and the code is in no log line
    expect(await messagesFor(h, challenge_id)).toHaveLength(2);
    expect(h.logs.lines.some((l) => l.includes(code!))).toBe(false);
  });

  it('keeps the backup re-send when the silent provider reports a failure after all', async () => {
    await setFault(h, { provider: 'twilio', mode: 'no_receipt', count: 1 });
    await setFault(h, { provider: 'plivo', mode: 'no_receipt', count: 1 });
    const { challenge_id } = (await initiate(h, 'otp', 'alice')).json<{ challenge_id: string }>();
    await waitFor(
      'the backup re-send',
      async () => ((await messagesFor(h, challenge_id)).some((m) => m.provider === 'plivo') ? true : undefined),
      30_000,
    );
    // Twilio's late word on its own message, which may come while Plivo's call is still open:
    // recorded on its ledger row, the re-send still stands
    const applied = await applyReport(h.runtime, {
      provider: 'twilio',
      idempotencyKey: sendKey(challenge_id),
      outcome: 'failed',
      report: 'undelivered',
      errorClass: 'transient',
      errorCode: '30003',
    });
    expect(applied).toBe('applied');
    const outcome = await waitFor('the re-send recorded', async () => {
      const row = await deliveryOutcome(h, challenge_id);
      return row.delivery_provider === 'plivo' ? row : undefined;
    });
    expect(outcome).toMatchObject({
      delivery_status: 'delivered',
      delivery_provider: 'plivo',
      delivery_outcome: 'failed_over',
    });
    expect(await h.sql('SELECT 1 FROM delivery_failures WHERE challenge_id = $1', [challenge_id])).toEqual([]);
    expect(
      await h.sql(`SELECT report FROM delivery_attempts WHERE challenge_id = $1 AND provider = 'twilio'`, [
        challenge_id,
      ]),
    ).toEqual([{ report: 'undelivered' }]);
  });

  it('re-sends a magic link SendGrid never reports through SES with the same link', async () => {
    // no event webhook is registered: SendGrid never reports anything
    const { challenge_id } = (await initiate(h, 'magic-link', 'test-user-2')).json<{ challenge_id: string }>();
    const sent = await waitFor(
      'the SES re-send',
      async () => {
        const all = await messagesFor(h, challenge_id);
        return all.some((m) => m.provider === 'ses') ? all.reverse() : undefined;
      },
      30_000,
    );
    expect(sent.map((m) => m.provider)).toEqual(['sendgrid', 'ses']);
    const token = secretOf(sent[0]!);
    expect(token).toBeDefined();
    expect(secretOf(sent[1]!)).toBe(token);
    expect(await circuitFailures('sendgrid')).toBe(1);
  });

  it('re-sends when the receipt comes after the deadline, and the late receipt still marks it delivered', async () => {
    await setFault(h, { provider: 'twilio', mode: 'late_receipt', delay_ms: DEADLINE_MS * 2, count: 1 });
    const { challenge_id } = (await initiate(h, 'otp', 'test-user-3')).json<{ challenge_id: string }>();
    await waitFor(
      'the backup re-send',
      async () => ((await messagesFor(h, challenge_id)).some((m) => m.provider === 'plivo') ? true : undefined),
      30_000,
    );
    const late = await waitFor(
      'the late Twilio receipt',
      async () =>
        (
          await h.sql<{ report: string | null }>(
            `SELECT report FROM delivery_attempts WHERE challenge_id = $1 AND provider = 'twilio'`,
            [challenge_id],
          )
        )[0]?.report ?? undefined,
      30_000,
    );
    expect(late).toBe('delivered');
    expect((await requestsFor(h, sendKey(challenge_id))).map((r) => r.provider)).toEqual(['twilio', 'plivo']);
    expect(await deliveryOutcome(h, challenge_id)).toMatchObject({ delivery_status: 'delivered', sends: 1 });
  });

  it('does not re-send when the receipt comes before the deadline, late or not', async () => {
    const timeoutsBefore = await timeouts('twilio');
    await setFault(h, { provider: 'twilio', mode: 'late_receipt', delay_ms: 500, count: 1 });
    const late = (await initiate(h, 'otp', 'alice')).json<{ challenge_id: string }>().challenge_id;
    const prompt = (await initiate(h, 'otp', 'bob')).json<{ challenge_id: string }>().challenge_id;
    for (const challengeId of [late, prompt]) {
      expect(await watchSettled(challengeId)).not.toBe('fired');
      expect((await requestsFor(h, sendKey(challengeId))).map((r) => r.provider)).toEqual(['twilio']);
      expect(await deliveryOutcome(h, challengeId)).toMatchObject({
        delivery_status: 'delivered',
        delivery_provider: 'twilio',
        delivery_outcome: 'sent',
      });
    }
    expect(await timeouts('twilio')).toBe(timeoutsBefore);
    expect(await circuitFailures('twilio')).toBe(0);
  });

  it('takes a failed receipt down the failure path: no backup re-send, a failure row ready to be resent', async () => {
    const timeoutsBefore = await timeouts('twilio');
    await setFault(h, { provider: 'twilio', mode: 'undelivered', count: 1 });
    const { challenge_id } = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>();
    expect(await watchSettled(challenge_id)).not.toBe('fired');
    expect((await requestsFor(h, sendKey(challenge_id))).map((r) => [r.provider, r.fault])).toEqual([
      ['twilio', 'undelivered'],
    ]);
    expect(await messagesFor(h, challenge_id)).toEqual([]);
    expect(await deliveryOutcome(h, challenge_id)).toMatchObject({ delivery_status: 'failed', sends: 1 });
    const failures = await h.sql('SELECT provider, resolved_at FROM delivery_failures WHERE challenge_id = $1', [
      challenge_id,
    ]);
    expect(failures).toEqual([{ provider: 'twilio', resolved_at: null }]);
    expect(await timeouts('twilio')).toBe(timeoutsBefore);
  });

  it('does not re-send a challenge verified before the deadline', async () => {
    const timeoutsBefore = await timeouts('twilio');
    await setFault(h, { provider: 'twilio', mode: 'no_receipt', count: 1 });
    const { challenge_id } = (await initiate(h, 'otp', 'test-user-2')).json<{ challenge_id: string }>();
    const [sms] = await waitFor('the Twilio message', async () => {
      const all = await messagesFor(h, challenge_id);
      return all.length ? all : undefined;
    });
    const ok = await post(h, '/otp/verify', { challenge_id, otp: secretOf(sms!) });
    expect(ok.statusCode, ok.body).toBe(200);
    // the workflow ends with the verify: whatever it would have done, it has done
    await h.runtime.temporal.client.workflow.getHandle(challengeWorkflowId(challenge_id)).result();
    expect(await receiptTimer(challenge_id)).not.toBe('fired');
    expect((await requestsFor(h, sendKey(challenge_id))).map((r) => r.provider)).toEqual(['twilio']);
    expect(await timeouts('twilio')).toBe(timeoutsBefore);
    expect(await circuitFailures('twilio')).toBe(0);
  });
});
