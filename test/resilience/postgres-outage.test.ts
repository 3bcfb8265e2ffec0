import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/db/embedded';
import { freePort } from '../../src/dev/process';
import { CHALLENGE_ENDS, CHALLENGE_WORKFLOW_TYPE, challengeWorkflowId } from '../../src/shared/auth';
import { initiate, messagesFor, post, secretFor, waitFor } from '../helpers/authClient';
import { raiseRateLimits, sendKey, setFault } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const ENDED: readonly string[] = CHALLENGE_ENDS;

/**
 * Postgres stopped under a running Warden (its own embedded server, so stopping it touches no
 * other test): the public API and /readyz answer 503 with a JSON body and a stable code while
 * it is down, never 500; once the same server is started again on the same data directory and
 * port, the API serves 202/200 again without any restart of Warden's processes, and no
 * challenge row is left half-written.
 */
describe('Postgres stopped and started again under a running Warden', () => {
  let h: Harness;
  let pg: EmbeddedServer | undefined;
  let scratch: string;
  let port: number;
  const startPg = async () => {
    pg = await startEmbeddedPostgres({ dir: path.join(scratch, 'pg'), port });
  };
  beforeAll(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'warden-pg-outage-'));
    // as root, initdb runs as the postgres user, which must be able to enter the folder
    chmodSync(scratch, 0o755);
    port = await freePort();
    await startPg();
    h = await startHarness({ databaseUrl: pg!.url });
    await raiseRateLimits(h);
  }, 180_000);
  afterAll(async () => {
    await h?.close();
    await pg?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const readyz = () => h.admin.inject({ method: 'GET', url: '/readyz' });
  const expect503 = (res: { statusCode: number; headers: Record<string, unknown>; body: string }, what: string) => {
    expect(res.statusCode, `${what}: ${res.body}`).toBe(503);
    expect(String(res.headers['content-type']), what).toMatch(/^application\/json/);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(body, what).toMatchObject({ error: 'unavailable', message: expect.any(String) });
    expect(res.headers['retry-after'], what).toBeDefined();
  };

  it(
    'answers 503 unavailable while it is down and serves again by itself once it is back',
    { timeout: 180_000 },
    async () => {
      // before: a challenge that is delivered and waits for verify across the outage
      const before = await initiate(h, 'otp', 'test-user');
      expect(before.statusCode, before.body).toBe(202);
      const waiting = before.json<{ challenge_id: string }>().challenge_id;
      const waitingCode = await secretFor(h, waiting);
      // and one whose send is in flight when Postgres goes: Twilio takes it, answers late
      await setFault(h, { provider: 'twilio', mode: 'delay', delay_ms: 3_000, count: 1 });
      const inFlight = await initiate(h, 'otp', 'test-user-2');
      expect(inFlight.statusCode, inFlight.body).toBe(202);
      const sending = inFlight.json<{ challenge_id: string }>().challenge_id;
      await waitFor(
        'Twilio to accept the in-flight send',
        async () => ((await messagesFor(h, sending)).length > 0 ? true : undefined),
        30_000,
      );
      expect((await readyz()).statusCode).toBe(200);

      await pg!.stop();
      pg = undefined;

      // down: every public call and the readiness probe is a clear 503, never a 500
      for (let round = 0; round < 2; round += 1) {
        expect503(await initiate(h, 'otp', 'alice'), `otp initiate, round ${round}`);
        expect503(await initiate(h, 'magic-link', 'bob'), `magic-link initiate, round ${round}`);
        expect503(
          await post(h, '/otp/verify', { challenge_id: waiting, otp: waitingCode }),
          `otp verify, round ${round}`,
        );
        expect503(
          await post(h, '/magic-link/verify', { challenge: waiting, token: 'A'.repeat(43) }),
          `magic-link verify, round ${round}`,
        );
        expect503(await post(h, '/otp/resend', { challenge_id: waiting }), `otp resend, round ${round}`);
        const probe = await readyz();
        expect(probe.statusCode).toBe(503);
        expect(probe.json()).toMatchObject({
          status: 'not_ready',
          checks: { database: expect.stringMatching(/^(unavailable|timeout)$/), temporal: 'ok' },
        });
      }

      // down long enough for the in-flight send to run out of attempts against the database
      const client = h.runtime.temporal.client;
      await waitFor(
        'the in-flight send activity to give up while Postgres is down',
        async () => {
          const events = (await client.workflow.getHandle(challengeWorkflowId(sending)).fetchHistory()).events ?? [];
          return events.some((e) => e.activityTaskFailedEventAttributes) ? true : undefined;
        },
        60_000,
      );

      // back on the same data directory and port; Warden's processes are not touched
      await startPg();
      const recovered = await waitFor(
        'the API to issue challenges again',
        async () => {
          const res = await initiate(h, 'magic-link', 'alice');
          if (res.statusCode === 202) return res.json<{ challenge_id: string }>().challenge_id;
          expect503(res, 'initiate while recovering');
          return undefined;
        },
        90_000,
      );
      expect((await readyz()).statusCode).toBe(200);
      const token = await secretFor(h, recovered, 1, 'alice@example.com');
      const link = await post(h, '/magic-link/verify', { challenge: recovered, token });
      expect(link.statusCode, link.body).toBe(200);
      // the challenge that waited across the outage still verifies, once
      const ok = await post(h, '/otp/verify', { challenge_id: waiting, otp: waitingCode });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toEqual({ status: 'verified' });

      // the in-flight send settled: one message, an outcome on the row, the ledger says sent
      const settled = await waitFor(
        'the in-flight send to have its outcome',
        async () => {
          const [row] = await h.sql<{ delivery_status: string | null; delivery_outcome: string | null }>(
            'SELECT delivery_status, delivery_outcome FROM auth_challenges WHERE id = $1',
            [sending],
          );
          return row?.delivery_outcome ? row : undefined;
        },
        90_000,
      );
      expect(settled).toMatchObject({ delivery_status: 'delivered', delivery_outcome: 'sent' });
      expect(await messagesFor(h, sending)).toHaveLength(1);
      expect(
        await h.sql('SELECT provider, status FROM delivery_attempts WHERE idempotency_key = $1', [sendKey(sending)]),
      ).toEqual([{ provider: 'twilio', status: 'sent' }]);

      // no half-written rows: every challenge row is ended or has its running workflow, and every
      // running challenge workflow has its row (the ones refused in the outage ended without one)
      const rows = await h.sql<{ id: string; status: string; delivery_outcome: string | null }>(
        'SELECT id, status, delivery_outcome FROM auth_challenges',
      );
      expect(rows.length).toBeGreaterThanOrEqual(3);
      for (const row of rows) {
        if (ENDED.includes(row.status)) continue;
        const d = await client.workflow.getHandle(challengeWorkflowId(row.id)).describe();
        expect(d.status.name, row.id).toBe('RUNNING');
        expect(row.delivery_outcome, row.id).not.toBeNull();
      }
      const known = new Set(rows.map((r) => challengeWorkflowId(r.id)));
      const listed: Array<{ workflowId: string; status: string }> = [];
      for await (const wf of client.workflow.list({
        query: `WorkflowType = '${CHALLENGE_WORKFLOW_TYPE}' AND TaskQueue = '${h.config.temporal.taskQueue}'`,
      })) {
        listed.push({ workflowId: wf.workflowId, status: wf.status.name });
      }
      for (const wf of listed) {
        if (wf.status === 'RUNNING') expect(known.has(wf.workflowId), wf.workflowId).toBe(true);
      }
    },
  );
});
