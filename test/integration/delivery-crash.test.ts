/**
 * Exactly once in effect across a crash: the production worker entry runs as a child process,
 * Twilio accepts the SMS but answers late (the sandbox's `delay` fault), and the worker is
 * killed with SIGKILL while the call is in flight. The replacement worker repeats the call with
 * the same idempotency key (the heartbeat timeout notices the dead attempt), Twilio
 * deduplicates it, and the user has one SMS whose code verifies.
 */
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initiate, messagesFor, post, waitFor } from '../helpers/authClient';
import { deliveryOutcome, requestsFor, sendKey, setFault } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/workerProcess';

describe('a worker killed mid-send', () => {
  let h: Harness;
  const workers: WorkerProcess[] = [];
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    for (const w of workers) await w.stop().catch(() => {});
    await h?.close();
  });

  it('yields exactly one message for the send, and the challenge still completes', async () => {
    const first = await spawnWorkerProcess(h);
    workers.push(first);
    await setFault(h, { provider: 'twilio', mode: 'delay', delay_ms: 30_000, count: 1 });

    const res = await initiate(h, 'otp', 'test-user');
    expect(res.statusCode).toBe(202);
    const { challenge_id } = res.json<{ challenge_id: string }>();
    const key = sendKey(challenge_id);

    // Twilio has the message (it is in the outbox) but has not answered yet: kill the worker now
    await waitFor(
      'Twilio to accept the message',
      async () => ((await messagesFor(h, challenge_id)).length > 0 ? true : undefined),
      30_000,
    );
    const [inFlight] = await h.sql<{ status: string }>(
      'SELECT status FROM delivery_attempts WHERE idempotency_key = $1',
      [key],
    );
    expect(inFlight?.status).toBe('sending');
    first.child.kill('SIGKILL');
    await first.stop();

    const second = await spawnWorkerProcess(h);
    workers.push(second);
    const row = await deliveryOutcome(h, challenge_id, 1, 60_000);
    expect(row).toMatchObject({ delivery_status: 'delivered', delivery_provider: 'twilio', delivery_outcome: 'sent' });

    // one message for the send; the repeated call reached Twilio and was deduplicated by key
    const sent = await messagesFor(h, challenge_id);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ provider: 'twilio', idempotency_key: key });
    expect((await requestsFor(h, key)).map((r) => [r.provider, r.outcome])).toEqual([
      ['twilio', 'accepted'],
      ['twilio', 'deduplicated'],
    ]);
    expect(
      await h.sql('SELECT provider, status, attempts FROM delivery_attempts WHERE challenge_id = $1', [challenge_id]),
    ).toEqual([{ provider: 'twilio', status: 'sent', attempts: 2 }]);
    expect(second.output.join('\n')).toContain('repeating a send whose outcome was lost');

    // the send activity records the outcome itself; the verify goes to the workflow once it has
    // taken that activity's completion (the dead worker's sticky queue hands it on after its
    // schedule-to-start timeout)
    const { EventType } = temporal.api.enums.v1;
    await waitFor(
      'the workflow to take the send activity completion',
      async () => {
        const types = (
          await h.runtime.temporal.client.workflow.getHandle(`challenge-${challenge_id}`).fetchHistory()
        ).events!.map((e) => e.eventType);
        const completed = types.indexOf(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED);
        return completed >= 0 && types.slice(completed).includes(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
          ? true
          : undefined;
      },
      30_000,
    );
    const code = /\b(\d{6})\b/.exec(sent[0]!.body)![1]!;
    const ok = await post(h, '/otp/verify', { challenge_id, otp: code });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toEqual({ status: 'verified' });
  });
});
