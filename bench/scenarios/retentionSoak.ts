/**
 * Retention soak: storage stays bounded under continuous sign-ins. A stack of its own runs with
 * every retention horizon compressed to HORIZON_S seconds and its schedule every INTERVAL_S
 * seconds (docs/operations.md#retention), while LANES clients sign in (OTP initiate, the code
 * from the outbox, verify) in closed loops for the whole soak. The row count of every table
 * retention trims is sampled every SAMPLE_MS. Past the warm-up (the horizon and two runs, by
 * which each table holds what one horizon of sign-ins leaves), the samples are split into halves
 * by time: a table is flat when the largest count of the second half is at most FLAT_RATIO times
 * the largest of the first. Without retention every count would grow with the number of
 * sign-ins, the second half's maximum about twice the first's.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { RETENTION_TABLES, type RetentionTable } from '../../src/shared/retention';
import { collect } from '../lib/flows';
import { expectStatus, request } from '../lib/http';
import { sumOf } from '../lib/prometheus';
import { seedBenchUsers, UserPool } from '../lib/users';
import { challengeIdOf, clientHeaders, ROUTES, scrapeMetrics, verifyRequest } from '../lib/wardenApi';
import { startEmbeddedWarden } from '../stack/warden';
import type { Scenario } from './types';

const STACK = 'warden-retention';
const HORIZON_S = 30;
const INTERVAL_S = 3;
const BATCH = 200;
const LANES = 4;
const USERS = 2000;
const SAMPLE_MS = 2000;
/** the horizon, then two runs: every table has been trimmed down to one horizon of sign-ins */
const WARMUP_S = HORIZON_S + 2 * INTERVAL_S;
export const FLAT_RATIO = 1.2;
/** the rate-limit windows of the soak: shorter than the horizon, which they would otherwise hold up */
const RATE_LIMIT_WINDOW_S = 10;
const REQUEST_LIMIT_MS = 30_000;

export interface TableTrend {
  table: RetentionTable;
  /** largest count of the first and second half of the samples past the warm-up */
  firstHalfMax: number;
  secondHalfMax: number;
  /** rows at the end of the soak */
  last: number;
  /** deleted by retention over the soak (warden_retention_deleted_rows_total) */
  deleted: number;
  flat: boolean;
}

export interface RetentionSoakResult {
  horizonSeconds: number;
  intervalSeconds: number;
  batch: number;
  lanes: number;
  soakSeconds: number;
  warmupSeconds: number;
  signIns: { verified: number; perSecond: number; answers: Record<string, number>; firstError?: string };
  tables: TableTrend[];
  /** the tables' total size on disk (heap, indexes, TOAST) at the end of the warm-up and at the end, MiB */
  diskMiB: { afterWarmup: number; end: number };
  /** seconds from the start, and the row count of every table */
  samples: Array<{ t: number; rows: Record<RetentionTable, number> }>;
  flat: boolean;
}

const COUNTS = `SELECT ${RETENTION_TABLES.map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`).join(', ')},
  (SELECT sum(pg_total_relation_size(c)) FROM unnest($1::regclass[]) AS c)::bigint AS bytes`;

export const retentionSoakScenario: Scenario<RetentionSoakResult> = {
  name: 'retentionSoak',
  title: 'Retention soak (table sizes under continuous sign-ins)',
  inDefaultRun: false,

  async run(ctx) {
    if (!ctx.warden.embedded)
      return { skipped: true, reason: 'the scenario starts a stack of its own with compressed retention horizons' };
    const soakSeconds = ctx.options.soakSeconds;
    if (soakSeconds <= WARMUP_S + 4 * (SAMPLE_MS / 1000))
      throw new Error(`--soak-seconds must leave samples past the ${WARMUP_S} s warm-up`);
    const horizon = `${HORIZON_S}s`;
    ctx.log(`retention soak: a stack with every horizon at ${horizon}, retention every ${INTERVAL_S} s`);
    const stack = await startEmbeddedWarden(ctx.procs, {
      dataDir: path.join(ctx.dataDir, 'retention'),
      sandboxUrl: ctx.warden.sandboxUrl,
      name: STACK,
      env: {
        WARDEN_RETENTION_INTERVAL: `${INTERVAL_S}s`,
        WARDEN_RETENTION_BATCH: String(BATCH),
        WARDEN_RETENTION_CHALLENGES: horizon,
        WARDEN_RETENTION_VALIDATION_ATTEMPTS: horizon,
        WARDEN_RETENTION_RATE_LIMIT_ATTEMPTS: horizon,
        WARDEN_RETENTION_DELIVERY: horizon,
        WARDEN_RETENTION_CANARY_RUNS: horizon,
        WARDEN_RETENTION_AUDIT_EVENTS: horizon,
      },
    });
    const db = new pg.Client({ connectionString: stack.databaseUrl });
    try {
      await seedBenchUsers(stack.databaseUrl, USERS);
      const rule = { window_seconds: RATE_LIMIT_WINDOW_S, max_attempts: 1_000_000 };
      await expectStatus(200, `${stack.adminUrl}/admin/api/v1/ratelimits`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${stack.adminToken}` },
        json: { per_user: rule, per_ip: rule },
      });
      await db.connect();
      const deletedBefore = await deletedByTable(stack);
      return await soak(ctx, stack, db, soakSeconds, deletedBefore);
    } finally {
      await db.end().catch(() => {});
      await ctx.procs.stopNamed(STACK);
    }
  },

  targets(r) {
    const worst = [...r.tables].sort((a, b) => ratioOf(b) - ratioOf(a))[0];
    return [
      {
        name: `retention soak: table sizes flat past the horizon (${r.soakSeconds} s of sign-ins, horizon ${r.horizonSeconds} s)`,
        target: `second-half max ≤ ${FLAT_RATIO} × first-half max, every table`,
        measured: worst ? `worst ${ratioOf(worst).toFixed(2)} × (${worst.table})` : 'no samples',
        pass: r.flat,
      },
    ];
  },

  render(r) {
    return [
      `Every retention horizon at ${r.horizonSeconds} s, retention every ${r.intervalSeconds} s in batches of ${r.batch}; ${r.lanes} clients signing in (OTP initiate, code, verify) in closed loops for ${r.soakSeconds} s: ${r.signIns.verified} sign-ins verified (${r.signIns.perSecond}/s). Row counts sampled every ${SAMPLE_MS / 1000} s; past the ${r.warmupSeconds} s warm-up the samples are split in two halves by time.`,
      '',
      '| table | max rows, first half | max rows, second half | ratio | rows at the end | deleted by retention | flat |',
      '|---|--:|--:|--:|--:|--:|---|',
      ...r.tables.map(
        (t) =>
          `| \`${t.table}\` | ${t.firstHalfMax} | ${t.secondHalfMax} | ${t.firstHalfMax ? ratioOf(t).toFixed(2) : '–'} | ${t.last} | ${t.deleted} | ${t.flat ? 'yes' : '**no**'} |`,
      ),
      '',
      `Disk (every table above with its indexes): ${r.diskMiB.afterWarmup} MiB after the warm-up, ${r.diskMiB.end} MiB at the end (deleted rows' space is reused after autovacuum, not returned). Sign-in answers: ${tally(r.signIns.answers)}.`,
    ].join('\n');
  },
};

function ratioOf(t: TableTrend): number {
  return t.firstHalfMax === 0
    ? t.secondHalfMax === 0
      ? 0
      : Number.POSITIVE_INFINITY
    : t.secondHalfMax / t.firstHalfMax;
}

function tally(answers: Record<string, number>): string {
  return (
    Object.entries(answers)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => `${n} × ${k}`)
      .join(', ') || 'none'
  );
}

async function deletedByTable(stack: Parameters<typeof scrapeMetrics>[0]): Promise<Record<string, number>> {
  const samples = await scrapeMetrics(stack);
  return Object.fromEntries(
    RETENTION_TABLES.map((table) => [table, sumOf(samples, 'warden_retention_deleted_rows_total', { table }) ?? 0]),
  );
}

async function soak(
  ctx: Parameters<Scenario<RetentionSoakResult>['run']>[0],
  stack: Awaited<ReturnType<typeof startEmbeddedWarden>>,
  db: pg.Client,
  soakSeconds: number,
  deletedBefore: Record<string, number>,
): Promise<RetentionSoakResult> {
  const users = new UserPool(USERS);
  const answers: Record<string, number> = {};
  let verified = 0;
  let firstError: string | undefined;
  const count = (what: string) => {
    answers[what] = (answers[what] ?? 0) + 1;
  };
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let running = true;

  const lane = async () => {
    while (running) {
      const user = users.take();
      try {
        const sentAt = Date.now();
        const init = await request(`${stack.publicUrl}${ROUTES.otp.initiate}`, {
          method: 'POST',
          json: { user_id: user.sub },
          headers: clientHeaders(user),
          timeoutMs: REQUEST_LIMIT_MS,
        });
        const challengeId = challengeIdOf(init.body);
        if (init.status !== 202 || !challengeId) {
          count(`initiate ${init.status}`);
          await sleep(200);
          continue;
        }
        const { credential } = await collect(
          ctx.outbox,
          { method: 'otp', user, challengeId, sentAt },
          REQUEST_LIMIT_MS,
        );
        const verify = verifyRequest('otp', credential);
        const res = await request(`${stack.publicUrl}${verify.path}`, {
          method: 'POST',
          json: verify.json,
          headers: clientHeaders(user),
          timeoutMs: REQUEST_LIMIT_MS,
        });
        count(`verify ${res.status}`);
        if (res.status === 200) verified += 1;
      } catch (err) {
        firstError ??= err instanceof Error ? err.message : String(err);
        count('error');
        await sleep(200);
      }
    }
  };

  const tables = await db.query<{ oid: string }>(
    'SELECT c.oid::regclass::text AS oid FROM pg_class c WHERE c.relname = ANY($1) AND c.relkind = $2',
    [RETENTION_TABLES, 'r'],
  );
  const regclasses = tables.rows.map((r) => r.oid);
  const samples: RetentionSoakResult['samples'] = [];
  const bytes: Array<{ t: number; bytes: number }> = [];
  const sampler = async () => {
    while (running) {
      const next = performance.now() + SAMPLE_MS;
      const { rows } = await db.query<Record<RetentionTable, number> & { bytes: string }>(COUNTS, [regclasses]);
      const { bytes: size, ...counts } = rows[0]!;
      const t = Math.round(elapsed() * 10) / 10;
      samples.push({ t, rows: counts as Record<RetentionTable, number> });
      bytes.push({ t, bytes: Number(size) });
      await sleep(Math.max(0, next - performance.now()));
    }
  };

  const load = Array.from({ length: LANES }, lane);
  const sampling = sampler();
  let lastLog = 0;
  while (elapsed() < soakSeconds) {
    await sleep(500);
    if (elapsed() - lastLog >= 30) {
      lastLog = elapsed();
      const s = samples.at(-1);
      ctx.log(
        `retention soak: ${Math.round(elapsed())} s, ${verified} sign-ins; rows ${s ? RETENTION_TABLES.map((t) => `${t}=${s.rows[t]}`).join(' ') : '–'}`,
      );
    }
  }
  running = false;
  await Promise.all([...load, sampling]);

  const deletedAfter = await deletedByTable(stack);
  const measured = samples.filter((s) => s.t >= WARMUP_S);
  const middle = WARMUP_S + (soakSeconds - WARMUP_S) / 2;
  const first = measured.filter((s) => s.t < middle);
  const second = measured.filter((s) => s.t >= middle);
  const max = (list: typeof samples, table: RetentionTable) => Math.max(0, ...list.map((s) => s.rows[table]));
  const trends: TableTrend[] = RETENTION_TABLES.map((table) => {
    const firstHalfMax = max(first, table);
    const secondHalfMax = max(second, table);
    return {
      table,
      firstHalfMax,
      secondHalfMax,
      last: samples.at(-1)?.rows[table] ?? 0,
      deleted: (deletedAfter[table] ?? 0) - (deletedBefore[table] ?? 0),
      flat: secondHalfMax <= FLAT_RATIO * firstHalfMax,
    };
  });
  const mib = (b: number | undefined) => Math.round(((b ?? 0) / 1024 / 1024) * 10) / 10;
  const runSeconds = elapsed();
  return {
    horizonSeconds: HORIZON_S,
    intervalSeconds: INTERVAL_S,
    batch: BATCH,
    lanes: LANES,
    soakSeconds,
    warmupSeconds: WARMUP_S,
    signIns: {
      verified,
      perSecond: Math.round((verified / runSeconds) * 10) / 10,
      answers,
      ...(firstError ? { firstError } : {}),
    },
    tables: trends,
    diskMiB: { afterWarmup: mib(bytes.find((b) => b.t >= WARMUP_S)?.bytes), end: mib(bytes.at(-1)?.bytes) },
    samples,
    flat: first.length > 0 && second.length > 0 && trends.every((t) => t.flat),
  };
}
