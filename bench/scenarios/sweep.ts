/**
 * The closed-loop concurrency sweep. For each flow and each concurrency: an initiate phase
 * (autocannon, one distinct user per request, fixed duration), then every issued challenge's
 * message is read from the outbox (untimed; its acceptance time gives initiate -> outbox),
 * then a verify phase that spends exactly those codes/links (autocannon, fixed amount).
 * Initiate and verify each cost one bcrypt operation, so each phase's throughput is also
 * shown as a fraction of the measured bcrypt bound.
 */
import { runClosedLoop, type PhaseResult } from '../lib/closedLoop';
import { cpuTable, perRequestTable } from '../lib/cpu';
import { collectAll, settle, type Delivered, type Issued } from '../lib/flows';
import { fractionOf, summarize, type Summary } from '../lib/stats';
import {
  challengeIdOf,
  clientHeaders,
  FLOW_METHODS,
  initiateJson,
  ROUTES,
  scrapeMetrics,
  verifyRequest,
  type FlowMethod,
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
  /** verify answers that were not 200, by status */
  verifyFailures: Record<string, number>;
  /** every Warden histogram that moved during each phase: mean per observation (stage breakdown) */
  histograms: { initiate: HistogramDelta[]; verify: HistogramDelta[] };
}

export interface SweepResult {
  rows: SweepRow[];
  /** the best throughput of any phase (every request is one bcrypt operation) */
  peak: { throughput: number; fractionOfBound: number | null; phase: string };
}

async function runRow(ctx: BenchContext, method: FlowMethod, concurrency: number): Promise<SweepRow> {
  const { warden, users, bound, options } = ctx;
  const issued: Issued[] = [];
  const before = await scrapeMetrics(warden);
  const initiate = await runClosedLoop<Issued['user']>(
    {
      baseUrl: warden.publicUrl,
      connections: concurrency,
      durationS: options.phaseSeconds,
      next: () => {
        const user = users.take();
        return {
          item: user,
          method: 'POST',
          path: ROUTES[method].initiate,
          body: JSON.stringify(initiateJson(user)),
          headers: clientHeaders(user),
        };
      },
      onAnswer: (user, answer) => {
        const challengeId = answer.status === 202 ? challengeIdOf(answer.body) : undefined;
        if (challengeId) issued.push({ method, user, challengeId, sentAt: answer.sentAt });
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
            headers: clientHeaders(d.user),
          };
        },
        onAnswer: (_d, answer) => {
          if (answer.status !== 200)
            verifyFailures[String(answer.status)] = (verifyFailures[String(answer.status)] ?? 0) + 1;
        },
      },
      ctx.cpu,
    );
    verify = { ...phase, fractionOfBound: fractionOf(phase.throughput, bound.opsPerSec) };
  }
  const afterVerify = await scrapeMetrics(warden);
  return {
    method,
    concurrency,
    initiate: { ...initiate, fractionOfBound: fractionOf(initiate.throughput, bound.opsPerSec) },
    toOutboxMs: summarize(delivered.map((d) => d.toOutboxMs)),
    undelivered: failed,
    verify,
    verifyFailures,
    histograms: {
      initiate: histogramDeltas(before, afterInitiate),
      verify: histogramDeltas(beforeVerify, afterVerify),
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
            `verify ${row.verify?.throughput ?? 0}/s p95 ${row.verify?.latencyMs.p95 ?? '–'} ms`,
        );
        rows.push(row);
      }
    }
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
      '| flow | c | initiate/s | of bound | p50 | p95 | p99 | to outbox p50 | p95 | verify/s | of bound | p50 | p95 | p99 | errors |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
    ];
    for (const r of result.rows) {
      const v = r.verify;
      const problems = [
        ...Object.entries(r.initiate.statusCounts)
          .filter(([s]) => s !== '202')
          .map(([s, n]) => `initiate ${s}×${n}`),
        ...Object.entries(r.verifyFailures).map(([s, n]) => `verify ${s}×${n}`),
        ...(r.undelivered ? [`undelivered ${r.undelivered}`] : []),
        ...(r.initiate.errors ? [`conn errors ${r.initiate.errors}`] : []),
      ];
      lines.push(
        `| ${r.method} | ${r.concurrency} | ${fmt(r.initiate.throughput, 1)} | ${pct(r.initiate.fractionOfBound)} | ${fmt(r.initiate.latencyMs.p50)} | ${fmt(r.initiate.latencyMs.p95)} | ${fmt(r.initiate.latencyMs.p99)} | ` +
          `${fmt(r.toOutboxMs.p50)} | ${fmt(r.toOutboxMs.p95)} | ${fmt(v?.throughput, 1)} | ${pct(v?.fractionOfBound)} | ${fmt(v?.latencyMs.p50)} | ${fmt(v?.latencyMs.p95)} | ${fmt(v?.latencyMs.p99)} | ${problems.join(', ') || '–'} |`,
      );
    }
    lines.push(
      '',
      `Latencies in ms. Peak: ${fmt(result.peak.throughput, 1)}/s (${result.peak.phase}), ${pct(result.peak.fractionOfBound)} of the bcrypt bound.`,
    );
    const cpu = cpuTable(
      result.rows.flatMap((r) => [
        { label: `${r.method} initiate c=${r.concurrency}`, cpu: r.initiate.cpu },
        { label: `${r.method} verify c=${r.concurrency}`, cpu: r.verify?.cpu },
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
    return lines.join('\n');
  },
};
