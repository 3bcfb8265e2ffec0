/**
 * A flood at a multiple of the machine's bcrypt capacity (docs/scaling.md#load-shedding). Every
 * initiate costs a bcrypt hash and every verify a comparison; past what the cores can hash, more
 * work in flight makes everyone wait. The flood is an open loop (bench/lib/openLoop.ts) at
 * `factor` × the bcrypt operations per second measured on this machine (bench/lib/bcrypt.ts),
 * half initiates for fresh users, half verifies with the right token of challenges started
 * before the flood (users finishing their sign-in), from many addresses, with every limit at
 * its default. The flows are magic links: the same bcrypt hash and comparison as a code, without
 * the thousands of unverified SMS the SMS pumping evaluation would rightly take for pumping.
 *
 * Reported: the latency of the verifies that were let in (from the moment each was due), beside
 * that of a few verifies one at a time before the flood (what the machine gives without it), the
 * share shed (503 `overloaded`, which must carry Retry-After), and the refusal audit rows the
 * flood wrote. Refusals are aggregated per client, action, reason and window
 * (docs/operations.md#refusals-in-the-audit-trail), so the rows are bounded by
 * clients × windows × 2 actions × 2 shed reasons, however many requests were shed.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectAll, mapLimited, type Delivered, type Issued } from '../lib/flows';
import { runOpenLoop } from '../lib/openLoop';
import { Outbox } from '../lib/outbox';
import { summarize, type Summary } from '../lib/stats';
import { benchUser } from '../lib/users';
import { deviceCookieOf } from '../lib/wardenApi';
import { benchAddress, countAnswer, publicPost, type ApiResponse } from './client';
import { admissionLimit, scrape, verifyStagesMs } from './metrics';
import type { Answers, Attack, AttackTarget } from './types';

export interface FloodOptions {
  /** bcrypt operations per second on this machine at the service's cost */
  capacityPerSecond: number;
  factor: number;
  seconds: number;
  addresses: number;
  /** first address, as an offset into 198.18.0.0/15 */
  addressBase: number;
  /** the first bench user (bench/lib/users.ts) the flood signs in; it seeds the ones it needs */
  firstUser: number;
  /** the target's WARDEN_REFUSAL_AUDIT_WINDOW_S and WARDEN_REFUSAL_AUDIT_FLUSH_MS */
  refusalWindowSeconds: number;
  refusalFlushMs: number;
  /** initiates in flight while the verifies' challenges are prepared */
  prepareConcurrency: number;
  /** verifies sent one at a time before the flood: the latency without it */
  baselineVerifies: number;
}

export interface ActionResult {
  sent: number;
  admitted: number;
  shed: number;
  /** shed answers that carried a Retry-After header */
  shedWithRetryAfter: number;
  shareShed: number;
  /** latency of the admitted, ms from when each was due */
  admittedMs: Summary;
  answers: Answers;
}

export interface FloodResult {
  capacityPerSecond: number;
  factor: number;
  ratePerSecond: number;
  /** initiates (and, apart, verifies) the stack lets in at once: warden_admission_limit */
  admissionLimit: number | null;
  /** verifies one at a time before the flood, ms */
  baselineVerifyMs: Summary;
  /** mean ms of each stage of the verifies the service ran during the flood (`queue`: admission) */
  verifyStagesMs: Record<string, number>;
  seconds: number;
  initiate: ActionResult;
  verify: ActionResult;
  shareShed: number;
  /** how late the generator fired, ms (a loaded generator shows up here) */
  generatorLagP95Ms: number;
  refusalRows: Record<string, { rows: number; refusals: number }>;
  /** rows of identity.admission.shed, and their upper bound */
  shedRows: number;
  shedRowsBound: number;
  /** every audit row written while the flood ran */
  auditRows: number;
  clients: number;
}

const VERIFY_P95_TARGET_MS = 200;

async function seedUsers(target: AttackTarget, first: number, count: number): Promise<void> {
  await target.sql(
    `INSERT INTO users (sub, phone, email)
     SELECT 'bench-' || lpad(n::text, 6, '0'), '+15552' || lpad(n::text, 6, '0'), 'bench-' || lpad(n::text, 6, '0') || '@bench.example'
       FROM generate_series($1::int, $2::int) AS n
     ON CONFLICT (sub) DO NOTHING`,
    [first, first + count - 1],
  );
}

/** The verify a user makes with the link's token, from the browser that asked for it. */
function verifyOf(target: AttackTarget, flow: Delivered, ip: string, retries: number): Promise<ApiResponse> {
  return publicPost(
    target,
    '/magic-link/verify',
    { challenge: flow.challengeId, token: flow.credential.secret },
    { ip, cookies: flow.deviceCookie ? [flow.deviceCookie] : [] },
    undefined,
    retries,
  );
}

function actionResult(results: Array<{ res: ApiResponse; ms: number }>): ActionResult {
  const answers: Answers = {};
  const admittedMs: number[] = [];
  let shed = 0;
  let withRetryAfter = 0;
  for (const { res, ms } of results) {
    countAnswer(answers, res);
    if (res.status === 503 && res.body?.error === 'overloaded') {
      shed += 1;
      if (Number(res.headers['retry-after']) > 0) withRetryAfter += 1;
    } else admittedMs.push(ms);
  }
  return {
    sent: results.length,
    admitted: results.length - shed,
    shed,
    shedWithRetryAfter: withRetryAfter,
    shareShed: results.length ? Math.round((shed / results.length) * 1000) / 1000 : 0,
    admittedMs: summarize(admittedMs),
    answers,
  };
}

export const floodAttack: Attack<FloodOptions, FloodResult> = {
  name: 'flood',
  title: 'flood at a multiple of bcrypt capacity',

  async run(target, options, log) {
    const rate = Math.round(options.capacityPerSecond * options.factor * 10) / 10;
    const total = Math.floor(rate * options.seconds);
    const verifies = Math.ceil(total / 2);
    const prepare = verifies + options.baselineVerifies;
    await seedUsers(target, options.firstUser, prepare + Math.ceil(total / 2));
    const outbox = new Outbox(target.sandboxUrl);
    const address = (i: number) => benchAddress(options.addressBase + (i % options.addresses));

    // the users who finish their sign-in during the flood start it before
    const prepared = await mapLimited(
      Array.from({ length: prepare }, (_, k) => k),
      options.prepareConcurrency,
      async (k): Promise<Issued> => {
        const user = benchUser(options.firstUser + k);
        const res = await publicPost(target, '/magic-link/initiate', { user_id: user.sub }, { ip: address(k) });
        if (res.status !== 202 || !res.body?.challenge_id)
          throw new Error(`a preparing initiate answered ${res.status}`);
        return {
          method: 'magic_link',
          user,
          challengeId: res.body.challenge_id,
          sentAt: Date.now(),
          deviceCookie: deviceCookieOf(res.headers),
        };
      },
    );
    if (prepared.failed > 0) throw new Error(`${prepared.failed} challenges not prepared: ${prepared.firstError}`);
    const { delivered, missing } = await collectAll(outbox, prepared.done);
    if (missing.length > 0) throw new Error(`${missing.length} prepared challenges got no message`);
    // the flood verifies the first `verifies` of them; the rest are verified one at a time first
    const baselineFlows = delivered.slice(verifies);
    const baselineMs: number[] = [];
    for (const [i, flow] of baselineFlows.entries()) {
      const began = performance.now();
      const res = await verifyOf(target, flow, address(verifies + i), 20);
      if (res.status !== 200) throw new Error(`a verify before the flood answered ${res.status}`);
      baselineMs.push(performance.now() - began);
    }
    log(
      `flood: ${delivered.length} challenges prepared, ${baselineMs.length} verified one at a time; flooding at ${rate}/s for ${options.seconds} s`,
    );

    const initiates: Array<{ res: ApiResponse; ms: number }> = [];
    const verified: Array<{ res: ApiResponse; ms: number }> = [];
    const before = await scrape(target);
    const startedAt = Date.now();
    const began = performance.now();
    const loop = await runOpenLoop({
      ratePerSecond: rate,
      durationMs: options.seconds * 1000,
      fire: async ({ index, scheduledAt }) => {
        const ip = address(index);
        const k = index >> 1;
        // no retry: a shed request is the measurement
        if (index % 2 === 0) {
          const user = benchUser(options.firstUser + prepare + k);
          const res = await publicPost(target, '/magic-link/initiate', { user_id: user.sub }, { ip }, undefined, 0);
          initiates.push({ res, ms: Date.now() - scheduledAt });
        } else {
          const res = await verifyOf(target, delivered[k]!, ip, 0);
          verified.push({ res, ms: Date.now() - scheduledAt });
        }
      },
    });
    const floodSeconds = (performance.now() - began) / 1000;
    const after = await scrape(target);
    if (loop.failures > 0) log(`flood: ${loop.failures} requests got no answer`);

    // the counts of later refusals reach their rows with the next flush
    await sleep(options.refusalFlushMs + 2000);
    const refusalRows: FloodResult['refusalRows'] = {};
    for (const row of await target.sql<{ event_type: string; rows: number; refusals: number }>(
      `SELECT e.event_type, count(*)::int AS rows, coalesce(sum(c.count), 0)::int AS refusals
         FROM audit_refusal_counts c JOIN audit_events e ON e.id = c.audit_id
        WHERE c.window_start >= to_timestamp($1::double precision / 1000)
        GROUP BY e.event_type ORDER BY e.event_type`,
      [startedAt],
    ))
      refusalRows[row.event_type] = { rows: row.rows, refusals: row.refusals };
    const [written] = await target.sql<{ n: number }>(
      'SELECT count(*)::int AS n FROM audit_events WHERE occurred_at >= to_timestamp($1::double precision / 1000)',
      [startedAt],
    );
    const clients = new Set(
      Array.from({ length: Math.min(options.addresses, loop.fired) }, (_, i) =>
        address(i).split('.').slice(0, 3).join('.'),
      ),
    ).size;
    const windows = Math.ceil(floodSeconds / options.refusalWindowSeconds) + 1;
    const initiate = actionResult(initiates);
    const verify = actionResult(verified);
    const sent = initiate.sent + verify.sent;
    return {
      capacityPerSecond: options.capacityPerSecond,
      factor: options.factor,
      ratePerSecond: rate,
      admissionLimit: admissionLimit(after),
      baselineVerifyMs: summarize(baselineMs),
      verifyStagesMs: verifyStagesMs(before, after),
      seconds: Math.round(floodSeconds * 10) / 10,
      initiate,
      verify,
      shareShed: sent ? Math.round(((initiate.shed + verify.shed) / sent) * 1000) / 1000 : 0,
      generatorLagP95Ms: summarize(loop.lagMs).p95,
      refusalRows,
      shedRows: refusalRows['identity.admission.shed']?.rows ?? 0,
      shedRowsBound: clients * windows * 2 * 2,
      auditRows: written?.n ?? 0,
      clients,
    };
  },

  row(r) {
    const shed = r.refusalRows['identity.admission.shed'];
    return {
      attack: `flood at ${r.factor}x bcrypt capacity (${r.ratePerSecond}/s for ${r.seconds} s)`,
      reported: 'admitted verify p95, share shed, audit rows written',
      measured: `verify p95 ${r.verify.admittedMs.p95} ms (${r.verify.admitted} admitted; one at a time before the flood: p95 ${r.baselineVerifyMs.p95} ms); ${Math.round(r.shareShed * 1000) / 10}% shed; ${r.shedRows} shed audit rows for ${shed?.refusals ?? 0} shed requests (bound ${r.shedRowsBound}), ${r.auditRows} audit rows in all`,
      target: `p95 < ${VERIFY_P95_TARGET_MS} ms; audit rows bounded`,
      pass:
        r.verify.admitted > 0 &&
        r.verify.admittedMs.p95 < VERIFY_P95_TARGET_MS &&
        r.shedRows <= r.shedRowsBound &&
        r.initiate.shed + r.verify.shed === r.initiate.shedWithRetryAfter + r.verify.shedWithRetryAfter,
    };
  },

  line(r) {
    const part = (name: string, a: ActionResult) =>
      `${name} ${a.sent} sent, ${a.admitted} admitted (p50 ${a.admittedMs.p50} ms, p95 ${a.admittedMs.p95} ms), ${a.shed} shed (${a.shedWithRetryAfter} with Retry-After)`;
    const rows = Object.entries(r.refusalRows)
      .map(([event, v]) => `${event} ${v.rows} rows/${v.refusals} refusals`)
      .join(', ');
    const stages = Object.entries(r.verifyStagesMs)
      .map(([stage, ms]) => `${stage} ${ms}`)
      .join(', ');
    return `flood: ${r.ratePerSecond}/s (${r.factor}x ${r.capacityPerSecond} bcrypt ops/s) for ${r.seconds} s, admission limit ${r.admissionLimit ?? '?'}; verifies one at a time before: p50 ${r.baselineVerifyMs.p50} ms, p95 ${r.baselineVerifyMs.p95} ms; ${part('initiate', r.initiate)}; ${part('verify', r.verify)}; audit: ${rows || 'no refusal rows'}, ${r.auditRows} rows in all (shed bound ${r.shedRowsBound}); generator lag p95 ${r.generatorLagP95Ms} ms; verify stages during the flood (mean ms): ${stages}`;
  },
};
