/**
 * The closed-loop concurrency sweep. For each flow and each concurrency: an initiate phase
 * (autocannon, one distinct user per request, each with a fresh PKCE pair, fixed duration),
 * then every issued challenge's message is read from the outbox (untimed; its acceptance time
 * gives initiate -> outbox), then a verify phase that spends exactly those codes/links with
 * each initiate's device cookie (autocannon, fixed amount), then an exchange phase that trades
 * every authorization code those verifies answered for a token at `POST /oauth/token`, with
 * the run's app key and the flow's verifier (autocannon, fixed amount, right after the verify
 * phase: a code lives 60 s). Initiate and verify each cost one bcrypt operation, so each of
 * those phases' throughput is also shown as a fraction of the measured bcrypt bound; the
 * exchange costs none and is left out of the peak.
 */
import { runClosedLoop, type PhaseResult } from '../lib/closedLoop';
import { cpuTable, perRequestTable } from '../lib/cpu';
import { collectAll, settle, type Delivered, type Issued } from '../lib/flows';
import { fractionOf, summarize, type Summary } from '../lib/stats';
import {
  benchApp,
  challengeIdOf,
  clientHeaders,
  codeOf,
  deviceCookieOf,
  exchangeOutcome,
  exchangeRequest,
  FLOW_METHODS,
  initiateJson,
  newPkce,
  ROUTES,
  scrapeMetrics,
  verifyRequest,
  type FlowMethod,
  type Pkce,
} from '../lib/wardenApi';
import { histogramDeltas, type HistogramDelta } from '../lib/prometheus';
import type { BenchContext, Scenario, TargetCheck } from './types';

export interface SweepRow {
  method: FlowMethod;
  concurrency: number;
  initiate: PhaseResult & { fractionOfBound: number | null };
  /** initiate sent -> message in the provider sandbox's outbox, ms */
  toOutboxMs: Summary;
  undelivered: number;
  verify: (PhaseResult & { fractionOfBound: number | null }) | null;
  /** verify answers that were not 200, by status (`200 no code`: verified, but no code for the holder) */
  verifyFailures: Record<string, number>;
  /** `POST /oauth/token` of every code the verify phase got (no bcrypt: not a fraction of the bound) */
  exchange?: PhaseResult | null;
  /** exchanges that got no token, by status and refusal (`400 expired`), or `200 not a JWT` */
  exchangeFailures?: Record<string, number>;
  /** every Warden histogram that moved during each phase: mean per observation (stage breakdown) */
  histograms: { initiate: HistogramDelta[]; verify: HistogramDelta[]; exchange?: HistogramDelta[] };
}

export interface SweepResult {
  rows: SweepRow[];
  /** the best throughput of any phase (every request is one bcrypt operation) */
  peak: { throughput: number; fractionOfBound: number | null; phase: string };
}

async function runRow(ctx: BenchContext, method: FlowMethod, concurrency: number): Promise<SweepRow> {
  const { warden, users, bound, options } = ctx;
  const app = benchApp(warden);
  const issued: Issued[] = [];
  const before = await scrapeMetrics(warden);
  const initiate = await runClosedLoop<{ user: Issued['user']; pkce: Pkce }>(
    {
      baseUrl: warden.publicUrl,
      connections: concurrency,
      durationS: options.phaseSeconds,
      next: () => {
        const user = users.take();
        const pkce = newPkce();
        return {
          item: { user, pkce },
          method: 'POST',
          path: ROUTES[method].initiate,
          body: JSON.stringify(initiateJson(user, { clientId: app.clientId, pkce })),
          headers: clientHeaders(user),
        };
      },
      onAnswer: ({ user, pkce }, answer) => {
        const challengeId = answer.status === 202 ? challengeIdOf(answer.body) : undefined;
        if (challengeId)
          issued.push({
            method,
            user,
            challengeId,
            sentAt: answer.sentAt,
            pkce,
            deviceCookie: deviceCookieOf(answer.headers),
          });
      },
    },
    ctx.cpu,
  );
  const afterInitiate = await scrapeMetrics(warden);
  await settle(ctx.outbox);

  const { delivered, missing } = await collectAll(ctx.outbox, issued, 120_000);
  const failed = missing.length;
  if (failed) ctx.log(`  ${failed} of ${issued.length} messages never reached the outbox`);
  if (warden.embedded) await ctx.outbox.clear();

  let verify: SweepRow['verify'] = null;
  const verifyFailures: Record<string, number> = {};
  const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);
  /** the codes the verifies answered, in the order they were released */
  const codes: Array<{ code: string; verifier: string }> = [];
  const beforeVerify = await scrapeMetrics(warden);
  if (delivered.length > 0) {
    const queue: Delivered[] = [...delivered];
    const phase = await runClosedLoop<Delivered>(
      {
        baseUrl: warden.publicUrl,
        connections: Math.min(concurrency, queue.length),
        amount: queue.length,
        next: () => {
          const d = queue.shift();
          if (!d) return undefined;
          const v = verifyRequest(method, d.credential);
          return {
            item: d,
            method: 'POST',
            path: v.path,
            body: JSON.stringify(v.json),
            headers: clientHeaders(d.user, d.deviceCookie),
          };
        },
        onAnswer: (d, answer) => {
          if (answer.status !== 200) return void count(verifyFailures, String(answer.status));
          const code = codeOf(answer.body);
          if (code && d.pkce) codes.push({ code, verifier: d.pkce.verifier });
          else count(verifyFailures, '200 no code');
        },
      },
      ctx.cpu,
    );
    verify = { ...phase, fractionOfBound: fractionOf(phase.throughput, bound.opsPerSec) };
  }
  const afterVerify = await scrapeMetrics(warden);

  let exchange: PhaseResult | null = null;
  const exchangeFailures: Record<string, number> = {};
  if (codes.length > 0) {
    const queue = [...codes];
    exchange = await runClosedLoop<true>(
      {
        baseUrl: warden.publicUrl,
        connections: Math.min(concurrency, queue.length),
        amount: queue.length,
        next: () => {
          const c = queue.shift();
          if (!c) return undefined;
          const x = exchangeRequest(app, c.code, c.verifier);
          return { item: true, method: 'POST', path: x.path, body: JSON.stringify(x.json), headers: x.headers };
        },
        onAnswer: (_c, answer) => {
          const outcome = exchangeOutcome(answer.status, answer.body);
          if (outcome !== 'ok') count(exchangeFailures, outcome);
        },
      },
      ctx.cpu,
    );
  }
  const afterExchange = await scrapeMetrics(warden);
  return {
    method,
    concurrency,
    initiate: { ...initiate, fractionOfBound: fractionOf(initiate.throughput, bound.opsPerSec) },
    toOutboxMs: summarize(delivered.map((d) => d.toOutboxMs)),
    undelivered: failed,
    verify,
    verifyFailures,
    exchange,
    exchangeFailures,
    histograms: {
      initiate: histogramDeltas(before, afterInitiate),
      verify: histogramDeltas(beforeVerify, afterVerify),
      exchange: histogramDeltas(afterVerify, afterExchange),
    },
  };
}

const fmt = (n: number | null | undefined, digits = 0) => (n == null || !Number.isFinite(n) ? '–' : n.toFixed(digits));
const pct = (f: number | null | undefined) => (f == null ? '–' : `${Math.round(f * 100)}%`);

export const sweepScenario: Scenario<SweepResult> = {
  name: 'sweep',
  title: 'Concurrency sweep (closed loop, autocannon)',

  async run(ctx) {
    const rows: SweepRow[] = [];
    for (const method of FLOW_METHODS) {
      for (const c of ctx.options.concurrencies) {
        ctx.log(`sweep: ${method} at concurrency ${c}`);
        const row = await runRow(ctx, method, c);
        ctx.log(
          `  initiate ${row.initiate.throughput}/s p95 ${row.initiate.latencyMs.p95} ms; outbox p95 ${row.toOutboxMs.p95} ms; ` +
            `verify ${row.verify?.throughput ?? 0}/s p95 ${row.verify?.latencyMs.p95 ?? '–'} ms; ` +
            `exchange ${row.exchange?.throughput ?? 0}/s p95 ${row.exchange?.latencyMs.p95 ?? '–'} ms` +
            (Object.keys(row.exchangeFailures ?? {}).length
              ? ` (failed: ${JSON.stringify(row.exchangeFailures)})`
              : ''),
        );
        rows.push(row);
      }
    }
    // bcrypt phases only: an exchange costs no bcrypt operation
    let peak: SweepResult['peak'] = { throughput: 0, fractionOfBound: null, phase: 'none' };
    for (const row of rows) {
      for (const [kind, phase] of [
        ['initiate', row.initiate],
        ['verify', row.verify],
      ] as const) {
        if (phase && phase.throughput > peak.throughput) {
          peak = {
            throughput: phase.throughput,
            fractionOfBound: phase.fractionOfBound,
            phase: `${row.method} ${kind} at c=${row.concurrency}`,
          };
        }
      }
    }
    return { rows, peak };
  },

  targets(result, all): TargetCheck[] {
    // the bound of the run that measured the sweep (a results file may merge several runs)
    const bound = all.scenarioRuns?.sweep?.boundOpsPerSec ?? all.bcrypt.start.opsPerSec;
    return [
      {
        name: 'peak throughput vs bcrypt bound',
        target: `>= 70% of ${fmt(bound, 1)} ops/s`,
        measured: `${fmt(result.peak.throughput, 1)}/s = ${pct(result.peak.fractionOfBound)} (${result.peak.phase})`,
        pass: result.peak.fractionOfBound == null ? null : result.peak.fractionOfBound >= 0.7,
      },
    ];
  },

  render(result, all) {
    const lines = [
      '| flow | c | initiate/s | of bound | p50 | p95 | p99 | to outbox p50 | p95 | verify/s | of bound | p50 | p95 | p99 | exchange/s | p50 | p95 | p99 | errors |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
    ];
    for (const r of result.rows) {
      const v = r.verify;
      const x = r.exchange;
      const problems = [
        ...Object.entries(r.initiate.statusCounts)
          .filter(([s]) => s !== '202')
          .map(([s, n]) => `initiate ${s}×${n}`),
        ...Object.entries(r.verifyFailures).map(([s, n]) => `verify ${s}×${n}`),
        ...Object.entries(r.exchangeFailures ?? {}).map(([s, n]) => `exchange ${s}×${n}`),
        ...(r.undelivered ? [`undelivered ${r.undelivered}`] : []),
        ...(r.initiate.errors ? [`conn errors ${r.initiate.errors}`] : []),
      ];
      lines.push(
        `| ${r.method} | ${r.concurrency} | ${fmt(r.initiate.throughput, 1)} | ${pct(r.initiate.fractionOfBound)} | ${fmt(r.initiate.latencyMs.p50)} | ${fmt(r.initiate.latencyMs.p95)} | ${fmt(r.initiate.latencyMs.p99)} | ` +
          `${fmt(r.toOutboxMs.p50)} | ${fmt(r.toOutboxMs.p95)} | ${fmt(v?.throughput, 1)} | ${pct(v?.fractionOfBound)} | ${fmt(v?.latencyMs.p50)} | ${fmt(v?.latencyMs.p95)} | ${fmt(v?.latencyMs.p99)} | ` +
          `${fmt(x?.throughput, 1)} | ${fmt(x?.latencyMs.p50)} | ${fmt(x?.latencyMs.p95)} | ${fmt(x?.latencyMs.p99)} | ${problems.join(', ') || '–'} |`,
      );
    }
    lines.push(
      '',
      `Latencies in ms. Exchange: \`POST /oauth/token\` of every code the verify phase got, right after it (no bcrypt, so no fraction of the bound). ` +
        `Peak: ${fmt(result.peak.throughput, 1)}/s (${result.peak.phase}), ${pct(result.peak.fractionOfBound)} of the bcrypt bound.`,
    );
    const cpu = cpuTable(
      result.rows.flatMap((r) => [
        { label: `${r.method} initiate c=${r.concurrency}`, cpu: r.initiate.cpu },
        { label: `${r.method} verify c=${r.concurrency}`, cpu: r.verify?.cpu },
        ...(r.exchange ? [{ label: `${r.method} exchange c=${r.concurrency}`, cpu: r.exchange.cpu }] : []),
      ]),
    );
    if (cpu.length)
      lines.push(
        '',
        `CPU during each phase, in cores (1.00 = one core fully busy; "machine busy" is the whole machine, of ${all.machine.cores} cores):`,
        '',
        ...cpu,
      );
    const bound = all.scenarioRuns?.sweep?.boundOpsPerSec ?? all.bcrypt.start.opsPerSec;
    const boundCores = all.bcrypt.start.cores ?? all.machine.cores;
    const opMs = (boundCores * 1000) / bound;
    const perRequest = perRequestTable(
      result.rows.flatMap((r) => [
        { label: `${r.method} initiate c=${r.concurrency}`, throughput: r.initiate.throughput, cpu: r.initiate.cpu },
        ...(r.verify
          ? [{ label: `${r.method} verify c=${r.concurrency}`, throughput: r.verify.throughput, cpu: r.verify.cpu }]
          : []),
      ]),
      opMs,
    );
    if (perRequest.length) {
      lines.push(
        '',
        `CPU per answered request, in ms (cores used / throughput). One bcrypt operation costs ${opMs.toFixed(0)} ms of CPU here (${boundCores} cores / ${bound.toFixed(1)} ops/s); ` +
          `at 70% of the bound a request may cost ${(opMs / 0.7).toFixed(0)} ms in all, which leaves the budget in the last column for everything that is not the bcrypt operation:`,
        '',
        ...perRequest,
      );
    }
    // what the stack and the benchmark used, without whatever else ran on the machine meanwhile
    const perExchange = result.rows.flatMap((r) => {
      const cpu = r.exchange?.cpu;
      const busy = cpu?.['machine busy'];
      if (!r.exchange || !cpu || busy === undefined || !(r.exchange.throughput > 0)) return [];
      const ours = busy - (cpu['everything else on the machine'] ?? 0);
      return [`${r.method} c=${r.concurrency}: ${fmt((ours * 1000) / r.exchange.throughput)}`];
    });
    if (perExchange.length)
      lines.push(
        '',
        `CPU per exchange of the stack, the sandbox, the load generator and the kernel (everything but "everything else on the machine"; no bcrypt operation, so not in the table above), in ms: ${perExchange.join('; ')}.`,
      );
    return lines.join('\n');
  },
};
