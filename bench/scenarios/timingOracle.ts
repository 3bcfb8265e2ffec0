/**
 * The timing oracle: can an attacker tell an account that exists from one that does not by how
 * long its initiate takes? OTP initiates for seeded bench users (a real send) and for user ids
 * nobody has (the decoy, never delivered), `oracleRequests` of each, shuffled into one sequence
 * and sent one at a time, each after a pause that lets the previous one's background work end
 * (a real send's provider call and its delivery callback would otherwise land on whichever
 * request comes next, and a fixed order would put them on one side more than the other).
 * Reported: median and p95 of each side and their differences (target: under 2 ms), and an A/A
 * control, the same statistics between two halves of the known side (what the machine's noise
 * alone makes of two identical paths).
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from '../lib/http';
import { summarize, type Summary } from '../lib/stats';
import { benchUser, type BenchUser } from '../lib/users';
import { clientHeaders, initiateJson, ROUTES } from '../lib/wardenApi';
import type { BenchContext, Scenario, TargetCheck } from './types';

const TARGET_MS = 2;
/** requests of each side sent first and not counted (caches, JIT, connection pools) */
const WARMUP = 20;
/** after each request: its send, the provider's callback and the receipt's signal are over */
const SETTLE_MS = 250;

type Side = 'known' | 'unknown';

export interface TimingOracleResult {
  requestsEach: number;
  known: Summary;
  unknown: Summary;
  /** unknown minus known, ms */
  medianDiffMs: number;
  p95DiffMs: number;
  /** the known side split in two (every other request): the noise floor of the same comparison */
  control: { medianDiffMs: number; p95DiffMs: number };
  /** answers other than 202, by side and status */
  failures: Record<string, number>;
}

const round = (v: number) => Math.round(v * 100) / 100;

/** `n` of each side in random order (Fisher-Yates). */
function shuffled(n: number): Side[] {
  const order: Side[] = [...Array<Side>(n).fill('known'), ...Array<Side>(n).fill('unknown')];
  for (let i = order.length - 1; i > 0; i -= 1) {
    const j = randomInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * Unknown users are ids of the bench users' own shape past the seeded ones (`bench-500001`...):
 * ids of another shape (random ones) would differ in more than whether the user exists, e.g.
 * where they land in each index they are written to.
 */
const UNKNOWN_FROM = 500_000;

async function initiateMs(ctx: BenchContext, side: Side, n: number, failures: Record<string, number>) {
  // a bench user with a phone, or an id nobody has, from a fresh bench address either way
  const real = ctx.users.take();
  const user: BenchUser = side === 'known' ? real : { ...benchUser(UNKNOWN_FROM + n), ip: real.ip };
  const res = await request(`${ctx.warden.publicUrl}${ROUTES.otp.initiate}`, {
    method: 'POST',
    json: initiateJson(user),
    headers: clientHeaders(user),
  });
  if (res.status === 202) return res.ms;
  const key = `${side} ${res.status}`;
  failures[key] = (failures[key] ?? 0) + 1;
  return undefined;
}

export const timingOracleScenario: Scenario<TimingOracleResult> = {
  name: 'timingOracle',
  title: 'Timing oracle (initiate: known user against unknown user)',
  inDefaultRun: false,

  async run(ctx) {
    const n = ctx.options.oracleRequests;
    const times: Record<Side, number[]> = { known: [], unknown: [] };
    const failures: Record<string, number> = {};
    const sequence = [...shuffled(WARMUP), ...shuffled(n)];
    for (const [i, side] of sequence.entries()) {
      const ms = await initiateMs(ctx, side, i, failures);
      if (ms !== undefined && i >= 2 * WARMUP) times[side].push(ms);
      await sleep(SETTLE_MS);
      if ((i + 1) % 500 === 0) ctx.log(`timing oracle: ${i + 1} of ${sequence.length} initiates`);
    }
    const k = summarize(times.known, 2);
    const u = summarize(times.unknown, 2);
    const a = summarize(
      times.known.filter((_, i) => i % 2 === 0),
      2,
    );
    const b = summarize(
      times.known.filter((_, i) => i % 2 === 1),
      2,
    );
    return {
      requestsEach: n,
      known: k,
      unknown: u,
      medianDiffMs: round(u.p50 - k.p50),
      p95DiffMs: round(u.p95 - k.p95),
      control: { medianDiffMs: round(b.p50 - a.p50), p95DiffMs: round(b.p95 - a.p95) },
      failures,
    };
  },

  targets(r): TargetCheck[] {
    return [
      {
        name: 'timing oracle: initiate median, unknown - known user',
        target: `|diff| < ${TARGET_MS} ms`,
        measured: `${r.medianDiffMs} ms over ${r.requestsEach} each (noise floor ${r.control.medianDiffMs} ms)`,
        pass: Math.abs(r.medianDiffMs) < TARGET_MS,
      },
      {
        name: 'timing oracle: initiate p95, unknown - known user',
        target: `|diff| < ${TARGET_MS} ms`,
        measured: `${r.p95DiffMs} ms over ${r.requestsEach} each (noise floor ${r.control.p95DiffMs} ms)`,
        pass: Math.abs(r.p95DiffMs) < TARGET_MS,
      },
    ];
  },

  render(r) {
    const failures = Object.entries(r.failures)
      .map(([k, v]) => `${v} × ${k}`)
      .join(', ');
    return [
      `${r.requestsEach} OTP initiates each for a seeded user and for a user id nobody has, shuffled, one at a time with ${SETTLE_MS} ms between them. Times in ms, from the request being written until the answer was read.`,
      '',
      '| side | median | p95 | p99 | mean |',
      '|---|--:|--:|--:|--:|',
      `| known user | ${r.known.p50} | ${r.known.p95} | ${r.known.p99} | ${r.known.mean} |`,
      `| unknown user | ${r.unknown.p50} | ${r.unknown.p95} | ${r.unknown.p99} | ${r.unknown.mean} |`,
      `| **unknown - known** | **${r.medianDiffMs}** | **${r.p95DiffMs}** | | |`,
      `| noise floor (known, two halves) | ${r.control.medianDiffMs} | ${r.control.p95DiffMs} | | |`,
      '',
      failures ? `Answers other than 202: ${failures}.` : 'Every initiate answered 202.',
    ].join('\n');
  },
};
