/**
 * SMS bombing one number (docs/security.md#destination-budget): from many addresses, the
 * attacker starts sign-ins for the victim's account and asks for resends of them, round after
 * round, for a number of simulated hours. When every request of a round is refused for a reason
 * time lifts (the number's message budget, the per-user limit), the attack waits out the
 * Retry-After on the simulated clock (bench/attack/clock.ts).
 *
 * What counts is what the victim's phone received: the sandbox's outbox for that number, read
 * before each move of the clock once every message asked for has arrived. Each message is placed
 * at the simulated moment its request (answered 202) was sent, which holds only while the outbox
 * has no more messages than requests answered 202: the row fails otherwise. The result is the
 * most messages in any hour and in any day of the attack.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOUR_SECONDS, DAY_SECONDS } from '../../src/auth/budgets';
import { Outbox } from '../lib/outbox';
import { SimulatedClock } from './clock';
import { answerKey, benchAddress, countAnswer, createUser, publicPost, Waits, type ShedCount } from './client';
import type { Answers, Attack } from './types';

export interface BombingOptions {
  addresses: number;
  /** first address, as an offset into 198.18.0.0/15 */
  addressBase: number;
  /** simulated hours the attack lasts */
  hours: number;
  /** requests sent at once in each round, half initiates, half resends */
  burst: number;
  victim: { sub: string; phone: string };
  /** the destination budget the target runs with: the row's target */
  budget: { perHour: number; perDay: number };
  /** stop early once more requests than this were answered 202 (a missing budget fails fast) */
  maxAccepted?: number;
}

export interface BombingResult {
  addressesUsed: number;
  simulatedHours: number;
  requests: number;
  /** 202 answers: initiates and resends that queued a message */
  accepted: number;
  /** messages the sandbox holds for the victim's number */
  received: number;
  maxPerHour: number;
  maxPerDay: number;
  budget: { perHour: number; perDay: number };
  /** messages received in each simulated hour of the attack that had any */
  timeline: Array<{ hour: number; messages: number }>;
  clockJumps: number;
  shed: number;
  answers: Answers;
  realSeconds: number;
}

/** Refusals that end when time passes; a resend's cooldown runs on the workflow's own timer. */
const LIFTED_BY_TIME = new Set(['too_many_messages', 'rate_limited']);

/** The most messages within any window of `seconds`, from messages placed at simulated times. */
export function maxInWindow(points: ReadonlyArray<{ at: number; messages: number }>, seconds: number): number {
  const sorted = [...points].sort((a, b) => a.at - b.at);
  let best = 0;
  for (let i = 0; i < sorted.length; i++) {
    let sum = 0;
    for (let j = i; j < sorted.length && sorted[j]!.at < sorted[i]!.at + seconds; j++) sum += sorted[j]!.messages;
    best = Math.max(best, sum);
  }
  return best;
}

/** Waits until the victim's outbox holds at least `expected` messages (or 15 s pass). */
async function receivedBy(outbox: Outbox, phone: string, expected: number): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const n = (await outbox.messagesFor(phone)).length;
    if (n >= expected || Date.now() > deadline) return n;
    await sleep(200);
  }
}

export const smsBombingAttack: Attack<BombingOptions, BombingResult> = {
  name: 'smsBombing',
  title: 'SMS bombing one number',

  async run(target, options, log) {
    const began = performance.now();
    const { victim } = options;
    await createUser(target, victim.sub, victim.phone);
    const outbox = new Outbox(target.sandboxUrl);
    const clock = new SimulatedClock(target);
    const shed: ShedCount = { shed: 0 };
    const horizon = options.hours * HOUR_SECONDS;
    const answers: Answers = {};
    const used = new Set<string>();
    let next = 0;
    const address = () => {
      const ip = benchAddress(options.addressBase + (next++ % options.addresses));
      used.add(ip);
      return ip;
    };
    const challenges: string[] = [];
    let requests = 0;
    let accepted = 0;
    const points: Array<{ at: number; messages: number }> = [];

    while (clock.elapsedSeconds < horizon && accepted <= (options.maxAccepted ?? Infinity)) {
      const sentAt = clock.elapsedSeconds;
      const round = await Promise.all(
        Array.from({ length: options.burst }, (_, i) => {
          const ip = address();
          const resendOf =
            i % 2 === 1 && challenges.length > 0
              ? challenges[challenges.length - 1 - ((i >> 1) % challenges.length)]
              : undefined;
          return resendOf
            ? publicPost(target, '/otp/resend', { challenge_id: resendOf }, { ip }, shed)
            : publicPost(target, '/otp/initiate', { user_id: victim.sub }, { ip }, shed);
        }),
      );
      const waits = new Waits();
      let progressed = false;
      for (const res of round) {
        requests += 1;
        countAnswer(answers, res);
        if (res.status === 202) {
          accepted += 1;
          points.push({ at: sentAt, messages: 1 });
          progressed = true;
          if (res.body?.challenge_id) challenges.push(res.body.challenge_id);
        } else if (res.status === 429 && LIFTED_BY_TIME.has(res.body?.error ?? '')) {
          waits.note(res);
        } else if (res.status >= 500) {
          throw new Error(`a bombing request answered ${answerKey(res)}`);
        }
      }
      challenges.splice(0, Math.max(0, challenges.length - 10));
      if (progressed) continue;
      // the messages asked for so far arrive before time moves on
      await receivedBy(outbox, victim.phone, accepted);
      if (waits.size === 0) throw new Error(`a round was refused for no reason time lifts: ${JSON.stringify(answers)}`);
      await clock.advance(Math.min(waits.next(), horizon - clock.elapsedSeconds));
    }
    const received = await receivedBy(outbox, victim.phone, accepted);
    const timeline = new Map<number, number>();
    for (const p of points) {
      const hour = Math.floor(p.at / HOUR_SECONDS);
      timeline.set(hour, (timeline.get(hour) ?? 0) + 1);
    }
    const result: BombingResult = {
      addressesUsed: used.size,
      simulatedHours: Math.round((clock.elapsedSeconds / HOUR_SECONDS) * 100) / 100,
      requests,
      accepted,
      received,
      maxPerHour: maxInWindow(points, HOUR_SECONDS),
      maxPerDay: maxInWindow(points, DAY_SECONDS),
      budget: options.budget,
      timeline: [...timeline].sort(([a], [b]) => a - b).map(([hour, messages]) => ({ hour, messages })),
      clockJumps: clock.jumpCount,
      shed: shed.shed,
      answers,
      realSeconds: Math.round(performance.now() - began) / 1000,
    };
    if (result.received !== result.accepted)
      log(`smsBombing: ${result.accepted} requests accepted but ${result.received} messages received`);
    return result;
  },

  row(r) {
    return {
      attack: 'SMS bombing one number',
      reported: 'messages per hour received by the victim',
      measured: `${r.maxPerHour} in the worst hour, ${r.maxPerDay} in the worst day (${r.received} over ${r.simulatedHours} simulated h, ${r.requests} requests)`,
      target: `at most the destination budget (${r.budget.perHour} an hour, ${r.budget.perDay} a day)`,
      pass: r.received <= r.accepted && r.maxPerHour <= r.budget.perHour && r.maxPerDay <= r.budget.perDay,
    };
  },

  line(r) {
    return `smsBombing: ${r.requests} requests from ${r.addressesUsed} addresses over ${r.simulatedHours} simulated h (${r.realSeconds} s real): the victim received ${r.received} (worst hour ${r.maxPerHour}, worst day ${r.maxPerDay}; budget ${r.budget.perHour}/h, ${r.budget.perDay}/day)`;
  },
};
