/**
 * Overload: admission control in front of the bcrypt work (a tiny limit here: one initiate and
 * one verify at a time, no queue) and refusals aggregated in the audit trail (one row per
 * client, action, reason and window, with a count). Timing is not asserted: the machine is
 * shared; what is counted is rows, workflows, hashes and answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPublicApp } from '../../src/api/app';
import { REFUSALS_COUNTED_EVENT } from '../../src/auth/refusals';
import { challengeWorkflowId } from '../../src/shared/auth';
import { initiate, post, putRateLimits, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const UNKNOWN = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('load shedding and aggregated refusals', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: {
        WARDEN_ADMISSION_CONCURRENCY: '1',
        WARDEN_ADMISSION_QUEUE: '0',
        // windows outlast the file, and only the test (or a close) flushes
        WARDEN_REFUSAL_AUDIT_WINDOW_S: '3600',
        WARDEN_REFUSAL_AUDIT_FLUSH_MS: '600000',
      },
    });
  });
  afterAll(async () => h?.close());

  /** A counter's or histogram count's value for the labels given (0 before its first observation). */
  async function metric(name: string, labels: Record<string, string>): Promise<number> {
    const json = await h.runtime.registry.getMetricsAsJSON();
    let total = 0;
    for (const family of json)
      for (const v of family.values as Array<{ metricName?: string; labels: Record<string, unknown>; value: number }>)
        if ((v.metricName ?? family.name) === name && Object.entries(labels).every(([k, x]) => v.labels[k] === x))
          total += v.value;
    return total;
  }

  const challengeWorkflows = async () => {
    const ids: string[] = [];
    for await (const wf of h.runtime.temporal.client.workflow.list({
      query: `TaskQueue = '${h.config.temporal.taskQueue}'`,
    }))
      if (wf.workflowId.startsWith('challenge-')) ids.push(wf.workflowId);
    return ids.sort();
  };

  it('counts N refusals of one client into one row: the first at once, the rest with the flush', async () => {
    await putRateLimits(h, { per_user: { max_attempts: 1000 }, per_ip: { window_seconds: 300, max_attempts: 2 } });
    const ip = '198.51.100.7';
    const verify = (n: number, from = ip) =>
      post(h, '/otp/verify', { challenge_id: UNKNOWN(n), otp: '123456' }, { ip: from });
    for (let i = 0; i < 2; i += 1) expect((await verify(i)).statusCode).toBe(404);
    const exceededBefore = await metric('warden_ratelimit_exceeded_total', { scope: 'ip', action: 'verify' });

    const first = await verify(2);
    expect(first.statusCode).toBe(429);
    const windowRow = () =>
      h.sql<{ id: string; count: number; challenge_id: string }>(
        `SELECT id, count::int AS count, challenge_id FROM audit_trail
          WHERE event_type = 'identity.ratelimit.exceeded' AND ip_masked = '198.51.100.0/24'`,
      );
    // the attack's start is in the trail and the log before the answer
    const opened = await windowRow();
    expect(opened).toEqual([{ id: expect.any(String), count: 1, challenge_id: UNKNOWN(2) }]);
    expect(h.logs.records('identity.ratelimit.exceeded').filter((r) => r.ip_masked === '198.51.100.0/24')).toHaveLength(
      1,
    );

    const N = 25;
    for (let i = 3; i < N + 2; i += 1) expect((await verify(i)).statusCode).toBe(429);
    // counted in memory, not yet written: still one row, one refusal
    expect(await windowRow()).toEqual(opened);
    expect(h.public.refusals.pending).toBeGreaterThanOrEqual(N - 1);

    await h.public.refusals.flush();
    expect(await windowRow()).toEqual([{ ...opened[0], count: N }]);
    // the refused verifies' validation attempts: one row too
    expect(
      await h.sql(
        `SELECT outcome, count::int AS count FROM audit_trail
          WHERE event_type = 'identity.auth.validation_attempt' AND ip_masked = '198.51.100.0/24' ORDER BY id`,
      ),
    ).toEqual([
      { outcome: 'not_found', count: 1 },
      { outcome: 'not_found', count: 1 },
      { outcome: 'rate_limited', count: N },
    ]);
    const counted = h.logs
      .records(REFUSALS_COUNTED_EVENT)
      .find((r) => r.audit_id === Number(opened[0]!.id) && r.counted_event === 'identity.ratelimit.exceeded');
    expect(counted).toMatchObject({ added: N - 1, count: N, ip_masked: '198.51.100.0/24' });
    // what the abuse runbook and the alert count is unchanged: one row and one increment per refusal
    expect(
      await h.sql(`SELECT 1 FROM rate_limit_attempts WHERE ip = $1::inet AND exceeded AND action = 'verify'`, [ip]),
    ).toHaveLength(N);
    expect((await metric('warden_ratelimit_exceeded_total', { scope: 'ip', action: 'verify' })) - exceededBefore).toBe(
      N,
    );
    // the audit export carries the count
    const exported = await h.admin.inject({
      url: '/admin/api/v1/audit/export?since=1h&type=identity.ratelimit.exceeded',
      headers: h.adminHeaders,
    });
    expect(exported.statusCode).toBe(200);
    const lines = exported.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.ip_masked === '198.51.100.0/24')).toMatchObject([{ count: N }]);

    // another client has a window of its own
    for (let i = 0; i < 2; i += 1) await verify(100 + i, '198.51.101.7');
    expect((await verify(102, '198.51.101.7')).statusCode).toBe(429);
    expect(
      await h.sql(
        `SELECT ip_masked, sum(count)::int AS refusals FROM audit_trail
          WHERE event_type = 'identity.ratelimit.exceeded' GROUP BY ip_masked ORDER BY ip_masked`,
      ),
    ).toEqual([
      { ip_masked: '198.51.100.0/24', refusals: N },
      { ip_masked: '198.51.101.0/24', refusals: 1 },
    ]);
    // a count only grows, and only with its row
    await expect(
      h.sql('UPDATE audit_refusal_counts SET count = 1 WHERE audit_id = $1', [opened[0]!.id]),
    ).rejects.toThrow(/only grows/);
    await expect(h.sql('DELETE FROM audit_refusal_counts WHERE audit_id = $1', [opened[0]!.id])).rejects.toThrow(
      /only with its audit row/,
    );
  });

  it('a graceful close adds what was counted since the last flush', async () => {
    const app = await buildPublicApp(h.runtime);
    const ip = '203.0.113.9';
    const verify = (n: number) =>
      app.inject({
        method: 'POST',
        url: '/browser/api/v1/identity/auth/otp/verify',
        payload: { challenge_id: UNKNOWN(n), otp: '123456' },
        remoteAddress: ip,
      });
    for (let i = 0; i < 2; i += 1) expect((await verify(200 + i)).statusCode).toBe(404);
    const N = 7;
    for (let i = 0; i < N; i += 1) expect((await verify(210 + i)).statusCode).toBe(429);
    const row = () =>
      h.sql<{ count: number }>(
        `SELECT count::int AS count FROM audit_trail
          WHERE event_type = 'identity.ratelimit.exceeded' AND ip_masked = '203.0.113.0/24'`,
      );
    expect(await row()).toEqual([{ count: 1 }]);
    await app.close();
    expect(await row()).toEqual([{ count: N }]);
  });

  it('sheds a burst of initiates beyond the limit before any row, hash or workflow; the admitted succeed', async () => {
    await putRateLimits(h, { per_user: { max_attempts: 1000 }, per_ip: { max_attempts: 1000 } });
    const hashesBefore = await metric('warden_auth_stage_duration_seconds_count', { flow: 'initiate', stage: 'hash' });
    const workflowsBefore = await challengeWorkflows();
    const N = 12;
    const ipOf = (i: number) => `192.0.2.${10 + i}`;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => initiate(h, 'otp', `shed-${i}`, { ip: ipOf(i) })),
    );
    const admitted = results.flatMap((r, i) => (r.statusCode === 202 ? [i] : []));
    const shed = results.flatMap((r, i) => (r.statusCode === 503 ? [i] : []));
    expect(admitted.length + shed.length, results.map((r) => r.statusCode).join(',')).toBe(N);
    expect(admitted.length).toBeGreaterThanOrEqual(1);
    expect(shed.length).toBeGreaterThanOrEqual(1);
    for (const i of shed) {
      expect(results[i]!.json()).toMatchObject({ error: 'overloaded', retry_after_seconds: expect.any(Number) });
      expect(Number(results[i]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }

    // a challenge row, a workflow and a hash for each admitted one, nothing for the shed
    const rows = await h.sql<{ id: string; user_id: string }>(
      `SELECT id, user_id FROM auth_challenges WHERE user_id LIKE 'shed-%' ORDER BY user_id`,
    );
    expect(rows.map((r) => r.user_id).sort()).toEqual(admitted.map((i) => `shed-${i}`).sort());
    expect(
      (await metric('warden_auth_stage_duration_seconds_count', { flow: 'initiate', stage: 'hash' })) - hashesBefore,
    ).toBe(admitted.length);
    const expected = [...workflowsBefore, ...rows.map((r) => challengeWorkflowId(r.id))].sort();
    await waitFor('the admitted challenges in the workflow list', async () =>
      (await challengeWorkflows()).length >= expected.length ? true : undefined,
    );
    expect(await challengeWorkflows()).toEqual(expected);
    // not even a rate-limit row: the shed requests wrote nothing
    const limited = await h.sql<{ ip: string }>(
      `SELECT DISTINCT host(ip) AS ip FROM rate_limit_attempts WHERE ip <<= '192.0.2.0/24' AND action = 'initiate'`,
    );
    expect(limited.map((r) => r.ip).sort()).toEqual(admitted.map(ipOf).sort());

    expect(await metric('warden_admission_shed_total', { action: 'initiate', reason: 'queue_full' })).toBe(shed.length);
    expect(await metric('warden_admission_in_flight', { action: 'initiate' })).toBe(0);
    // audited as refusals of one client: one row with the count, written beside the answers
    await waitFor('the shed window row', async () =>
      (await h.sql(`SELECT 1 FROM audit_events WHERE event_type = 'identity.admission.shed'`)).length > 0
        ? true
        : undefined,
    );
    await h.public.refusals.flush();
    expect(
      await h.sql(
        `SELECT ip_masked, outcome, details->>'action' AS action, count::int AS count FROM audit_trail
          WHERE event_type = 'identity.admission.shed'`,
      ),
    ).toEqual([{ ip_masked: '192.0.2.0/24', outcome: 'overloaded', action: 'initiate', count: shed.length }]);

    // the limit frees up: the next one goes through
    expect((await initiate(h, 'otp', 'shed-after', { ip: '192.0.2.99' })).statusCode).toBe(202);
  });

  it('sheds verifies beyond their own limit before the rate-limit check writes anything', async () => {
    const N = 10;
    const ipOf = (i: number) => `192.0.2.${120 + i}`;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        post(h, '/otp/verify', { challenge_id: UNKNOWN(300 + i), otp: '123456' }, { ip: ipOf(i) }),
      ),
    );
    const answered = results.flatMap((r, i) => (r.statusCode === 404 ? [i] : []));
    const shed = results.flatMap((r, i) => (r.statusCode === 503 ? [i] : []));
    expect(answered.length + shed.length, results.map((r) => r.statusCode).join(',')).toBe(N);
    expect(answered.length).toBeGreaterThanOrEqual(1);
    expect(shed.length).toBeGreaterThanOrEqual(1);
    const limited = await h.sql<{ ip: string }>(
      `SELECT host(ip) AS ip FROM rate_limit_attempts WHERE ip <<= '192.0.2.0/24' AND action = 'verify'`,
    );
    expect(limited.map((r) => r.ip).sort()).toEqual(answered.map(ipOf).sort());
    expect(await metric('warden_admission_shed_total', { action: 'verify', reason: 'queue_full' })).toBe(shed.length);
    expect(await metric('warden_admission_admitted_total', { action: 'verify' })).toBeGreaterThanOrEqual(
      answered.length,
    );
  });

  it("retention drops a window's count together with its audit row", async () => {
    expect((await h.sql('SELECT 1 FROM audit_refusal_counts')).length).toBeGreaterThan(0);
    // every row is past this horizon: the whole trail goes, through the one path that may delete
    await h.sql(`SELECT warden_audit_retention(now() + interval '1 hour', 100000)`);
    expect(await h.sql('SELECT 1 FROM audit_events')).toEqual([]);
    expect(await h.sql('SELECT 1 FROM audit_refusal_counts')).toEqual([]);
  });
});
