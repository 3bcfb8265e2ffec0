/**
 * Read-only degradation and the pool levers of the database control plane, through the admin
 * API, on the run's Postgres: every write path answers 503 read_only and leaves no row behind,
 * reads keep working, and a second process (the production worker entry) follows the change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseReadOnlyError } from '../../src/db/database';
import { freePort, waitFor } from '../../src/dev/process';
import { databaseControlWorkflowId } from '../../src/shared/database';
import { challengeRow, initiate, post, secretFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/workerProcess';

describe('database control: read-only degradation and pool size', () => {
  let h: Harness;
  let worker: WorkerProcess;
  let workerMetrics: string;

  const admin = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: h.adminHeaders,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  const counts = async () =>
    (
      await h.sql<Record<string, number>>(
        `SELECT (SELECT count(*)::int FROM auth_challenges) AS challenges, (SELECT count(*)::int FROM rate_limit_attempts) AS attempts,
                (SELECT count(*)::int FROM audit_events) AS audit, (SELECT count(*)::int FROM challenge_validation_attempts) AS validations,
                (SELECT count(*)::int FROM ip_blocklist) AS blocks, (SELECT count(*)::int FROM key_rotations) AS rotations`,
      )
    )[0]!;

  const workerGauge = async (pattern: RegExp) => {
    const text = await (await fetch(workerMetrics)).text();
    return text.split('\n').find((line) => pattern.test(line));
  };

  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_DB_WATCH_INTERVAL_MS: '300' } });
    const port = await freePort();
    worker = await spawnWorkerProcess(h, { WARDEN_METRICS_PORT: String(port) });
    workerMetrics = `http://127.0.0.1:${port}/metrics`;
  }, 120_000);

  afterAll(async () => {
    await h?.runtime.temporal.client.workflow
      .getHandle(databaseControlWorkflowId(h.config.temporal.taskQueue))
      .terminate('test over')
      .catch(() => {});
    await worker?.stop();
    await h?.close();
  });

  it('refuses every write path with 503 read_only and writes nothing, keeps reads working, and every process follows', async () => {
    // a challenge issued before the degradation, to verify during it
    const before = await initiate(h, 'otp', 'test-user');
    expect(before.statusCode).toBe(202);
    const challengeId = before.json().challenge_id as string;
    const code = await secretFor(h, challengeId);

    const on = await admin('PUT', '/database/read-only', { read_only: true, reason: 'test' });
    expect(on.statusCode).toBe(200);
    expect(on.json().this_process).toMatchObject({ read_only: true, read_only_reason: 'forced' });
    expect(on.json().control.read_only).toMatchObject({ on: true, reason: 'test', by: 'admin-api' });
    // the separate worker process applies it from the control plane too
    await waitFor(
      'the worker process to go read-only',
      async () => {
        if (!(await workerGauge(/^warden_db_read_only\{reason="forced"[^}]*\} 1$/))) throw new Error('not yet');
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );

    const baseline = await counts();
    const refused = [
      await initiate(h, 'otp', 'test-user-2'),
      await initiate(h, 'magic-link', 'alice'),
      await post(h, '/otp/verify', { challenge_id: challengeId, otp: code }),
      await post(h, '/otp/resend', { challenge_id: challengeId }),
      await admin('PUT', '/ratelimits', { per_user: { max_attempts: 7 } }),
      await admin('PUT', '/auth/settings', { max_attempts: 4 }),
      await admin('POST', '/blocklist/ip', { ip: '198.51.100.7', reason: 'test' }),
      await admin('POST', '/keys/rotate', { reason: 'test' }),
      await admin('POST', '/users/revoke-challenges', { user_ids: ['test-user'] }),
      await admin('POST', '/users/force-password-reset', { user_ids: ['bob'] }),
    ];
    for (const res of refused) {
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json()).toMatchObject({ error: 'read_only', message: expect.stringMatching(/read-only/) });
      expect(res.headers['retry-after']).toBeDefined();
    }
    expect(await counts()).toEqual(baseline);
    expect(await challengeRow(h, challengeId)).toMatchObject({
      status: 'open',
      delivery_status: 'delivered',
      attempts: 0,
    });
    expect((await h.sql('SELECT force_password_reset FROM users WHERE sub = $1', ['bob']))[0]).toEqual({
      force_password_reset: false,
    });

    // Postgres enforces it below every code path: a raw statement through db.query is refused too
    await expect(
      h.runtime.db.query("INSERT INTO runtime_settings (key, value) VALUES ('x', '{}')"),
    ).rejects.toBeInstanceOf(DatabaseReadOnlyError);
    // ...while the runbook's maintenance transactions still may write
    await h.runtime.db.maintenance((tx) =>
      tx.query("INSERT INTO runtime_settings (key, value) VALUES ('db-control-test', '{}')"),
    );
    await h.runtime.db.maintenance((tx) => tx.query("DELETE FROM runtime_settings WHERE key = 'db-control-test'"));

    // reads keep working
    expect((await admin('GET', '/ratelimits')).statusCode).toBe(200);
    expect((await admin('GET', '/blocklist/ip')).statusCode).toBe(200);
    expect((await admin('GET', '/keys')).statusCode).toBe(200);
    const ready = await h.admin.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks.read_only).toBe('yes');

    const off = await admin('PUT', '/database/read-only', { read_only: false });
    expect(off.json().this_process).toMatchObject({ read_only: false, read_only_reason: null });
    await waitFor(
      'the worker process to take writes again',
      async () => {
        if (!(await workerGauge(/^warden_db_read_only\{reason="forced"[^}]*\} 0$/))) throw new Error('not yet');
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    const verified = await post(h, '/otp/verify', { challenge_id: challengeId, otp: code });
    expect(verified.statusCode, verified.body).toBe(200);
    expect(verified.json()).toEqual({ status: 'verified' });
  });

  it('raises the pool (max and idle cap) in every process and resets it to the configured defaults', async () => {
    const raised = await admin('PUT', '/database/pool', { max: 50, max_idle: 10, reason: 'test' });
    expect(raised.statusCode).toBe(200);
    expect(raised.json().this_process.pool).toMatchObject({ max: 50, max_idle: 10 });
    expect(raised.json().control.pool).toEqual({ max: 50, max_idle: 10 });
    await waitFor(
      'the worker process pool to grow',
      async () => {
        if (!(await workerGauge(/^warden_db_connections\{state="max"[^}]*\} 50$/))) throw new Error('not yet');
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );

    // the idle cap holds: after a burst of 12 concurrent queries, the connections beyond 2 are
    // closed once they have been idle for the trim time (10 s), not at once (src/db/database.ts)
    await admin('PUT', '/database/pool', { max: 50, max_idle: 2 });
    await Promise.all(Array.from({ length: 12 }, () => h.runtime.db.query('SELECT pg_sleep(0.2)')));
    await waitFor(
      'the pool to trim its idle connections to the cap',
      async () => {
        const { idle, total } = h.runtime.db.stats();
        if (idle > 2 || total > 2) throw new Error(`idle ${idle}, total ${total}`);
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );

    const reset = await admin('PUT', '/database/pool', { reset: true });
    expect(reset.json().this_process.pool).toMatchObject({ max: 25, max_idle: 5 });
    expect(reset.json().control.pool).toBeNull();
    await waitFor(
      'the worker process pool to be back to 25',
      async () => {
        if (!(await workerGauge(/^warden_db_connections\{state="max"[^}]*\} 25$/))) throw new Error('not yet');
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
  });

  it('switch pins a writable configured endpoint and refuses anything else with a clear 4xx', async () => {
    const pinned = await admin('POST', '/database/switch', {});
    expect(pinned.statusCode, pinned.body).toBe(200);
    const endpoint = pinned.json().this_process.endpoint as string;
    expect(pinned.json().control.primary).toBe(endpoint);
    expect(pinned.json().endpoints).toEqual([expect.objectContaining({ endpoint, role: 'primary' })]);

    const unknown = await admin('POST', '/database/switch', { endpoint: '127.0.0.1:1' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error).toBe('invalid_request');
    const malformed = await admin('POST', '/database/switch', { endpoint: 'postgres://u:p@h/db' });
    expect(malformed.statusCode).toBe(400);
    for (const body of [{ max: 0 }, { max: 10, max_idle: 11 }, { max_idle: 3 }, { reset: true, max: 4 }]) {
      const res = await admin('PUT', '/database/pool', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
    expect((await admin('PUT', '/database/read-only', { read_only: 'yes' })).statusCode).toBe(400);

    const unpinned = await admin('POST', '/database/switch', { endpoint: null });
    expect(unpinned.json().control.primary).toBeNull();
    expect(unpinned.json().this_process.endpoint).toBe(endpoint);
  });
});
