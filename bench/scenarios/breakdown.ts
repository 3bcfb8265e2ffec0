/**
 * Where the time goes. Flows run `lanes` at a time, each lane one flow after another
 * (initiate with a fresh PKCE pair, read the message, verify with the device cookie, exchange
 * the code for a token), with the benchmark's own send and answer times; then each challenge's
 * Temporal history splits those times into stages (see bench/lib/history.ts). The exchange
 * runs outside the workflow (a Postgres transaction and a signature), so it has its client
 * round trip only. At concurrency 1 the stages are pure service time; at 8 the queues show.
 * Hashing and the database are not separable inside one activity from the outside: the
 * bcrypt time of one operation alone (measured at the start) is shown next to them.
 */
import { Client, Connection } from '@temporalio/client';
import { collect } from '../lib/flows';
import { deliveryStages, initiateStages, normalize, verifyStages, type RawEvent, type Stages } from '../lib/history';
import { request } from '../lib/http';
import { summarize } from '../lib/stats';
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
  verifyRequest,
  type FlowMethod,
} from '../lib/wardenApi';
import type { HistogramDelta } from '../lib/prometheus';
import type { SweepResult } from './sweep';
import type { BenchContext, Scenario } from './types';

interface StageStats {
  mean: number;
  p50: number;
  p95: number;
}

interface Part {
  lanes: number;
  samples: number;
  initiate: Record<string, StageStats>;
  delivery: Record<string, StageStats>;
  verify: Record<string, StageStats>;
  /** the code's exchange for a token: client round trip only (no workflow) */
  exchange?: Record<string, StageStats>;
  /** flows that did not get their token, by where they stopped */
  failures?: Record<string, number>;
}

export interface BreakdownResult {
  bcryptSingleOpMs: number;
  parts: Record<FlowMethod, Part[]>;
}

interface Flow {
  challengeId: string;
  initiate: { sentAt: number; answeredAt: number };
  outboxAt: number;
  verify: { sentAt: number; answeredAt: number };
  exchangeMs: number;
}

/** A flow that stopped short of its token, and where. */
class FlowFailure extends Error {}

async function runFlow(ctx: BenchContext, method: FlowMethod): Promise<Flow> {
  const app = benchApp(ctx.warden);
  const user = ctx.users.take();
  const pkce = newPkce();
  const t0 = Date.now();
  const init = await request(`${ctx.warden.publicUrl}${ROUTES[method].initiate}`, {
    method: 'POST',
    json: initiateJson(user, { clientId: app.clientId, pkce }),
    headers: clientHeaders(user),
  });
  const t1 = Date.now();
  const challengeId = init.status === 202 ? challengeIdOf(init.body) : undefined;
  if (!challengeId) throw new FlowFailure(`initiate ${init.status}`);
  const delivered = await collect(ctx.outbox, { method, user, challengeId, sentAt: t0 }, 60_000).catch(() => {
    throw new FlowFailure('undelivered');
  });
  const v = verifyRequest(method, delivered.credential);
  const t2 = Date.now();
  const res = await request(`${ctx.warden.publicUrl}${v.path}`, {
    method: 'POST',
    json: v.json,
    headers: clientHeaders(user, deviceCookieOf(init.headers)),
  });
  const t3 = Date.now();
  if (res.status !== 200) throw new FlowFailure(`verify ${res.status}`);
  const code = codeOf(res.body);
  if (!code) throw new FlowFailure('verify 200 without a code');
  const x = exchangeRequest(app, code, pkce.verifier);
  const token = await request(`${ctx.warden.publicUrl}${x.path}`, { method: 'POST', json: x.json, headers: x.headers });
  const outcome = exchangeOutcome(token.status, token.body);
  if (outcome !== 'ok') throw new FlowFailure(`exchange ${outcome}`);
  return {
    challengeId,
    initiate: { sentAt: t0, answeredAt: t1 },
    outboxAt: t0 + delivered.toOutboxMs,
    verify: { sentAt: t2, answeredAt: t3 },
    exchangeMs: token.ms,
  };
}

function aggregate(list: Stages[]): Record<string, StageStats> {
  const out: Record<string, StageStats> = {};
  for (const name of Object.keys(list[0] ?? {})) {
    const s = summarize(list.map((x) => x[name]!).filter((v) => Number.isFinite(v)));
    out[name] = { mean: s.mean, p50: s.p50, p95: s.p95 };
  }
  return out;
}

async function runPart(
  ctx: BenchContext,
  client: Client,
  method: FlowMethod,
  lanes: number,
  perLane: number,
): Promise<Part> {
  const flows: Flow[] = [];
  const failures: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let i = 0; i < perLane; i++) {
        try {
          flows.push(await runFlow(ctx, method));
        } catch (err) {
          // anything else (no app key, the stack gone) is not a measurement: the scenario fails
          if (!(err instanceof FlowFailure)) throw err;
          failures[err.message] = (failures[err.message] ?? 0) + 1;
        }
      }
    }),
  );
  const initiate: Stages[] = [];
  const delivery: Stages[] = [];
  const verify: Stages[] = [];
  for (const flow of flows) {
    const history = await client.workflow.getHandle(`challenge-${flow.challengeId}`).fetchHistory();
    const evs = normalize((history.events ?? []) as RawEvent[]);
    const i = initiateStages(evs, flow.initiate);
    const d = deliveryStages(evs, { sentAt: flow.initiate.sentAt, outboxAt: flow.outboxAt });
    const v = verifyStages(evs, flow.verify);
    if (i) initiate.push(i);
    if (d) delivery.push(d);
    if (v) verify.push(v);
  }
  return {
    lanes,
    samples: flows.length,
    initiate: aggregate(initiate),
    delivery: aggregate(delivery),
    verify: aggregate(verify),
    exchange: aggregate(flows.map((f) => ({ 'POST /oauth/token (client round trip)': f.exchangeMs }))),
    failures,
  };
}

const fmt = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(1));

function table(title: string, parts: Part[], pick: (p: Part) => Record<string, StageStats>): string[] {
  const names = Object.keys(pick(parts[0]!) ?? {});
  if (names.length === 0) return [];
  return [
    `| ${title} | ${parts.map((p) => `c=${p.lanes} mean | p50 | p95`).join(' | ')} |`,
    `|---|${parts.map(() => '--:|--:|--:').join('|')}|`,
    ...names.map(
      (n) =>
        `| ${n} | ${parts
          .map((p) => {
            const s = pick(p)[n];
            return `${fmt(s?.mean)} | ${fmt(s?.p50)} | ${fmt(s?.p95)}`;
          })
          .join(' | ')} |`,
    ),
    '',
  ];
}

const METRIC_LABELS: Record<string, string> = {
  warden_http_request_duration_seconds: 'HTTP request (Fastify, whole route)',
  warden_auth_generation_duration_seconds: 'initiate handler (guards + update-with-start)',
  warden_auth_validation_duration_seconds: 'verify handler (until the answer is known)',
  warden_delivery_send_duration_seconds: 'provider send (SDK call)',
  // per stage inside the API and the activities: blocklist, rate limit, settings, row read,
  // seal, workflow round trip, bcrypt hash / compare, issue transaction, audit
  warden_auth_stage_duration_seconds: 'stage',
};

function metricsLines(title: string, deltas: HistogramDelta[] | undefined): string[] {
  const rows = (deltas ?? []).filter(
    (d) => METRIC_LABELS[d.name] && (d.labels.server === undefined || d.labels.server === 'public'),
  );
  if (rows.length === 0) return [];
  return [
    `${title}:`,
    '',
    ...rows.map(
      (d) =>
        `- ${METRIC_LABELS[d.name]} \`${d.name}{${Object.entries(d.labels)
          .map(([k, v]) => `${k}="${v}"`)
          .join(',')}}\`: mean ${fmt(d.meanMs)} ms over ${d.count}`,
    ),
    '',
  ];
}

export const breakdownScenario: Scenario<BreakdownResult> = {
  name: 'breakdown',
  title: 'Where the time goes (Temporal history + service metrics)',

  async run(ctx) {
    if (!ctx.warden.temporalAddress)
      return { skipped: true, reason: 'no Temporal address (set BENCH_TEMPORAL_ADDRESS for a running stack)' };
    const connection = await Connection.connect({ address: ctx.warden.temporalAddress });
    try {
      const client = new Client({ connection, namespace: ctx.warden.temporalNamespace });
      const perLane = ctx.options.quick ? 4 : 8;
      const parts = {} as Record<FlowMethod, Part[]>;
      for (const method of FLOW_METHODS) {
        parts[method] = [];
        for (const lanes of [1, 8]) {
          ctx.log(`breakdown: ${method}, ${lanes} lane(s) x ${perLane} flows`);
          parts[method].push(await runPart(ctx, client, method, lanes, lanes === 1 ? perLane * 2 : perLane));
        }
      }
      return { bcryptSingleOpMs: ctx.bound.singleOpMs, parts };
    } finally {
      await connection.close();
    }
  },

  render(result, all) {
    const sweep = all.scenarios.sweep as SweepResult | undefined;
    const lines: string[] = [
      `Stages in ms from each challenge's workflow history and the client's own clock (same machine). One bcrypt operation alone takes ${result.bcryptSingleOpMs} ms on this machine.`,
      '',
    ];
    for (const method of FLOW_METHODS) {
      const parts = result.parts[method];
      if (!parts?.length) continue;
      lines.push(`**${method}** (${parts.map((p) => `c=${p.lanes}: ${p.samples} flows`).join(', ')})`, '');
      lines.push(
        ...table('initiate', parts, (p) => p.initiate),
        ...table('delivery', parts, (p) => p.delivery),
        ...table('verify', parts, (p) => p.verify),
        ...table('exchange', parts, (p) => p.exchange ?? {}),
      );
      const failed = parts.flatMap((p) =>
        Object.entries(p.failures ?? {}).map(([why, n]) => `c=${p.lanes}: ${why}×${n}`),
      );
      if (failed.length) lines.push(`Flows that did not get their token: ${failed.join(', ')}.`, '');
      const row = sweep?.rows.find((r) => r.method === method && r.concurrency === 8);
      lines.push(
        ...metricsLines(`Service metrics during the sweep's ${method} initiate phase at c=8`, row?.histograms.initiate),
      );
      lines.push(...metricsLines(`... and its verify phase`, row?.histograms.verify));
      lines.push(...metricsLines(`... and its exchange phase`, row?.histograms.exchange));
    }
    return lines.join('\n');
  },
};
