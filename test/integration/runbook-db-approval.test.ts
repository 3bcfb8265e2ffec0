/**
 * The db-failover runbook on a healthy primary (the run's Postgres): no promotion, approval
 * gates at P1 on the destructive cleanup, cancellation putting the pool and the read-only flag
 * back, and the incident seam (a db_connectivity incident starts the runbook as its child and
 * gets its timeline entries).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../src/dev/process';
import { databaseControlWorkflowId, type DbFailoverParams } from '../../src/shared/database';
import type { IncidentState, Severity } from '../../src/shared/incidents';
import {
  approveStepUpdate,
  cancelRunbookUpdate,
  runbookStateQuery,
  type RunbookState,
} from '../../src/shared/runbooks';
import { dbFailoverRunbook } from '../../src/workflows';
import { initiate } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

describe('db-failover runbook: approvals, cancellation, incident timeline', () => {
  let h: Harness;

  const admin = (method: 'GET' | 'POST', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: h.adminHeaders,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  const start = (severity: Severity, params?: DbFailoverParams) =>
    h.runtime.temporal.client.workflow.start(dbFailoverRunbook, {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `db-failover-${randomUUID()}`,
      args: [
        {
          incidentId: '',
          incidentWorkflowId: '',
          type: 'db_connectivity',
          severity,
          affected: { users: [], ips: [], providers: [] },
          dataBreach: false,
          ddos: false,
          startedBy: 'test',
          params,
        },
      ],
    });

  const until = async (handle: Awaited<ReturnType<typeof start>>, what: string, test: (s: RunbookState) => boolean) =>
    waitFor(
      what,
      async () => {
        const s = await handle.query(runbookStateQuery);
        if (!test(s)) throw new Error(s.steps.map((x) => `${x.name} ${x.status}`).join(', '));
        return s;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );

  /** an open challenge past expiry whose workflow does not exist: only the cleanup ends it */
  const seedLost = async () => {
    const id = randomUUID();
    await h.sql(
      `INSERT INTO auth_challenges (id, user_id, method, status, max_attempts, expires_at, sealed_secret, delivery_provider)
       VALUES ($1, 'bob', 'sms_otp', 'open', 5, now() - interval '5 minutes', '\\x01', 'twilio')`,
      [id],
    );
    return id;
  };
  const statusOf = async (id: string) =>
    (await h.sql<{ status: string }>('SELECT status FROM auth_challenges WHERE id = $1', [id]))[0]?.status;

  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_DB_WATCH_INTERVAL_MS: '300' } });
  });
  afterAll(async () => {
    await h?.runtime.temporal.client.workflow
      .getHandle(databaseControlWorkflowId(h.config.temporal.taskQueue))
      .terminate('test over')
      .catch(() => {});
    await h?.close();
  });

  it('at P1 waits for approval before the cleanup; cancelling undoes the pool increase and read-only, never the unrun cleanup', async () => {
    const lost = await seedLost();
    const handle = await start('P1', { readOnly: 'always' });
    const waiting = await until(
      handle,
      'the cleanup to wait for approval',
      (s) => s.steps.find((x) => x.name === 'cleanup')?.status === 'awaiting_approval',
    );
    const status = Object.fromEntries(waiting.steps.map((s) => [s.name, s.status]));
    expect(status).toMatchObject({
      health: 'succeeded',
      increase_pool: 'succeeded',
      read_only: 'succeeded',
      promote: 'skipped',
      switch_primary: 'skipped',
      consistency: 'succeeded',
    });
    expect(waiting.steps.find((s) => s.name === 'promote')?.summary).toMatch(/takes writes/);
    expect(waiting.steps.find((s) => s.name === 'cleanup')?.approval).toEqual({ required: true });

    // the degradation is in force here (and would be in every other process)
    const refused = await initiate(h, 'otp', 'test-user');
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error).toBe('read_only');
    expect((await admin('GET', '/database')).json().control).toMatchObject({
      read_only: { on: true },
      pool: { max: 50, max_idle: 10 },
    });

    await handle.executeUpdate(cancelRunbookUpdate, { args: [{ by: 'test', reason: 'drill over' }] });
    const result = await handle.result();
    expect(result.status).toBe('cancelled');
    const after = Object.fromEntries(result.steps.map((s) => [s.name, s.status]));
    expect(after).toMatchObject({
      increase_pool: 'compensated',
      read_only: 'compensated',
      cleanup: 'skipped',
      leave_read_only: 'skipped',
      restore_pool: 'skipped',
    });
    expect(await statusOf(lost)).toBe('open');
    const database = (await admin('GET', '/database')).json();
    expect(database.control).toMatchObject({ read_only: { on: false }, pool: null });
    expect(database.this_process).toMatchObject({ read_only: false, pool: { max: 25, max_idle: 5 } });
    expect((await initiate(h, 'otp', 'test-user')).statusCode).toBe(202);
  });

  it('runs the cleanup once a responder approves it, and ends with the pool defaults and no read-only', async () => {
    const lost = await seedLost();
    const handle = await start('P1');
    await until(
      handle,
      'the cleanup to wait for approval',
      (s) => s.steps.find((x) => x.name === 'cleanup')?.status === 'awaiting_approval',
    );
    expect(await statusOf(lost)).toBe('open');
    await handle.executeUpdate(approveStepUpdate, {
      args: [{ step: 'cleanup', by: 'dba', approve: true, note: 'checked' }],
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    const status = Object.fromEntries(result.steps.map((s) => [s.name, s.status]));
    expect(status).toMatchObject({
      read_only: 'skipped',
      promote: 'skipped',
      cleanup: 'succeeded',
      leave_read_only: 'skipped',
      restore_pool: 'succeeded',
    });
    expect(result.steps.find((s) => s.name === 'cleanup')?.summary).toMatch(/^\d+ expired challenge\(s\) ended/);
    expect(await statusOf(lost)).toBe('expired');
    const audit = await h.sql('SELECT reason FROM audit_events WHERE challenge_id = $1 AND event_type = $2', [
      lost,
      'identity.auth.token_invalidated',
    ]);
    expect(audit).toEqual([{ reason: 'expired' }]);
    expect((await admin('GET', '/database')).json().control).toMatchObject({ read_only: { on: false }, pool: null });
  });

  it('starts as the child of a db_connectivity incident and writes each step to its timeline', async () => {
    const opened = await admin('POST', '/incidents', {
      type: 'db_connectivity',
      severity: 'P2',
      title: 'database pool exhausted',
    });
    expect(opened.statusCode, opened.body).toBe(201);
    const id = opened.json().id as string;
    const child = h.runtime.temporal.client.workflow.getHandle(`${id}-runbook`);
    const result = await waitFor('the runbook child to finish', async () => child.result(), {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect(result.status).toBe('completed');
    const state = await waitFor(
      'the timeline entries',
      async () => {
        const s = (await admin('GET', `/incidents/${id}`)).json() as IncidentState;
        if (!s.timeline.some((e) => e.message.includes('Runbook db-failover completed'))) throw new Error('not yet');
        return s;
      },
      { timeoutMs: 30_000, intervalMs: 300 },
    );
    const messages = state.timeline.filter((e) => e.by === 'runbook').map((e) => e.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^health: primary \S+ takes writes/),
        expect.stringMatching(/^Temporary connection pool increase: every process: max_open_conns 50/),
        expect.stringMatching(/^restore_pool: /),
      ]),
    );
    expect(
      state.timeline.some((e) => e.kind === 'mitigation' && e.message.includes('Temporary connection pool increase')),
    ).toBe(true);
  });
});
