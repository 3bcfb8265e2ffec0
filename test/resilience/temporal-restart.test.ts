import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/dev/process';
import { openIncident } from '../../src/incidents/client';
import { ROLE_TITLES } from '../../src/shared/escalation';
import { ackSlaMs } from '../../src/shared/severity';
import { incidentStateQuery, type IncidentState } from '../../src/shared/incidents';
import { goRuntimeEnv, startDevServer, type DevServer } from '../../src/temporal/devServer';
import { waitFor } from '../helpers/authClient';
import { clearFaults, setFault } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const MANAGER_PAGE = `Escalated to ${ROLE_TITLES.engineering_manager}`;

/**
 * Durable timers across a restart of the Temporal server itself. The file runs its own dev
 * server on a SQLite file (as `npm start` does). The acknowledgement SLA (15 minutes
 * at P0) is not configurable, so each incident is opened with a detection time far enough back
 * that its SLA runs out seconds after the open: the escalation to the engineering manager is
 * a real durable timer of the incident workflow, due soon.
 */
describe('the Temporal dev server restarted mid-incident', () => {
  let h: Harness;
  let server: DevServer | undefined;
  let dir: string;
  let port: number;
  let dbFile: string;
  const start = async () => {
    server = await startDevServer({ cli: inject('temporalCli'), port, dbFile });
  };
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-temporal-restart-'));
    dbFile = path.join(dir, 'temporal.db');
    port = await freePort();
    await start();
    h = await startHarness({ temporalAddress: server!.address });
  }, 180_000);
  afterAll(async () => {
    await h?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = () => h.runtime.temporal.client;
  /** A P0 incident (type other: its SLA path is the engineering manager) due `dueInMs` after now. */
  async function openDueIn(dueInMs: number, title: string) {
    const openedAt = Date.now();
    const detectedAt = new Date(openedAt - ackSlaMs('P0') + dueInMs);
    const { id } = await openIncident(
      { client: client(), db: h.runtime.db, taskQueue: h.config.temporal.taskQueue },
      { type: 'other', severity: 'P0', title, source: 'api', openedBy: 'alice', detectedAt: detectedAt.toISOString() },
      new Date(openedAt),
    );
    return { id, detectedAt, dueAt: detectedAt.getTime() + ackSlaMs('P0') };
  }
  const state = (id: string) => client().workflow.getHandle(id).query(incidentStateQuery);
  const history = async (id: string): Promise<HistoryEvent[]> =>
    (await client().workflow.getHandle(id).fetchHistory()).events ?? [];
  const slackThread = (s: IncidentState) =>
    h.sandbox.state
      .slackCalls()
      .filter((c) => c.thread_ts !== undefined && c.thread_ts === s.slack?.ts)
      .map((c) => c.text ?? '');
  const managerPaged = (id: string, timeoutMs: number) =>
    waitFor(
      `the engineering manager's page of ${id}`,
      async () => {
        const s = await state(id).catch(() => undefined);
        return s && slackThread(s).some((t) => t.includes(MANAGER_PAGE)) ? s : undefined;
      },
      timeoutMs,
    );

  it('runs the dev server with the Go collector set for throughput (GOGC 400, a 1 GiB soft limit) unless the environment says otherwise', () => {
    expect(goRuntimeEnv({ PATH: '/bin' })).toEqual({ PATH: '/bin', GOGC: '400', GOMEMLIMIT: '1GiB' });
    expect(goRuntimeEnv({ GOGC: '100', GOMEMLIMIT: '4GiB' })).toMatchObject({ GOGC: '100', GOMEMLIMIT: '4GiB' });
    if (process.platform !== 'linux') return;
    // the server this file started got them
    const environ = readFileSync(`/proc/${server!.process.pid}/environ`, 'utf8').split('\0');
    const wanted = goRuntimeEnv(process.env);
    expect(environ).toEqual(expect.arrayContaining([`GOGC=${wanted.GOGC}`, `GOMEMLIMIT=${wanted.GOMEMLIMIT}`]));
  });

  it(
    'fires the acknowledgement-SLA escalation timer after the server comes back on the same file',
    { timeout: 180_000 },
    async () => {
      const { id, detectedAt, dueAt } = await openDueIn(30_000, 'P0 drill across a Temporal restart');

      // on-call paged at detection; the workflow then sleeps on one durable timer: the SLA (the
      // only item due within the hour; the next, the VP at 4 h, is hours away)
      const before = await waitFor(
        'the on-call page and the SLA timer',
        async () => {
          const s = await state(id);
          if (!s.slack || !slackThread(s).some((t) => t.includes('On-call notified'))) return undefined;
          const timers = (await history(id)).filter((e) => e.timerStartedEventAttributes);
          return timers.length > 0 ? { s, timers } : undefined;
        },
        60_000,
      );
      expect(before.s.escalations.map((e) => e.role)).toEqual(['oncall']);
      expect(before.s.detectedAt).toBe(detectedAt.toISOString());
      expect(before.timers).toHaveLength(1);
      const timer = before.timers[0]!.timerStartedEventAttributes!;
      expect(Number(timer.startToFireTimeout?.seconds ?? 0)).toBeLessThan(3600);

      // stop the server (SIGTERM to its PID) before the timer is due, keep it down past the deadline
      expect(Date.now()).toBeLessThan(dueAt);
      const firstPid = server!.process.pid;
      await server!.stop();
      server = undefined;
      expect(statSync(dbFile).size).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, dueAt - Date.now()) + 2_000));
      expect(slackThread(before.s).filter((t) => t.includes(MANAGER_PAGE))).toEqual([]);

      // same file, same port, a new process: Warden's worker and client find it by themselves
      await start();
      expect(server!.process.pid).not.toBe(firstPid);
      expect(server!.address).toBe(`127.0.0.1:${port}`);

      // the timer kept in the file fires: the manager is paged in the incident's thread, once
      const after = await managerPaged(id, 90_000);
      expect(after.status).toBe('investigating');
      expect(after.escalations.map((e) => e.role)).toEqual(['oncall', 'engineering_manager']);
      // workflow time of the escalation: the timer fired at its due time or later, never early
      expect(Date.parse(after.escalations[1]!.at)).toBeGreaterThanOrEqual(dueAt);
      expect(after.timeline.some((e) => e.kind === 'sla_breached')).toBe(true);
      expect(after.timeline.filter((e) => e.kind === 'escalated').map((e) => e.role)).toEqual(['engineering_manager']);
      expect(slackThread(after).filter((t) => t.includes(MANAGER_PAGE))).toHaveLength(1);
      const fired = (await history(id)).filter((e) => e.timerFiredEventAttributes?.timerId === timer.timerId);
      expect(fired).toHaveLength(1);
      const [row] = await h.sql<{ status: string }>('SELECT status FROM incidents WHERE id = $1', [id]);
      expect(row?.status).toBe('investigating');
    },
  );

  it(
    'pages an escalation that fell due while the previous page was still going out, without waiting for the next timer',
    { timeout: 120_000 },
    async () => {
      // Slack holds the incident's first posts until the client gives up: the first round of
      // effects (alert, on-call page) lasts well past the SLA deadline 10 s after the open
      await setFault(h, { provider: 'slack', mode: 'timeout', count: 4 });
      try {
        const { id, dueAt } = await openDueIn(10_000, 'P0 drill with a slow Slack');
        // without waiting for the next timer: that is the VP's, hours away
        const s = await managerPaged(id, 90_000);
        // the first round ran before the deadline (otherwise this test proves nothing)
        expect(Date.parse(s.escalations[0]!.at)).toBeLessThan(dueAt);
        expect(s.escalations.map((e) => e.role)).toEqual(['oncall', 'engineering_manager']);
        expect(Date.parse(s.escalations[1]!.at)).toBeGreaterThanOrEqual(dueAt);
        expect(s.timeline.some((e) => e.kind === 'sla_breached')).toBe(true);
      } finally {
        await clearFaults(h);
      }
    },
  );
});
