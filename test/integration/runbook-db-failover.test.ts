/**
 * Runbook 4 end to end on a real primary and a synchronous streaming standby started here:
 * OTP flows run through the API (this process) and a separate worker process; the primary's
 * postmaster is SIGKILLed under that traffic; both processes fall back to the standby for
 * reads (writes answer 503); the runbook at P0 promotes the standby and pins every process to
 * it; flows succeed again, and every challenge that answered 200 verified is verified on the
 * new primary. Inconsistent rows seeded before the kill are cleaned up after it.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../../src/dev/process';
import { databaseControlWorkflowId } from '../../src/shared/database';
import { runbookStateQuery } from '../../src/shared/runbooks';
import { dbFailoverRunbook } from '../../src/workflows';
import { initiate, post, secretFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { startPgCluster, type PgCluster } from '../helpers/pgCluster';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/workerProcess';

const USERS = ['test-user', 'test-user-2', 'test-user-3', 'alice', 'bob'];
const REQUEST_LIMIT_MS = 25_000;

interface Answer {
  kind: 'initiate' | 'verify' | 'message';
  status: number | 'hung' | 'no_message';
  error?: string;
  at: number;
  challengeId?: string;
}

describe('db-failover runbook: kill the primary under traffic', () => {
  let cluster: PgCluster;
  let h: Harness;
  let worker: WorkerProcess;
  let workerMetrics: string;

  const admin = (method: 'GET' | 'PUT' | 'POST', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: h.adminHeaders,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

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
    const port = await freePort();
    worker = await spawnWorkerProcess(h, { WARDEN_METRICS_PORT: String(port) });
    workerMetrics = `http://127.0.0.1:${port}/metrics`;
  }, 180_000);

  afterAll(async () => {
    await h?.runtime.temporal.client.workflow
      .getHandle(databaseControlWorkflowId(h.config.temporal.taskQueue))
      .terminate('test over')
      .catch(() => {});
    await worker?.stop();
    await h?.close();
    await cluster?.stop();
  });

  it('promotes the replica, moves the API and the worker to it, loses no verified challenge and answers 503 (not 500, not a hang) meanwhile', async () => {
    const limits = await admin('PUT', '/ratelimits', {
      per_user: { max_attempts: 100_000 },
      per_ip: { max_attempts: 100_000 },
    });
    expect(limits.statusCode).toBe(200);
    // rows the consistency step must find: a challenge whose workflow is gone, past expiry;
    // one sent to a user who no longer exists; an ended one still holding its sealed secret
    const [lost, orphan, sealed] = [randomUUID(), randomUUID(), randomUUID()];
    await h.sql(
      `INSERT INTO auth_challenges (id, user_id, method, status, max_attempts, expires_at, sealed_secret, delivery_provider) VALUES
         ($1, 'test-user', 'sms_otp', 'open', 5, now() - interval '10 minutes', '\\x01', 'twilio'),
         ($2, 'removed-user', 'sms_otp', 'open', 5, now() + interval '10 minutes', '\\x02', 'twilio'),
         ($3, 'alice', 'magic_link', 'verified', 5, now() - interval '1 hour', '\\x03', 'sendgrid')`,
      [lost, orphan, sealed],
    );

    const answers: Answer[] = [];
    const verifiedAt = new Map<string, number>();
    let stopped = false;
    const timed = async <T extends { statusCode: number; json(): unknown }>(
      kind: Answer['kind'],
      call: () => Promise<T>,
      challengeId?: string,
    ): Promise<T | undefined> => {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<undefined>(
        (resolve) => (timer = setTimeout(() => resolve(undefined), REQUEST_LIMIT_MS)),
      );
      const res = await Promise.race([call(), hung]);
      clearTimeout(timer);
      const at = Date.now();
      if (!res) answers.push({ kind, status: 'hung', at, challengeId });
      else
        answers.push({
          kind,
          status: res.statusCode,
          at,
          challengeId,
          error: res.statusCode >= 400 ? (res.json() as { error?: string }).error : undefined,
        });
      return res;
    };
    const loop = async (lane: number) => {
      for (let n = 0; !stopped; n++) {
        const user = USERS[(lane + n) % USERS.length]!;
        const ip = `10.${lane}.${n % 250}.9`;
        const started = await timed('initiate', () => initiate(h, 'otp', user, { ip }));
        if (started?.statusCode !== 202) {
          await new Promise((resolve) => setTimeout(resolve, 250));
          continue;
        }
        const challengeId = (started.json() as { challenge_id: string }).challenge_id;
        const code = await secretFor(h, challengeId).catch(() => undefined);
        if (!code) {
          answers.push({ kind: 'message', status: 'no_message', at: Date.now(), challengeId });
          continue;
        }
        const verified = await timed(
          'verify',
          () => post(h, '/otp/verify', { challenge_id: challengeId, otp: code }, { ip }),
          challengeId,
        );
        if (verified?.statusCode === 200) verifiedAt.set(challengeId, Date.now());
      }
    };
    const lanes = [0, 1, 2].map(loop);
    const countVerified = (since: number) => [...verifiedAt.values()].filter((at) => at > since).length;
    const tally = () => {
      const out: Record<string, number> = {};
      for (const a of answers)
        out[`${a.kind} ${a.status}${a.error ? ` ${a.error}` : ''}`] =
          (out[`${a.kind} ${a.status}${a.error ? ` ${a.error}` : ''}`] ?? 0) + 1;
      return JSON.stringify(out);
    };

    try {
      await waitFor(
        'flows to verify on the primary',
        async () => {
          if (countVerified(0) < 6) throw new Error(`${countVerified(0)} verified; ${tally()}`);
        },
        { timeoutMs: 90_000, intervalMs: 250 },
      );

      // ---- the primary dies under traffic ----
      await cluster.kill(cluster.primary);
      const killedAt = Date.now();
      const verifiedBefore = [...verifiedAt.entries()].filter(([, at]) => at < killedAt).map(([id]) => id);

      // this process falls back to the standby: reads work, writes answer 503
      await waitFor(
        'the API process to read from the standby',
        async () => {
          const state = await admin('GET', '/database');
          if (state.json().this_process?.role !== 'standby') throw new Error(JSON.stringify(state.json().this_process));
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect((await admin('GET', '/ratelimits')).statusCode).toBe(200);
      await waitFor(
        'a 503 during the outage',
        async () => {
          if (!answers.some((a) => a.at > killedAt && a.status === 503)) throw new Error('none yet');
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );

      // ---- the runbook, started through the admin API in the outage; at P0 containment and
      // promotion need no approval ----
      const started = await admin('POST', '/runbooks/db-failover', { severity: 'P0' });
      expect(started.statusCode, started.body).toBe(201);
      const runId = started.json().workflow_id as string;
      // readable while its projection row cannot be written yet
      expect((await admin('GET', `/runbooks/runs/${runId}`)).statusCode).toBe(200);
      const handle = h.runtime.temporal.client.workflow.getHandle<typeof dbFailoverRunbook>(runId);
      const result = await handle.result();
      const recoveredAt = Date.now();
      const state = await handle.query(runbookStateQuery);
      const status = Object.fromEntries(result.steps.map((s) => [s.name, s.status]));
      expect(result.status, JSON.stringify(state.log)).toBe('completed');
      expect(status).toEqual({
        health: 'succeeded',
        increase_pool: 'succeeded',
        read_only: 'succeeded',
        investigate: 'succeeded',
        promote: 'succeeded',
        switch_primary: 'succeeded',
        consistency: 'succeeded',
        cleanup: 'succeeded',
        leave_read_only: 'succeeded',
        restore_pool: 'succeeded',
      });
      expect(result.leftInPlace.map((l) => l.step)).toEqual(expect.arrayContaining(['promote', 'switch_primary']));
      const summary = (name: string) => result.steps.find((s) => s.name === name)?.summary ?? '';
      expect(summary('health')).toMatch(/NO server takes writes/);
      expect(summary('health')).toContain(`${cluster.primary.endpoint} unreachable`);
      expect(summary('investigate')).toMatch(/slowest mean|pg_stat_statements has no statements/);
      expect(summary('promote')).toContain(`promoted ${cluster.replica.endpoint}`);
      // both processes have a topology connection on the new primary
      expect(state.steps.find((s) => s.name === 'switch_primary')?.result).toMatchObject({
        endpoint: cluster.replica.endpoint,
        processes: { 'warden-test': 1, 'warden-worker': 1 },
      });

      // ---- flows succeed again ----
      await waitFor(
        'flows to verify on the new primary',
        async () => {
          if (countVerified(recoveredAt) < 4)
            throw new Error(`${countVerified(recoveredAt)} verified since recovery; ${tally()}`);
        },
        { timeoutMs: 90_000, intervalMs: 250 },
      );
      stopped = true;
      await Promise.all(lanes);

      // ---- nothing lost, nothing half-done ----
      const fresh = new pg.Client({ connectionString: cluster.replica.url });
      await fresh.connect();
      try {
        const ids = [...verifiedAt.keys()];
        const { rows } = await fresh.query<{ id: string; status: string }>(
          'SELECT id, status FROM auth_challenges WHERE id = ANY($1::uuid[])',
          [ids],
        );
        const statusOf = new Map(rows.map((r) => [r.id, r.status]));
        expect(verifiedBefore.length).toBeGreaterThanOrEqual(6);
        for (const id of ids) expect(statusOf.get(id), `challenge ${id}`).toBe('verified');

        const cleaned = await fresh.query<{ id: string; status: string; end_reason: string | null; sealed: boolean }>(
          'SELECT id, status, end_reason, sealed_secret IS NOT NULL AS sealed FROM auth_challenges WHERE id = ANY($1::uuid[])',
          [[lost, orphan, sealed]],
        );
        const byId = new Map(cleaned.rows.map((r) => [r.id, r]));
        expect(byId.get(lost)).toMatchObject({ status: 'expired', end_reason: 'expired', sealed: false });
        expect(byId.get(orphan)).toMatchObject({ status: 'revoked', end_reason: 'manual_revoke', sealed: false });
        expect(byId.get(sealed)).toMatchObject({ status: 'verified', sealed: false });
        const audit = await fresh.query(
          'SELECT outcome, details FROM audit_events WHERE event_type = $1 AND challenge_id = ANY($2::uuid[]) ORDER BY outcome',
          ['identity.auth.token_invalidated', [lost, orphan]],
        );
        // no workflow count here: the row's own attempts
        expect(audit.rows).toEqual([
          { outcome: 'expired', details: { attempts: 0, by: 'db-failover cleanup' } },
          { outcome: 'revoked', details: { attempts: 0, by: 'db-failover cleanup' } },
        ]);
      } finally {
        await fresh.end();
      }

      // the run's projection row and steps were written once the new primary took writes
      const run = await h.sql<{ status: string; started_by: string }>(
        'SELECT status, started_by FROM runbook_runs WHERE workflow_id = $1',
        [runId],
      );
      expect(run).toEqual([{ status: 'completed', started_by: 'admin-api' }]);
      const steps = await h.sql<{ step: string; status: string }>(
        'SELECT step, status FROM runbook_steps WHERE workflow_id = $1 ORDER BY step',
        [runId],
      );
      expect(steps.find((x) => x.step === 'promote')).toEqual({ step: 'promote', status: 'succeeded' });
      expect(steps).toHaveLength(10);

      const outage = answers.filter((a) => a.at > killedAt && a.at < recoveredAt);
      expect(
        outage.filter(
          (a) => a.status === 'hung' || (typeof a.status === 'number' && a.status >= 500 && a.status !== 503),
        ),
        JSON.stringify(outage),
      ).toEqual([]);
      const unavailable = outage.filter((a) => a.status === 503);
      expect(unavailable.length).toBeGreaterThan(0);
      for (const a of unavailable) expect(['read_only', 'unavailable']).toContain(a.error);
      expect(answers.filter((a) => typeof a.status === 'number' && a.status >= 500 && a.status !== 503)).toEqual([]);

      // ---- every process ended on the new primary, taking writes, with the default pool ----
      const after = (await admin('GET', '/database')).json();
      expect(after.this_process).toMatchObject({
        endpoint: cluster.replica.endpoint,
        role: 'primary',
        read_only: false,
        pool: { max: 25, max_idle: 5 },
      });
      expect(after.control).toMatchObject({ primary: cluster.replica.endpoint, pool: null, read_only: { on: false } });
      const metrics = await (await fetch(workerMetrics)).text();
      expect(metrics).toMatch(
        new RegExp(
          `warden_db_endpoint_info\\{endpoint="${cluster.replica.endpoint.replace(/\./g, '\\.')}",role="primary"`,
        ),
      );
      expect(metrics).toMatch(/warden_db_read_only\{reason="forced"[^}]*\} 0/);
    } finally {
      stopped = true;
      await Promise.allSettled(lanes);
    }
  }, 300_000);
});
