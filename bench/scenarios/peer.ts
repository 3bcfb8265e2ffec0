/**
 * The peer, side by side: Better Auth's email-OTP plugin (bench/peer/server.ts) in its own
 * process on its own database of the same Postgres server, driven by the same autocannon
 * phases as Warden's OTP sweep rows (same concurrencies, same phase length, same run):
 * send-verification-otp, then sign-in/email-otp with the code read from the same sandbox
 * outbox. Warden's numbers are its OTP rows of the sweep. Better Auth's sign-in answers the
 * session itself; Warden's verify answers a one-time code that the app's backend exchanges
 * for its token, one request more: the sweep's exchange phase, shown in its own column.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pin } from '../lib/pinning';
import pg from 'pg';
import { freePort, waitFor } from '../../src/dev/process';
import { runClosedLoop, type PhaseResult } from '../lib/closedLoop';
import { cpuTable } from '../lib/cpu';
import { settle } from '../lib/flows';
import { request } from '../lib/http';
import { acceptedAt, extractOtp, type OutboxMessage } from '../lib/outbox';
import { ratio, summarize, type Summary } from '../lib/stats';
import type { SweepResult } from './sweep';
import type { BenchContext, Scenario } from './types';

const DB_NAME = 'warden_bench_peer';
const SEND = '/api/auth/email-otp/send-verification-otp';
const VERIFY = '/api/auth/sign-in/email-otp';
const SUBJECT = 'Your sign-in code';
const PEER_USERS = 200_000;

export interface PeerRow {
  concurrency: number;
  send: PhaseResult;
  toOutboxMs: Summary;
  undelivered: number;
  verify: PhaseResult | null;
  verifyFailures: Record<string, number>;
}

export interface PeerResult {
  peer: { name: 'better-auth'; version: string; plugin: 'email-otp'; storeOTP: 'hashed' };
  rows: PeerRow[];
  /** Warden / Better Auth, per concurrency: >1 means Warden did more (throughput) or took longer (latency) */
  ratios: Array<{
    concurrency: number;
    sendThroughput: number | null;
    sendP95: number | null;
    verifyThroughput: number | null;
    verifyP95: number | null;
  }>;
}

interface Sent {
  email: string;
  sentAt: number;
}

async function recreateDatabase(maintenanceUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: maintenanceUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${DB_NAME}`);
  } finally {
    await client.end();
  }
}

async function runRow(
  ctx: BenchContext,
  baseUrl: string,
  concurrency: number,
  nextUser: () => string,
): Promise<PeerRow> {
  const sent: Sent[] = [];
  const send = await runClosedLoop<string>(
    {
      baseUrl,
      connections: concurrency,
      durationS: ctx.options.phaseSeconds,
      next: () => {
        const email = nextUser();
        return { item: email, method: 'POST', path: SEND, body: JSON.stringify({ email, type: 'sign-in' }) };
      },
      onAnswer: (email, answer) => {
        if (answer.status === 200) sent.push({ email, sentAt: answer.sentAt });
      },
    },
    ctx.cpu,
  );
  // Better Auth awaits the provider send inside the request: every answered send is in the
  // outbox; sends still in flight when the phase stopped land within the settle
  await settle(ctx.outbox);
  const byTo = new Map<string, OutboxMessage>();
  for (const m of await ctx.outbox.all()) if (m.subject === SUBJECT && !byTo.has(m.to)) byTo.set(m.to, m);
  if (ctx.warden.embedded) await ctx.outbox.clear();
  const codes: Array<{ email: string; otp: string }> = [];
  const toOutbox: number[] = [];
  for (const s of sent) {
    const m = byTo.get(s.email);
    const otp = m && extractOtp(m.body);
    if (!m || !otp) continue;
    codes.push({ email: s.email, otp });
    toOutbox.push(acceptedAt(m) - s.sentAt);
  }
  const verifyFailures: Record<string, number> = {};
  let verify: PhaseResult | null = null;
  if (codes.length > 0) {
    const queue = [...codes];
    verify = await runClosedLoop<string>(
      {
        baseUrl,
        connections: Math.min(concurrency, queue.length),
        amount: queue.length,
        next: () => {
          const c = queue.shift();
          return c && { item: c.email, method: 'POST', path: VERIFY, body: JSON.stringify(c) };
        },
        onAnswer: (_e, answer) => {
          if (answer.status !== 200)
            verifyFailures[String(answer.status)] = (verifyFailures[String(answer.status)] ?? 0) + 1;
        },
      },
      ctx.cpu,
    );
  }
  return {
    concurrency,
    send,
    toOutboxMs: summarize(toOutbox),
    undelivered: sent.length - codes.length,
    verify,
    verifyFailures,
  };
}

function ratiosFor(row: PeerRow, sweep: SweepResult | undefined): PeerResult['ratios'][number] {
  const w = sweep?.rows.find((r) => r.method === 'otp' && r.concurrency === row.concurrency);
  return {
    concurrency: row.concurrency,
    sendThroughput: ratio(w?.initiate.throughput, row.send.throughput),
    sendP95: ratio(w?.initiate.latencyMs.p95, row.send.latencyMs.p95),
    verifyThroughput: ratio(w?.verify?.throughput, row.verify?.throughput),
    verifyP95: ratio(w?.verify?.latencyMs.p95, row.verify?.latencyMs.p95),
  };
}

const fmt = (n: number | null | undefined, d = 0) => (n == null || !Number.isFinite(n) ? '–' : n.toFixed(d));

export const peerScenario: Scenario<PeerResult> = {
  name: 'peer',
  title: 'Peer: Better Auth email OTP, same machine, same Postgres, same load generator',

  async run(ctx) {
    await recreateDatabase(ctx.warden.maintenanceUrl);
    const peerDb = new URL(ctx.warden.maintenanceUrl);
    peerDb.pathname = `/${DB_NAME}`;
    const port = await freePort();
    const proc = ctx.procs.startTs('peer', path.join('bench', 'peer', 'server.ts'), {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PEER_PORT: String(port),
      PEER_DATABASE_URL: peerDb.toString(),
      PEER_SANDBOX_URL: ctx.warden.sandboxUrl,
      PEER_SECRET: randomBytes(32).toString('base64url'),
      PEER_USERS: String(PEER_USERS),
    });
    const baseUrl = `http://127.0.0.1:${port}`;
    // split topology: the peer gets Warden's cores (its Postgres is the same, on the others)
    if (ctx.options.pinning) pin(proc.pid, ctx.options.pinning.wardenCores);
    try {
      await waitFor(
        'the Better Auth peer',
        async () => {
          if (proc.child.exitCode !== null) throw new Error(`the peer exited (see ${proc.logFile})`);
          const res = await request(`${baseUrl}/api/auth/ok`);
          if (res.status !== 200) throw new Error(`peer answered ${res.status}`);
        },
        { timeoutMs: 60_000, intervalMs: 300 },
      );
      let n = 0;
      const nextUser = () => `peer-${String((n++ % PEER_USERS) + 1).padStart(6, '0')}@peer.example`;
      const rows: PeerRow[] = [];
      for (const c of ctx.options.concurrencies) {
        ctx.log(`peer: better-auth at concurrency ${c}`);
        const row = await runRow(ctx, baseUrl, c, nextUser);
        ctx.log(
          `  send ${row.send.throughput}/s p95 ${row.send.latencyMs.p95} ms; verify ${row.verify?.throughput ?? 0}/s p95 ${row.verify?.latencyMs.p95 ?? '–'} ms`,
        );
        rows.push(row);
      }
      const sweep = ctx.results.sweep as SweepResult | undefined;
      const ratios = rows.map((row) => ratiosFor(row, sweep));
      const version = (
        JSON.parse(readFileSync(path.join('node_modules', 'better-auth', 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
      return { peer: { name: 'better-auth', version, plugin: 'email-otp', storeOTP: 'hashed' }, rows, ratios };
    } finally {
      await ctx.procs.stop(proc);
    }
  },

  render(result, all) {
    const sweep = all.scenarios.sweep as SweepResult | undefined;
    const lines = [
      `Better Auth ${result.peer.version}, ${result.peer.plugin} plugin (storeOTP: ${result.peer.storeOTP}). Warden columns: its OTP rows of the sweep above. Ratio = Warden / Better Auth. ` +
        `Better Auth's sign-in answers the session; Warden's verify answers a code that the app's backend exchanges for a token, one request more (\`POST /oauth/token\`, no bcrypt): its p95 is the last column, not in the ratios.`,
      '',
      '| c | Warden initiate/s | BA send/s | ratio | Warden p95 | BA p95 | ratio | Warden verify/s | BA verify/s | ratio | Warden p95 | BA p95 | ratio | BA to outbox p95 | Warden exchange p95 |',
      '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ];
    for (const row of result.rows) {
      const w = sweep?.rows.find((r) => r.method === 'otp' && r.concurrency === row.concurrency);
      // from the report's sweep, which may come from a different run than this scenario's
      const q = ratiosFor(row, sweep);
      lines.push(
        `| ${row.concurrency} | ${fmt(w?.initiate.throughput, 1)} | ${fmt(row.send.throughput, 1)} | ${fmt(q?.sendThroughput, 2)} | ${fmt(w?.initiate.latencyMs.p95)} | ${fmt(row.send.latencyMs.p95)} | ${fmt(q?.sendP95, 2)} | ` +
          `${fmt(w?.verify?.throughput, 1)} | ${fmt(row.verify?.throughput, 1)} | ${fmt(q?.verifyThroughput, 2)} | ${fmt(w?.verify?.latencyMs.p95)} | ${fmt(row.verify?.latencyMs.p95)} | ${fmt(q?.verifyP95, 2)} | ${fmt(row.toOutboxMs.p95)} | ${fmt(w?.exchange?.latencyMs.p95)} |`,
      );
    }
    const cpu = cpuTable(
      result.rows.flatMap((r) => [
        { label: `BA send c=${r.concurrency}`, cpu: r.send.cpu },
        { label: `BA verify c=${r.concurrency}`, cpu: r.verify?.cpu },
      ]),
    );
    if (cpu.length) lines.push('', 'CPU during the peer phases, in cores:', '', ...cpu);
    const odd = result.rows.filter(
      (r) => r.undelivered || Object.keys(r.verifyFailures).length || r.send.ok !== r.send.requests,
    );
    if (odd.length)
      lines.push(
        '',
        `Peer anomalies: ${odd.map((r) => `c=${r.concurrency}: send statuses ${JSON.stringify(r.send.statusCounts)}, verify failures ${JSON.stringify(r.verifyFailures)}, undelivered ${r.undelivered}`).join('; ')}`,
      );
    return lines.join('\n');
  },
};
