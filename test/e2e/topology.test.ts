/**
 * The deployed topology as processes: two API processes and two worker processes (the
 * production entry points) against the Temporal dev server and a Postgres primary with a
 * streaming replica. Sign-ins (initiate on one API, verify on the other, as a load balancer
 * would spread them) keep working while a worker is SIGKILLed, then an API process, and once
 * the primary is killed and the database-failover runbook has promoted the replica; no
 * sign-in that answered verified is lost.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../src/dev/process';
import { databaseControlWorkflowId } from '../../src/shared/database';
import { secretFor } from '../helpers/authClient';
import { raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';
import { spawnApiProcess, type ApiProcess } from '../helpers/apiProcess';
import { startPgCluster, type PgCluster } from '../helpers/pgCluster';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/workerProcess';

const BASE = '/browser/api/v1/identity/auth';
const USERS = ['test-user', 'test-user-2', 'test-user-3', 'alice', 'bob'];

describe('two APIs and two workers on a primary with a replica', () => {
  let cluster: PgCluster;
  let h: Harness;
  const workers: WorkerProcess[] = [];
  const apis: ApiProcess[] = [];
  const dead = new Set<ApiProcess>();
  const verified: string[] = [];
  let turn = 0;

  beforeAll(async () => {
    cluster = await startPgCluster();
    h = await startHarness({
      databaseUrl: cluster.primary.url,
      worker: false,
      env: {
        WARDEN_DATABASE_URLS: `${cluster.primary.url},${cluster.replica.url}`,
        WARDEN_DB_WATCH_INTERVAL_MS: '500',
      },
    });
    await raiseRateLimits(h);
    for (let i = 0; i < 2; i++) workers.push(await spawnWorkerProcess(h));
    for (let i = 0; i < 2; i++) apis.push(await spawnApiProcess(h));
  }, 240_000);

  afterAll(async () => {
    await h?.runtime.temporal.client.workflow
      .getHandle(databaseControlWorkflowId(h.config.temporal.taskQueue))
      .terminate('test over')
      .catch(() => {});
    await Promise.all([...apis, ...workers].map((p) => p.stop().catch(() => {})));
    await h?.close();
    await cluster?.stop();
  });

  /** POSTs to the next live API, as a load balancer that has noticed a dead one would. */
  const call = async (path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const live = apis.filter((a) => !dead.has(a));
    const api = live[turn++ % live.length]!;
    const res = await fetch(`${api.publicUrl}${BASE}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  /** One sign-in, initiate and verify on different APIs (while both live); the challenge id when verified. */
  const signIn = async (user: string): Promise<string> => {
    const started = await call('/otp/initiate', { user_id: user });
    if (started.status !== 202) throw new Error(`initiate answered ${started.status} ${JSON.stringify(started.json)}`);
    const challengeId = started.json.challenge_id as string;
    const code = await secretFor(h, challengeId);
    const answer = await call('/otp/verify', { challenge_id: challengeId, otp: code });
    if (answer.status !== 200) throw new Error(`verify answered ${answer.status} ${JSON.stringify(answer.json)}`);
    expect(answer.json).toMatchObject({ status: 'verified' });
    verified.push(challengeId);
    return challengeId;
  };

  /** `count` sign-ins in a row succeed (each retried while the stack settles). */
  const signInsWork = async (what: string, count: number) => {
    for (let i = 0; i < count; i++) {
      const user = USERS[(verified.length + i) % USERS.length]!;
      await waitFor(`${what}: sign-in ${i + 1} of ${count}`, () => signIn(user), {
        timeoutMs: 120_000,
        intervalMs: 500,
      });
    }
  };

  it('keeps signing users in through a dead worker, a dead API process and a database failover', async () => {
    await signInsWork('all four processes up', 4);

    // a worker dies mid-flight: the other takes its workflows over
    process.kill(workers[0]!.pid, 'SIGKILL');
    await signInsWork('one worker SIGKILLed', 4);

    // an API process dies: the other serves every request
    process.kill(apis[0]!.pid, 'SIGKILL');
    dead.add(apis[0]!);
    await signInsWork('one API process SIGKILLed', 4);

    // the primary dies; the runbook, started at P0 through the surviving API, promotes the replica
    const before = [...verified];
    await cluster.kill(cluster.primary);
    const admin = apis[1]!.adminUrl;
    const started = await waitFor(
      'the db-failover runbook to start',
      async () => {
        const res = await fetch(`${admin}/admin/api/v1/runbooks/db-failover`, {
          method: 'POST',
          headers: { ...h.adminHeaders, 'content-type': 'application/json' },
          body: JSON.stringify({ severity: 'P0' }),
        });
        if (res.status !== 201) throw new Error(`${res.status} ${await res.text()}`);
        return (await res.json()) as { workflow_id: string };
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const result = (await h.runtime.temporal.client.workflow.getHandle(started.workflow_id).result()) as {
      status: string;
      steps: Array<{ name: string; status: string; summary?: string }>;
    };
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    expect(result.steps.find((s) => s.name === 'promote')?.summary).toContain(`promoted ${cluster.replica.endpoint}`);
    await signInsWork('after the failover', 4);

    // nothing lost: every sign-in that answered verified is verified on the new primary
    const fresh = new pg.Client({ connectionString: cluster.replica.url });
    await fresh.connect();
    const { rows } = await fresh
      .query<{ id: string; status: string }>('SELECT id, status FROM auth_challenges WHERE id = ANY($1::uuid[])', [
        verified,
      ])
      .finally(() => fresh.end());
    expect(before.length).toBe(12);
    expect(rows).toHaveLength(verified.length);
    for (const row of rows) expect(row.status, row.id).toBe('verified');
  });
});
