/**
 * Database failover, the time to what users notice. A stack of its own runs on a real Postgres
 * primary with a synchronous streaming standby (the same cluster the failover test uses), with
 * both as its failover candidates. OTP initiates (writes) arrive from LANES clients in closed
 * loops, and a reader asks for one challenge's state every READ_INTERVAL_MS. Then the primary's
 * postmaster is SIGKILLed. Clocks, from the kill:
 *
 * - writes refused: the first initiate answered 503 (the stack fell back to the standby for
 *   reads and refuses writes cleanly);
 * - runbook requested: the bench starts the db-failover runbook at P0 at that first 503, as the
 *   responder paged by the database alert would (the alert's own wait is not spent here);
 * - writes served again: the first initiate, sent after the kill, answered 202 by the
 *   promoted standby;
 * - reads meanwhile: the state reads answered 200, out of those sent between the kill and the
 *   writes coming back.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPgCluster } from '../../test/helpers/pgCluster';
import { expectStatus, request } from '../lib/http';
import { challengeIdOf, ROUTES } from '../lib/wardenApi';
import { startEmbeddedWarden } from '../stack/warden';
import { seconds } from '../lib/stats';
import type { Scenario } from './types';

const STACK = 'warden-dbfailover';
/** the development users the stack seeds; each lane takes them in turn */
const USERS = ['test-user', 'test-user-2', 'test-user-3', 'alice', 'bob', 'phone-only'];
const LANES = 3;
const READ_INTERVAL_MS = 100;
const REQUEST_LIMIT_MS = 25_000;
const WARMUP_WRITES = 10;
const TIMEOUT_MS = 300_000;
export const DB_FAILOVER_TARGET_S = 60;

export interface DbFailoverResult {
  /** from the kill, seconds; null: not reached */
  writesRefusedSeconds: number | null;
  runbookRequestSeconds: number | null;
  writesBackSeconds: number | null;
  runbookDoneSeconds: number | null;
  runStatus: string;
  reads: { sent: number; ok: number; other: Record<string, number> };
  writes: Record<string, number>;
}

interface Answer {
  sentAt: number;
  at: number;
  status: number | string;
}

export const dbFailoverScenario: Scenario<DbFailoverResult> = {
  name: 'dbFailover',
  title: 'Database failover (primary killed under traffic)',
  inDefaultRun: false,

  async run(ctx) {
    if (!ctx.warden.embedded)
      return { skipped: true, reason: 'the scenario starts a Postgres cluster and a stack of its own' };
    ctx.log('db failover: starting a primary, its standby and a stack on them');
    const cluster = await startPgCluster();
    try {
      const stack = await startEmbeddedWarden(ctx.procs, {
        dataDir: path.join(ctx.dataDir, 'dbfailover'),
        sandboxUrl: ctx.warden.sandboxUrl,
        name: STACK,
        databaseUrl: cluster.primary.url,
        env: {
          WARDEN_DATABASE_URLS: `${cluster.primary.url},${cluster.replica.url}`,
          WARDEN_DB_WATCH_INTERVAL_MS: '500',
        },
      });
      const headers = { authorization: `Bearer ${stack.adminToken}` };
      await expectStatus(200, `${stack.adminUrl}/admin/api/v1/ratelimits`, {
        method: 'PUT',
        headers,
        json: { per_user: { max_attempts: 1_000_000 }, per_ip: { max_attempts: 1_000_000 } },
      });
      return await measure(ctx, stack, headers, () => cluster.kill(cluster.primary));
    } finally {
      await ctx.procs.stopNamed(STACK);
      await cluster.stop();
    }
  },

  targets(r) {
    return [
      {
        name: 'database failover: primary killed -> writes served again by the promoted standby',
        target: `< ${DB_FAILOVER_TARGET_S} s`,
        measured: r.writesBackSeconds === null ? 'not within 5 min' : `${r.writesBackSeconds} s`,
        pass: r.writesBackSeconds !== null && r.writesBackSeconds < DB_FAILOVER_TARGET_S,
      },
      {
        name: 'database failover: reads answered meanwhile',
        target: 'reported',
        measured: `${r.reads.ok} of ${r.reads.sent}`,
        pass: r.reads.sent > 0,
      },
    ];
  },

  effects(r) {
    return [
      {
        runbook: 'database failover',
        effect: 'primary killed -> writes served again by the promoted standby',
        measured: r.writesBackSeconds === null ? 'not within 5 min' : `${r.writesBackSeconds} s`,
        target: `< ${DB_FAILOVER_TARGET_S} s`,
      },
      {
        runbook: 'database failover',
        effect: 'reads answered while writes were refused',
        measured: `${r.reads.ok} of ${r.reads.sent}`,
        target: 'reported',
      },
    ];
  },

  render(r) {
    const tally = (t: Record<string, number>) =>
      Object.entries(t)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => `${n} × ${k}`)
        .join(', ');
    return [
      `OTP initiates from ${LANES} clients in closed loops and a challenge-state read every ${READ_INTERVAL_MS} ms, on a primary with a synchronous standby; the primary's postmaster SIGKILLed. Times from the kill; the runbook (P0) is started at the first refused write.`,
      '',
      '| writes refused (503) | runbook requested | **writes served again** | reads answered meanwhile | runbook finished | run |',
      '|--:|--:|--:|--:|--:|---|',
      `| ${seconds(r.writesRefusedSeconds)} | ${seconds(r.runbookRequestSeconds)} | **${seconds(r.writesBackSeconds)}** | ${r.reads.ok} of ${r.reads.sent} | ${seconds(r.runbookDoneSeconds)} | ${r.runStatus} |`,
      '',
      `Initiate answers over the whole run: ${tally(r.writes)}. Reads not answered 200: ${tally(r.reads.other) || 'none'}.`,
    ].join('\n');
  },
};

async function measure(
  ctx: Parameters<Scenario<DbFailoverResult>['run']>[0],
  stack: Awaited<ReturnType<typeof startEmbeddedWarden>>,
  headers: Record<string, string>,
  kill: () => Promise<void>,
): Promise<DbFailoverResult> {
  const started = performance.now();
  const at = () => Math.round(performance.now() - started) / 1000;
  const writes: Answer[] = [];
  const reads: Answer[] = [];
  let readTarget: string | undefined;
  let running = true;
  const call = async (list: Answer[], url: string, json?: unknown, ip?: string) => {
    const sentAt = at();
    try {
      const res = await request<{ error?: string }>(url, {
        ...(json === undefined ? {} : { method: 'POST', json }),
        headers: ip ? { 'x-forwarded-for': ip } : {},
        timeoutMs: REQUEST_LIMIT_MS,
      });
      list.push({ sentAt, at: at(), status: res.status });
      return res;
    } catch (err) {
      list.push({ sentAt, at: at(), status: (err as Error).message.startsWith('timeout') ? 'hung' : 'no answer' });
      return undefined;
    }
  };
  const writer = async (lane: number) => {
    for (let n = 0; running; n++) {
      const user = USERS[(lane + n * LANES) % USERS.length]!;
      const res = await call(writes, `${stack.publicUrl}${ROUTES.otp.initiate}`, { user_id: user }, `10.9.${lane}.1`);
      if (res?.status === 202) readTarget ??= challengeIdOf(res.body);
      else await sleep(100);
    }
  };
  const reader = async () => {
    while (running) {
      if (readTarget) await call(reads, `${stack.publicUrl}${ROUTES.challenge(readTarget)}`);
      await sleep(READ_INTERVAL_MS);
    }
  };
  const load = [...Array.from({ length: LANES }, (_, i) => writer(i)), reader()];
  const until = async (what: string, ok: () => boolean, timeoutMs = TIMEOUT_MS) => {
    const deadline = performance.now() + timeoutMs;
    while (!ok()) {
      if (performance.now() > deadline) throw new Error(`db failover: ${what} not within ${timeoutMs / 1000} s`);
      await sleep(50);
    }
  };

  let killedAt = 0;
  // from the kill, seconds
  const t: Record<'writesRefused' | 'runbookRequest' | 'writesBack' | 'runbookDone', number | null> = {
    writesRefused: null,
    runbookRequest: null,
    writesBack: null,
    runbookDone: null,
  };
  let runStatus = 'not started';
  try {
    await until('writes on the primary', () => writes.filter((w) => w.status === 202).length >= WARMUP_WRITES, 60_000);
    await kill();
    killedAt = at();
    ctx.log(`db failover: primary killed at ${killedAt} s`);
    const after = (a: Answer) => a.sentAt >= killedAt;
    await until('a refused write', () => writes.some((w) => after(w) && w.status === 503), 60_000);
    t.writesRefused = Math.min(...writes.filter((w) => after(w) && w.status === 503).map((w) => w.at)) - killedAt;
    t.runbookRequest = at() - killedAt;
    const start = await expectStatus<{ workflow_id: string }>(
      201,
      `${stack.adminUrl}/admin/api/v1/runbooks/db-failover`,
      {
        method: 'POST',
        headers,
        json: { severity: 'P0', by: 'npm run bench' },
      },
    );
    const runUrl = `${stack.adminUrl}/admin/api/v1/runbooks/runs/${start.body.workflow_id}`;
    await until('writes served again', () => writes.some((w) => after(w) && w.status === 202));
    t.writesBack = Math.min(...writes.filter((w) => after(w) && w.status === 202).map((w) => w.at)) - killedAt;
    ctx.log(`db failover: writes served again ${t.writesBack} s after the kill`);
    const deadline = performance.now() + TIMEOUT_MS;
    while (performance.now() < deadline) {
      const run = await request<{ status?: string }>(runUrl, { headers }).catch(() => undefined);
      runStatus = run?.body.status ?? 'unreadable';
      if (runStatus !== 'running' && runStatus !== 'unreadable') break;
      await sleep(500);
    }
    if (runStatus !== 'running') t.runbookDone = at() - killedAt;
  } finally {
    running = false;
    await Promise.all(load);
  }
  const round = (v: number | null) => (v === null ? null : Math.round(v * 1000) / 1000);
  const back = t.writesBack;
  const outage = reads.filter((r) => r.sentAt >= killedAt && back !== null && r.sentAt <= killedAt + back);
  const tally = (list: Answer[]) => {
    const out: Record<string, number> = {};
    for (const a of list) out[String(a.status)] = (out[String(a.status)] ?? 0) + 1;
    return out;
  };
  const { 200: ok = 0, ...other } = tally(outage);
  return {
    writesRefusedSeconds: round(t.writesRefused),
    runbookRequestSeconds: round(t.runbookRequest),
    writesBackSeconds: round(t.writesBack),
    runbookDoneSeconds: round(t.runbookDone),
    runStatus,
    reads: { sent: outage.length, ok, other },
    writes: tally(writes),
  };
}
