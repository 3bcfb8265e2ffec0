import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHALLENGE_WORKFLOW_TYPE, challengeWorkflowId } from '../../src/shared/auth';
import { initiate, messages, post, secretFor, waitFor, type OutboxMessage } from '../helpers/authClient';
import { raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/workerProcess';

const LINK_PATH = '/magic-link/verify';
const USERS = 30;
/** each user gets one OTP and one magic link: 60 initiates */
const TOTAL = USERS * 2;

type Method = 'otp' | 'magic-link';
interface Sent {
  user: string;
  method: Method;
  status: number;
  body: Record<string, unknown>;
}

/**
 * SIGKILL of the only worker process in the middle of a stream of OTP and magic-link
 * initiates. The API (in-process here) keeps answering, 202 or 503 unavailable, never 500;
 * every challenge whose workflow was started reaches a settled state once a replacement
 * worker runs: issued, its one message delivered (an outcome on the row) and its workflow
 * waiting for verify with nothing in flight; no send reached the outbox twice, and the codes
 * and links verify.
 */
describe('the worker process killed with SIGKILL under initiate load', () => {
  let h: Harness;
  const workers: WorkerProcess[] = [];
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    await raiseRateLimits(h);
    for (let i = 0; i < USERS; i += 1) {
      const n = String(i).padStart(2, '0');
      await h.sql('INSERT INTO users (sub, phone, email) VALUES ($1, $2, $3)', [
        `chaos-${n}`,
        `+155555520${n}`,
        `chaos-${n}@example.com`,
      ]);
    }
  }, 180_000);
  afterAll(async () => {
    for (const w of workers) await w.stop().catch(() => {});
    await h?.close();
  });

  it(
    'settles every started challenge with exactly one message each, and their codes verify',
    { timeout: 180_000 },
    async () => {
      workers.push(await spawnWorkerProcess(h));
      const inFlight: Array<Promise<Sent>> = [];
      const fire = (i: number) => {
        const user = `chaos-${String(i % USERS).padStart(2, '0')}`;
        const method: Method = (i < USERS ? i : i + 1) % 2 === 0 ? 'otp' : 'magic-link';
        inFlight.push(
          initiate(h, method, user).then((res) => ({
            user,
            method,
            status: res.statusCode,
            body: res.json<Record<string, unknown>>(),
          })),
        );
      };
      const stream = async (from: number, to: number) => {
        for (let i = from; i < to; i += 1) {
          fire(i);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };

      // one stream of initiates (~100 ms apart); the kill lands in it once the worker is visibly
      // busy delivering, and the replacement starts while the stream goes on without a worker
      const streaming = stream(0, TOTAL);
      await waitFor(
        'the first messages in the outbox',
        async () => ((await messages(h)).length >= 5 ? true : undefined),
        60_000,
      );
      const first = workers[0]!;
      first.child.kill('SIGKILL');
      const launchedBeforeKill = inFlight.length;
      await first.stop();
      expect(first.child.signalCode).toBe('SIGKILL');
      const deliveredBeforeKill = (await messages(h)).length;
      const [, second] = await Promise.all([streaming, spawnWorkerProcess(h)]);
      workers.push(second);

      const answers = await Promise.all(inFlight);
      // the API never failed a request with a 500: issued, or a clear 503 while no worker answered
      for (const a of answers) {
        if (a.status === 503) expect(a.body).toMatchObject({ error: 'unavailable' });
        else expect(a.status, JSON.stringify(a.body)).toBe(202);
      }
      // the kill really landed under load: challenges already started were not delivered yet
      expect(deliveredBeforeKill).toBeLessThan(launchedBeforeKill);

      // every initiate started a challenge workflow (a 503 only means the answer came too late)
      const client = h.runtime.temporal.client;
      const listed = await waitFor(
        'every challenge workflow in visibility',
        async () => {
          const ids: string[] = [];
          for await (const wf of client.workflow.list({
            query: `WorkflowType = '${CHALLENGE_WORKFLOW_TYPE}' AND TaskQueue = '${h.config.temporal.taskQueue}'`,
          })) {
            ids.push(wf.workflowId);
          }
          return ids.length >= TOTAL ? ids : undefined;
        },
        60_000,
      );
      expect(listed).toHaveLength(TOTAL);
      const accepted = answers
        .filter((a) => a.status === 202)
        .map((a) => challengeWorkflowId(String(a.body.challenge_id)));
      expect(listed).toEqual(expect.arrayContaining(accepted));
      const challengeIds = listed.map((id) => id.replace(/^challenge-/, ''));

      // settled: the row has its delivery outcome and the workflow waits for verify, nothing in flight
      type Row = {
        id: string;
        user_id: string;
        method: string;
        status: string;
        delivery_status: string | null;
        delivery_outcome: string | null;
        sends: number;
      };
      const rows = await waitFor(
        'every challenge to be delivered',
        async () => {
          const found = await h.sql<Row>(
            'SELECT id, user_id, method, status, delivery_status, delivery_outcome, sends FROM auth_challenges WHERE id = ANY($1::uuid[]) ORDER BY created_at, id',
            [challengeIds],
          );
          return found.length === TOTAL && found.every((r) => r.delivery_outcome !== null) ? found : undefined;
        },
        120_000,
      );
      for (const r of rows)
        expect(r, r.id).toMatchObject({
          status: 'open',
          delivery_status: 'delivered',
          delivery_outcome: 'sent',
          sends: 1,
        });
      for (const id of listed) {
        const settled = await waitFor(
          `workflow ${id} to have no activity in flight`,
          async () => {
            const d = await client.workflow.getHandle(id).describe();
            if (d.status.name !== 'RUNNING') return d;
            return (d.raw.pendingActivities ?? []).length === 0 ? d : undefined;
          },
          60_000,
        );
        expect(settled.status.name, id).toBe('RUNNING'); // waiting for verify: the challenges live for minutes
      }
      // each user got one OTP and one magic link
      const perUser = new Map<string, string[]>();
      for (const r of rows) perUser.set(r.user_id, [...(perUser.get(r.user_id) ?? []), r.method].sort());
      expect(perUser.size).toBe(USERS);
      for (const methods of perUser.values()) expect(methods).toEqual(['magic_link', 'sms_otp']);

      // the outbox: one message per send key and per challenge, none for anything else
      const outbox = (await messages(h)).filter((m) => m.idempotency_key?.startsWith('challenge-'));
      const byKey = new Map<string, OutboxMessage[]>();
      const byChallenge = new Map<string, OutboxMessage[]>();
      for (const m of outbox) {
        byKey.set(m.idempotency_key!, [...(byKey.get(m.idempotency_key!) ?? []), m]);
        const challenge = /^challenge-([0-9a-f-]{36})\//.exec(m.idempotency_key!)![1]!;
        byChallenge.set(challenge, [...(byChallenge.get(challenge) ?? []), m]);
      }
      expect([...byKey.entries()].filter(([, list]) => list.length > 1).map(([key]) => key)).toEqual([]);
      expect([...byChallenge.entries()].filter(([, list]) => list.length > 1).map(([id]) => id)).toEqual([]);
      expect([...byChallenge.keys()].sort()).toEqual([...challengeIds].sort());
      expect(outbox).toHaveLength(TOTAL);

      // a sample of the codes and links verifies: some from before the kill, some from after
      const otp = rows.filter((r) => r.method === 'sms_otp');
      const links = rows.filter((r) => r.method === 'magic_link');
      const sample = [...otp.slice(0, 3), ...otp.slice(-2), ...links.slice(0, 3), ...links.slice(-2)];
      for (const r of sample) {
        const secret = await secretFor(h, r.id);
        const res =
          r.method === 'sms_otp'
            ? await post(h, '/otp/verify', { challenge_id: r.id, otp: secret })
            : await post(h, LINK_PATH, { challenge: r.id, token: secret });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual({ status: 'verified' });
      }
    },
  );
});
