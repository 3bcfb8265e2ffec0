/**
 * Retention (src/workflows/ops/retention.ts, src/activities/retention.ts,
 * migrations/0130_retention.sql): with short horizons, rows older than them are deleted in
 * batches, newer rows and live challenges stay, the audit trail loses only its oldest prefix and
 * only through the retention path, and sign-ins go on while a run deletes. Real worker, dev
 * server and Postgres; rows are aged by writing their timestamps in the past.
 */
import { randomUUID } from 'node:crypto';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSystemChecklistActivities } from '../../src/activities/checklistSystem';
import type { CheckInput } from '../../src/activities/checklistTypes';
import { ensureRetentionSchedule } from '../../src/retention/schedule';
import {
  RETENTION_TABLES,
  retentionScheduleId,
  type RetentionInput,
  type RetentionResult,
  type RetentionTable,
} from '../../src/shared/retention';
import { initiate, post, putRateLimits, secretFor, waitFor } from '../helpers/authClient';
import { metric, raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const BATCH = 7;

describe('retention', () => {
  let h: Harness;
  let runs = 0;
  /** the trail's first rows: 25 past the horizon, a newer one, 3 more past it */
  let oldAudit: string[];
  let newerAudit: string;
  let lateOldAudit: string[];

  beforeAll(async () => {
    h = await startHarness({
      env: {
        WARDEN_RETENTION_INTERVAL: '2h',
        WARDEN_RETENTION_BATCH: String(BATCH),
        WARDEN_RETENTION_CHALLENGES: '1h',
        WARDEN_RETENTION_VALIDATION_ATTEMPTS: '2h',
        WARDEN_RETENTION_RATE_LIMIT_ATTEMPTS: '1h',
        WARDEN_RETENTION_DELIVERY: '3h',
        WARDEN_RETENTION_SLACK_SIGNATURES: '10m',
        WARDEN_RETENTION_CANARY_RUNS: '1h',
        WARDEN_RETENTION_AUDIT_EVENTS: '5h',
      },
    });
    // before anything else writes to the trail (changing the rate limits does), so these are
    // its oldest rows; the 3 after the newer one stay: the trail only ever loses a prefix
    oldAudit = await auditEvents(25, '6 hours');
    [newerAudit] = (await auditEvents(1, '1 hour')) as [string];
    lateOldAudit = await auditEvents(3, '6 hours');
    await raiseRateLimits(h);
  });
  afterAll(async () => {
    await h?.runtime.temporal.client.schedule
      .getHandle(retentionScheduleId(h.config.temporal.taskQueue))
      .delete()
      .catch(() => {});
    await h?.close();
  });

  const count = async (sql: string, values?: unknown[]) =>
    Number((await h.sql<{ n: string }>(`SELECT count(*) AS n FROM ${sql}`, values))[0]!.n);

  const start = (input: RetentionInput = {}) =>
    h.runtime.temporal.client.workflow.start('retentionWorkflow', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `retention-test-${++runs}`,
      args: [input],
    });
  const run = async (input: RetentionInput = {}): Promise<RetentionResult> =>
    (await start(input)).result() as Promise<RetentionResult>;

  /** `n` rows, `age` before now (an SQL interval), of each kind a sign-in leaves behind. */
  async function challenges(n: number, age: string, status: 'open' | 'expired'): Promise<string[]> {
    const ids = Array.from({ length: n }, () => randomUUID());
    await h.sql(
      `INSERT INTO auth_challenges (id, user_id, method, status, max_attempts, created_at, expires_at, ended_at, end_reason)
       SELECT id, 'test-user', 'sms_otp', $2, 5, now() - $3::interval, now() - $3::interval + interval '5 minutes',
              CASE WHEN $2 = 'open' THEN NULL ELSE now() - $3::interval + interval '5 minutes' END,
              CASE WHEN $2 = 'open' THEN NULL ELSE 'expired' END
         FROM unnest($1::uuid[]) AS id`,
      [ids, status, age],
    );
    return ids;
  }
  const validationAttempts = (ids: string[], age: string) =>
    h.sql(
      `INSERT INTO challenge_validation_attempts (challenge_id, user_id, validation_attempts, last_attempt_at)
       SELECT id, 'test-user', 1, now() - $2::interval FROM unnest($1::uuid[]) AS id`,
      [ids, age],
    );
  const deliveryAttempts = (ids: string[], age: string) =>
    h.sql(
      `INSERT INTO delivery_attempts (idempotency_key, provider, challenge_id, send_number, channel, status, started_at, last_attempt_at)
       SELECT 'challenge-' || id || '/send-1', 'twilio', id, 1, 'sms', 'sent', now() - $2::interval, now() - $2::interval
         FROM unnest($1::uuid[]) AS id`,
      [ids, age],
    );
  const deliveryFailures = (ids: string[], age: string) =>
    h.sql(
      `INSERT INTO delivery_failures (challenge_id, user_id, channel, provider, error_class, first_failed_at, last_attempt_at)
       SELECT id, 'test-user', 'sms', 'twilio', 'transient', now() - $2::interval, now() - $2::interval
         FROM unnest($1::uuid[]) AS id`,
      [ids, age],
    );
  const canaryRuns = (n: number, age: string, status: string) =>
    h.sql(
      `INSERT INTO canary_runs (id, channel, workflow_id, user_id, status, started_at)
       SELECT gen_random_uuid(), 'sms', 'canary-test', 'canary', $2, now() - $3::interval FROM generate_series(1, $1)`,
      [n, status, age],
    );
  const rateLimitAttempts = (n: number, age: string) =>
    h.sql(
      `INSERT INTO rate_limit_attempts (user_id, ip, action, attempted_at)
       SELECT NULL, '198.51.100.9', 'initiate', now() - $2::interval FROM generate_series(1, $1)`,
      [n, age],
    );
  const slackSignatures = (n: number, age: string) =>
    h.sql(
      `INSERT INTO slack_request_signatures (signature, seen_at)
       SELECT 'v0=' || gen_random_uuid(), now() - $2::interval FROM generate_series(1, $1)`,
      [n, age],
    );
  /** audit rows in id order; returns their ids */
  const auditEvents = async (n: number, age: string): Promise<string[]> =>
    (
      await h.sql<{ id: string }>(
        `INSERT INTO audit_events (event_type, outcome, occurred_at)
         SELECT 'test.retention', 'old', now() - $2::interval FROM generate_series(1, $1)
         RETURNING id`,
        [n, age],
      )
    )
      .map((r) => r.id)
      .sort((a, b) => Number(a) - Number(b));

  const deletedMetric = (table: RetentionTable) => metric(h, 'warden_retention_deleted_rows_total', { table });
  /** what a table of `old` expired rows takes: full batches, then one that comes back short */
  const batchesFor = (old: number) => Math.floor(old / BATCH) + 1;

  it(
    'deletes rows older than each horizon in batches, children first, and keeps newer rows and live challenges',
    { timeout: 120_000 },
    async () => {
      expect(await count('audit_events WHERE id < $1', [oldAudit[0]])).toBe(0);

      const ended = await challenges(20, '2 hours', 'expired');
      const [live] = await challenges(1, '2 hours', 'open');
      const recent = await challenges(3, '10 minutes', 'expired');
      // a table that references challenges, as the apps' bindings do: it goes with its challenge
      await h.sql(
        'CREATE TABLE retention_test_child (challenge_id uuid PRIMARY KEY REFERENCES auth_challenges (id) ON DELETE CASCADE)',
      );
      await h.sql('INSERT INTO retention_test_child SELECT unnest($1::uuid[])', [[...ended, live, ...recent]]);

      await validationAttempts(ended.slice(0, 15), '3 hours');
      await validationAttempts([live!], '3 hours');
      await validationAttempts(recent.slice(0, 2), '10 minutes');
      await deliveryAttempts(ended.slice(0, 10), '4 hours');
      await deliveryAttempts([live!], '4 hours');
      await deliveryAttempts(recent.slice(0, 2), '10 minutes');
      await deliveryFailures(ended.slice(10, 19), '4 hours');
      await deliveryFailures(recent.slice(2, 3), '10 minutes');
      await canaryRuns(8, '2 hours', 'success');
      await canaryRuns(1, '2 hours', 'waiting');
      await canaryRuns(1, '10 minutes', 'success');
      await rateLimitAttempts(30, '2 hours');
      await slackSignatures(12, '1 hour');
      await slackSignatures(2, '1 minute');

      // a plain DELETE of an audit row past the horizon is refused, as is an UPDATE
      await expect(h.sql('DELETE FROM audit_events WHERE id = $1', [oldAudit[0]])).rejects.toThrow(/append-only/);
      await expect(h.sql("UPDATE audit_events SET outcome = 'x' WHERE id = $1", [oldAudit[0]])).rejects.toThrow(
        /append-only/,
      );

      const before: Partial<Record<RetentionTable, number>> = {};
      for (const table of RETENTION_TABLES) before[table] = await deletedMetric(table);
      const rateLimitRows = await count('rate_limit_attempts');
      const result = await run();

      const expected: Record<RetentionTable, number> = {
        challenge_validation_attempts: 15,
        delivery_failures: 9,
        delivery_attempts: 10,
        canary_runs: 8,
        auth_challenges: 20,
        rate_limit_attempts: 30,
        slack_request_signatures: 12,
        audit_events: 25,
      };
      expect(result).toMatchObject({ status: 'done', deleted: expected, runs: 1 });
      for (const table of RETENTION_TABLES) {
        expect(result.batches[table], table).toBe(batchesFor(expected[table]));
        expect((await deletedMetric(table)) - before[table]!, table).toBe(expected[table]);
      }
      expect(await metric(h, 'warden_retention_last_run_timestamp_seconds')).toBeGreaterThan(0);

      // what is left: the live challenge and everything of it, the newer rows
      const left = await h.sql<{ id: string; status: string }>(
        'SELECT id, status FROM auth_challenges WHERE id = ANY($1)',
        [[...ended, live, ...recent]],
      );
      expect(left.map((r) => r.id).sort()).toEqual([live, ...recent].sort());
      expect(await count('retention_test_child')).toBe(4);
      expect(
        (await h.sql<{ challenge_id: string }>('SELECT challenge_id FROM challenge_validation_attempts')).map(
          (r) => r.challenge_id,
        ),
      ).toEqual(expect.arrayContaining([live, ...recent.slice(0, 2)]));
      expect(await count('challenge_validation_attempts WHERE challenge_id = ANY($1)', [ended])).toBe(0);
      expect(await count('delivery_attempts WHERE challenge_id = ANY($1)', [[live, ...recent]])).toBe(3);
      expect(await count('delivery_attempts WHERE challenge_id = ANY($1)', [ended])).toBe(0);
      expect(await count('delivery_failures WHERE challenge_id = ANY($1)', [recent])).toBe(1);
      expect(await count('delivery_failures WHERE challenge_id = ANY($1)', [ended])).toBe(0);
      expect(await h.sql('SELECT status FROM canary_runs ORDER BY status')).toEqual([
        { status: 'success' },
        { status: 'waiting' },
      ]);
      expect(await count('rate_limit_attempts')).toBe(rateLimitRows - 30);
      expect(await count("rate_limit_attempts WHERE attempted_at < now() - interval '1 hour'")).toBe(0);
      expect(await count('slack_request_signatures')).toBe(2);

      // the audit trail lost exactly its old prefix, and says so
      expect(await count('audit_events WHERE id = ANY($1)', [oldAudit])).toBe(0);
      expect(await count('audit_events WHERE id = ANY($1)', [[newerAudit, ...lateOldAudit]])).toBe(4);
      const [{ min }] = (await h.sql<{ min: string }>('SELECT min(id)::text AS min FROM audit_events')) as [
        { min: string },
      ];
      expect(min).toBe(newerAudit);
      expect(await h.sql('SELECT dropped_through_id::text AS id, dropped_rows::int AS n FROM audit_retention')).toEqual(
        [{ id: oldAudit.at(-1), n: 25 }],
      );
      // what is left past the horizon is still refused to a plain DELETE
      await expect(h.sql('DELETE FROM audit_events WHERE id = $1', [lateOldAudit[0]])).rejects.toThrow(/append-only/);

      // the recovery checklist's audit check still passes: every event exported, trigger on
      const check = await createSystemChecklistActivities(h.runtime).checkAuditExport({
        detectedAt: new Date(Date.now() - 7 * 3600_000).toISOString(),
      } as CheckInput);
      expect(check.items).toEqual([expect.objectContaining({ id: 'audit_log_exports', status: 'passed' })]);
      expect(check.items[0]!.detail).toMatch(/append-only trigger on/);

      // a second run finds nothing more
      const again = await run();
      expect(again.deleted).toEqual(Object.fromEntries(RETENTION_TABLES.map((t) => [t, 0])));
    },
  );

  it('never deletes rate-limit attempts still inside the longest rate-limit window', async () => {
    await putRateLimits(h, {
      per_user: { window_seconds: 7200, max_attempts: 10_000 },
      per_ip: { window_seconds: 300, max_attempts: 10_000 },
    });
    try {
      await h.sql('DELETE FROM rate_limit_attempts');
      await rateLimitAttempts(4, '90 minutes');
      await rateLimitAttempts(3, '3 hours');
      // the settings cache of this process may be up to 5 s old: wait until the run plans with them
      await waitFor('a run that keeps the attempts of the 2-hour window', async () => {
        const result = await run();
        return (await count('rate_limit_attempts')) === 4 ? result : undefined;
      });
      expect(await count("rate_limit_attempts WHERE attempted_at < now() - interval '2 hours'")).toBe(0);
    } finally {
      await raiseRateLimits(h);
    }
  });

  it('continues as new when its history grows, carrying its counts', { timeout: 120_000 }, async () => {
    await h.sql('DELETE FROM rate_limit_attempts');
    await rateLimitAttempts(10 * BATCH + 3, '2 hours');
    const result = await run({ historyLimit: 40 });
    expect(result.status).toBe('done');
    expect(result.runs).toBeGreaterThan(1);
    expect(result.deleted.rate_limit_attempts).toBe(10 * BATCH + 3);
    expect(result.batches.rate_limit_attempts).toBe(11);
    expect(await count('rate_limit_attempts')).toBe(0);
  });

  it('lets a sign-in through while a run is deleting', { timeout: 120_000 }, async () => {
    await rateLimitAttempts(20 * BATCH, '2 hours');
    await auditEvents(3, '6 hours'); // not the trail's prefix: stays, but the audit step runs
    // hold the audit trail's retention lock: the run trims every other table, then waits there
    const holder = new pg.Client({ connectionString: h.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT pg_advisory_xact_lock(hashtextextended('warden:audit_retention', 0))");
      const before = await deletedMetric('rate_limit_attempts');
      const handle = await start();
      // a whole sign-in, through every table the run trims, while it trims them
      const signIn = (async () => {
        const initiated = await initiate(h, 'otp', 'test-user');
        expect(initiated.statusCode).toBe(202);
        const { challenge_id } = initiated.json<{ challenge_id: string }>();
        const verified = await post(h, '/otp/verify', { challenge_id, otp: await secretFor(h, challenge_id) });
        return { challenge_id, status: verified.statusCode };
      })();
      await waitFor(
        'the run to have trimmed the rate-limit attempts',
        async () => ((await deletedMetric('rate_limit_attempts')) - before >= 20 * BATCH ? true : undefined),
        60_000,
      );
      const { challenge_id, status } = await signIn;
      expect(status).toBe(200);
      expect((await handle.describe()).status.name).toBe('RUNNING');

      await holder.query('COMMIT');
      const result = (await handle.result()) as RetentionResult;
      expect(result.status).toBe('done');
      expect(result.deleted.rate_limit_attempts).toBe(20 * BATCH);
      const [row] = await h.sql<{ status: string }>('SELECT status FROM auth_challenges WHERE id = $1', [challenge_id]);
      expect(row).toEqual({ status: 'verified' });
    } finally {
      await holder.end();
    }
  });

  it('ensures one schedule at the configured interval that never overlaps its runs', async () => {
    expect(await ensureRetentionSchedule(h.runtime)).toBe('created');
    // every worker ensures it at start: the second call finds it
    expect(await ensureRetentionSchedule(h.runtime)).toBe('updated');
    const described = await h.runtime.temporal.client.schedule
      .getHandle(retentionScheduleId(h.config.temporal.taskQueue))
      .describe();
    expect(described.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'retentionWorkflow',
      taskQueue: h.config.temporal.taskQueue,
    });
    expect(described.spec.intervals?.map((i) => i.every)).toEqual([2 * 3600_000]);
    expect(described.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
  });
});
