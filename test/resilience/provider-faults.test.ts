/**
 * Provider faults under load: sandbox faults on the providers (503, timeouts, 429 with
 * Retry-After) while many OTP and magic-link initiates run at once. Once the faults clear, every
 * challenge has a delivery outcome, every send reached the user exactly once (one message in the
 * sandbox outbox and one accepted provider call per idempotency key) through the primary or the
 * backup, or else has its delivery_failures row; nothing is lost, and every code verifies.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { messages, post, waitFor, type OutboxMessage } from '../helpers/authClient';
import { clearFaults, raiseRateLimits, resetDelivery, setFault, type SandboxRequest } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const SMS_USERS = ['test-user', 'test-user-2', 'test-user-3', 'alice', 'bob', 'phone-only'];
const EMAIL_USERS = ['test-user', 'test-user-2', 'test-user-3', 'alice', 'bob', 'email-only'];
const PROVIDERS = { otp: ['twilio', 'plivo'], 'magic-link': ['sendgrid', 'ses'] } as const;

type Method = 'otp' | 'magic-link';
interface Started {
  id: string;
  method: Method;
  user: string;
}
interface Outcome {
  id: string;
  delivery_outcome: string | null;
  delivery_provider: string | null;
  sends: number;
}

describe('provider faults under load', () => {
  let h: Harness;
  beforeAll(async () => {
    // the default provider timeout (5 s): a shorter one makes a healthy backup that answers
    // slowly on a busy machine look timed out, and a timeout is recorded as failed (with a
    // resendable failure row) although the provider took the message
    h = await startHarness();
    await raiseRateLimits(h);
  }, 180_000);
  afterAll(async () => h?.close());
  afterEach(async () => resetDelivery(h));

  let ipCounter = 0;
  /** `count` OTP and `count` magic-link initiates, all in flight at once, from distinct client addresses. */
  async function initiateMany(count: number): Promise<Started[]> {
    const calls = Array.from({ length: count * 2 }, (_, i) => {
      const method: Method = i % 2 === 0 ? 'otp' : 'magic-link';
      const users = method === 'otp' ? SMS_USERS : EMAIL_USERS;
      const user = users[Math.floor(i / 2) % users.length]!;
      ipCounter += 1;
      return post(
        h,
        `/${method}/initiate`,
        { user_id: user },
        { ip: `10.8.${Math.floor(ipCounter / 250)}.${(ipCounter % 250) + 1}` },
      ).then((res) => {
        expect(res.statusCode, res.body).toBe(202);
        return { id: res.json<{ challenge_id: string }>().challenge_id, method, user };
      });
    });
    return Promise.all(calls);
  }

  async function outcomes(started: Started[]): Promise<Map<string, Outcome>> {
    return waitFor(
      `a delivery outcome for all ${started.length} challenges`,
      async () => {
        const rows = await h.sql<Outcome>(
          'SELECT id, delivery_outcome, delivery_provider, sends FROM auth_challenges WHERE id = ANY($1::uuid[])',
          [started.map((s) => s.id)],
        );
        return rows.length === started.length && rows.every((r) => r.delivery_outcome)
          ? new Map(rows.map((r) => [r.id, r]))
          : undefined;
      },
      90_000,
    );
  }

  const sandboxRequests = async () =>
    ((await (await fetch(`${h.sandbox.url}/sandbox/requests`)).json()) as { requests: SandboxRequest[] }).requests;

  /**
   * Every send of every challenge reached the user exactly once: one outbox message and one
   * accepted provider call per idempotency key, through the channel's primary or backup; a send
   * no provider took has no message and a delivery_failures row instead. Returns the messages.
   */
  async function checkExactlyOnce(
    started: Started[],
    rows: Map<string, Outcome>,
    sendNumber = 1,
  ): Promise<Map<string, OutboxMessage>> {
    const outbox = await messages(h);
    const accepted = (await sandboxRequests()).filter((r) => r.outcome === 'accepted');
    const failures = new Set(
      (
        await h.sql<{ challenge_id: string }>(
          'SELECT challenge_id FROM delivery_failures WHERE challenge_id = ANY($1::uuid[])',
          [started.map((s) => s.id)],
        )
      ).map((r) => r.challenge_id),
    );
    const delivered = new Map<string, OutboxMessage>();
    const problems: string[] = [];
    for (const s of started) {
      const key = `challenge-${s.id}/send-${sendNumber}`;
      const sent = outbox.filter((m) => m.idempotency_key === key);
      const calls = accepted.filter((r) => r.idempotency_key === key);
      const row = rows.get(s.id)!;
      if (row.delivery_outcome === 'failed') {
        if (sent.length !== 0 || !failures.has(s.id))
          problems.push(`${s.method} ${s.id}: failed with ${sent.length} messages, failure row ${failures.has(s.id)}`);
        continue;
      }
      if (sent.length !== 1 || calls.length !== 1)
        problems.push(
          `${s.method} ${s.id}: ${sent.length} messages and ${calls.length} accepted calls for ${key} (outcome ${row.delivery_outcome})`,
        );
      else if (!(PROVIDERS[s.method] as readonly string[]).includes(sent[0]!.provider))
        problems.push(`${s.method} ${s.id}: sent by ${sent[0]!.provider}`);
      else delivered.set(s.id, sent[0]!);
    }
    expect(problems).toEqual([]);
    return delivered;
  }

  /** Verifies every delivered challenge with the secret its message carried, a few at a time. */
  async function verifyAll(started: Started[], delivered: Map<string, OutboxMessage>): Promise<void> {
    const queue = started.filter((s) => delivered.has(s.id));
    const refused: string[] = [];
    const worker = async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        const body = delivered.get(s.id)!.body;
        const res =
          s.method === 'otp'
            ? await post(h, '/otp/verify', { challenge_id: s.id, otp: /\b(\d{6})\b/.exec(body)![1] })
            : await h.public.inject({
                method: 'POST',
                url: '/browser/api/v1/identity/auth/magic-link/verify',
                payload: { challenge: s.id, token: /[?&]token=([A-Za-z0-9_-]{43})/.exec(body)![1] },
              });
        if (res.statusCode !== 200 || res.json<{ status: string }>().status !== 'verified')
          refused.push(`${s.method} ${s.id}: ${res.statusCode} ${res.body}`);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    expect(refused).toEqual([]);
  }

  it(
    'Twilio answering 503 and SendGrid timing out under 60 concurrent initiates: every message arrives once through the backups and verifies',
    { timeout: 150_000 },
    async () => {
      await setFault(h, { provider: 'twilio', mode: 'error', status: 503 });
      await setFault(h, { provider: 'sendgrid', mode: 'timeout' });
      const started = await initiateMany(30);
      const rows = await outcomes(started);
      await clearFaults(h);
      const delivered = await checkExactlyOnce(started, rows);
      expect(delivered.size).toBe(started.length);
      for (const s of started) expect(delivered.get(s.id)!.provider).toBe(s.method === 'otp' ? 'plivo' : 'ses');
      await verifyAll(started, delivered);
    },
  );

  it(
    'Twilio and SendGrid throttling (429 with Retry-After) under 60 concurrent initiates: every message arrives once, through the primary or the backup, and verifies',
    { timeout: 150_000 },
    async () => {
      // the throttling ends by itself after 45 refused calls per provider, if the burst gets that far
      await setFault(h, { provider: 'twilio', mode: 'error', status: 429, retry_after: 1, count: 45 });
      await setFault(h, { provider: 'sendgrid', mode: 'error', status: 429, retry_after: 1, count: 45 });
      const started = await initiateMany(30);
      const rows = await outcomes(started);
      await clearFaults(h);
      // both primaries really throttled this burst (the breaker may route the rest around them)
      const keys = new Set(started.map((s) => `challenge-${s.id}/send-1`));
      const throttled = (await sandboxRequests()).filter((r) => r.status === 429 && keys.has(r.idempotency_key ?? ''));
      expect(new Set(throttled.map((r) => r.provider))).toEqual(new Set(['twilio', 'sendgrid']));
      const delivered = await checkExactlyOnce(started, rows);
      expect(delivered.size).toBe(started.length);
      await verifyAll(started, delivered);
    },
  );

  it(
    'every provider down (503, timeout, 429) under 40 concurrent initiates: each send is a delivery_failures row, none lost, and the resend after recovery arrives once and verifies',
    { timeout: 150_000 },
    async () => {
      await setFault(h, { provider: 'twilio', mode: 'error', status: 503 });
      await setFault(h, { provider: 'plivo', mode: 'timeout' });
      await setFault(h, { provider: 'sendgrid', mode: 'error', status: 429, retry_after: 1 });
      await setFault(h, { provider: 'ses', mode: 'error', status: 503 });
      const since = new Date(Date.now() - 1000).toISOString();
      const started = await initiateMany(20);
      const rows = await outcomes(started);
      // every send failed, and each one is recorded: nothing lost
      expect(await checkExactlyOnce(started, rows)).toEqual(new Map());
      expect([...rows.values()].every((r) => r.delivery_outcome === 'failed')).toBe(true);

      await clearFaults(h);
      const res = await h.admin.inject({
        method: 'POST',
        url: '/admin/api/v1/delivery/failures/resend',
        headers: h.adminHeaders,
        payload: { since },
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ resent: number }>().resent).toBe(started.length);
      const resentRows = await waitFor(
        'an outcome for every resend',
        async () => {
          const latest = await h.sql<Outcome>(
            'SELECT id, delivery_outcome, delivery_provider, sends FROM auth_challenges WHERE id = ANY($1::uuid[])',
            [started.map((s) => s.id)],
          );
          return latest.every((r) => r.sends === 2 && ['sent', 'failed_over'].includes(r.delivery_outcome ?? ''))
            ? new Map(latest.map((r) => [r.id, r]))
            : undefined;
        },
        90_000,
      );
      const delivered = await checkExactlyOnce(started, resentRows, 2);
      expect(delivered.size).toBe(started.length);
      await verifyAll(started, delivered);
    },
  );
});
