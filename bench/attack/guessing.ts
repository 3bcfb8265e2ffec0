/**
 * Guessing one account's SMS codes from many addresses (docs/security.md#account-guess-budget).
 * The attacker names the account, starts challenges as it needs them, and sends rounds of
 * concurrent verifies with random codes, each from the next of its addresses. Whatever refuses
 * it (the backoff, the day's guess budget, the per-user limit, the number's message budget),
 * it waits for the Retry-After it was given, on the simulated clock (bench/attack/clock.ts), so
 * days of trying take a minute.
 *
 * A guess is allowed when Warden compared the code: 200, 401, or the 423 of the attempt that
 * locked the challenge. Guesses per day = guesses compared / simulated days; the chance of
 * guessing a code within a year at that rate is 1 - (1 - 10^-6)^(guesses per day × 365).
 *
 * The owner signed in once from a browser before the attack (so the browser is trusted). In
 * the middle of the attack, once the strangers' guesses are refused for the day, the owner signs
 * in again from that browser and another address: the owner must get a code and be let in.
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DAY_SECONDS, OTP_SPACE_DIGITS } from '../../src/auth/budgets';
import { SimulatedClock } from './clock';
import {
  answerKey,
  benchAddress,
  codeSentFor,
  cookieOf,
  countAnswer,
  createUser,
  publicPost,
  Waits,
  type ApiResponse,
  type ShedCount,
} from './client';
import type { Answers, Attack, AttackTarget } from './types';

export interface GuessingOptions {
  /** simulated client addresses, used round robin */
  addresses: number;
  /** first of them, as an offset into 198.18.0.0/15 */
  addressBase: number;
  /** simulated days the attack lasts */
  days: number;
  /** verifies sent at once in each round */
  burst: number;
  owner: { sub: string; phone: string; ip: string };
  /** stop early once more guesses than this were compared (a missing budget fails fast) */
  maxGuesses?: number;
}

export interface OwnerSignIn {
  signedIn: boolean;
  /** simulated seconds into the attack */
  atSimulatedSeconds: number | null;
  /** what the strangers were refused with at that moment */
  strangersRefusedWith: string | null;
  answers: string[];
}

export interface GuessingResult {
  addressesUsed: number;
  simulatedDays: number;
  requests: number;
  guessesCompared: number;
  rightGuesses: number;
  guessesPerDay: number;
  perSimulatedDay: number[];
  successPerYear: number;
  challengesStarted: number;
  clockJumps: number;
  shed: number;
  answers: Answers;
  owner: OwnerSignIn;
  realSeconds: number;
}

const TRUST_COOKIE = 'warden_trust';
const DEVICE_COOKIE = 'warden_device';

const randomCode = () => String(randomInt(10 ** OTP_SPACE_DIGITS)).padStart(OTP_SPACE_DIGITS, '0');

/** Warden compared the code: the answer says whether it was right. */
const compared = (res: ApiResponse) =>
  res.status === 200 || res.status === 401 || (res.status === 423 && res.body?.remaining_attempts === 0);
/** The challenge can take no more guesses: verified, locked, expired, revoked. */
const ended = (res: ApiResponse) => [200, 409, 410, 423].includes(res.status);

/** The chance that at least one of `guesses` random guesses of a fresh code is right. */
export function successProbability(guesses: number, digits = OTP_SPACE_DIGITS): number {
  return -Math.expm1(guesses * Math.log1p(-(10 ** -digits)));
}

/** One sign-in from the owner's browser; `trust` is its warden_trust cookie once it has one. */
async function ownerSignIn(
  target: AttackTarget,
  owner: GuessingOptions['owner'],
  trust: string | undefined,
  shed: ShedCount,
): Promise<{ ok: boolean; answers: string[]; trust?: string }> {
  const cookies = trust ? [trust] : [];
  const started = await publicPost(target, '/otp/initiate', { user_id: owner.sub }, { ip: owner.ip, cookies }, shed);
  const answers = [`initiate ${answerKey(started)}`];
  const id = started.body?.challenge_id;
  if (started.status !== 202 || !id) return { ok: false, answers };
  const device = cookieOf(started.headers, DEVICE_COOKIE);
  const code = await codeSentFor(target, owner.phone, id);
  const verified = await publicPost(
    target,
    '/otp/verify',
    { challenge_id: id, otp: code },
    { ip: owner.ip, cookies: [...cookies, ...(device ? [device] : [])] },
    shed,
  );
  answers.push(`verify ${answerKey(verified)}`);
  return { ok: verified.status === 200, answers, trust: cookieOf(verified.headers, TRUST_COOKIE) ?? trust };
}

export const guessingAttack: Attack<GuessingOptions, GuessingResult> = {
  name: 'guessing',
  title: "guess one account's codes from many addresses",

  async run(target, options, log) {
    const began = performance.now();
    const { owner } = options;
    const shed: ShedCount = { shed: 0 };
    await createUser(target, owner.sub, owner.phone);
    const first = await ownerSignIn(target, owner, undefined, shed);
    if (!first.ok || !first.trust)
      throw new Error(`the owner's first sign-in failed (${first.answers.join(', ')}): nothing to attack`);
    const trust = first.trust;

    const clock = new SimulatedClock(target);
    const horizon = options.days * DAY_SECONDS;
    // the owner signs in once the strangers are refused for the day, in the middle of the attack
    const ownerAfter = options.days > 1 ? Math.floor(options.days / 2) * DAY_SECONDS : 0;
    const answers: Answers = {};
    const perDay = Array.from({ length: Math.ceil(options.days) }, () => 0);
    const used = new Set<string>();
    let next = 0;
    const address = () => {
      const ip = benchAddress(options.addressBase + (next++ % options.addresses));
      used.add(ip);
      return ip;
    };
    let requests = 0;
    let guesses = 0;
    let right = 0;
    let started = 0;
    let challenge: string | undefined;
    let ownerResult: OwnerSignIn = {
      signedIn: false,
      atSimulatedSeconds: null,
      strangersRefusedWith: null,
      answers: [],
    };
    let ownerTried = false;

    while (clock.elapsedSeconds < horizon && guesses <= (options.maxGuesses ?? Infinity)) {
      const waits = new Waits();
      let progressed = false;
      const seen = (res: ApiResponse) => {
        requests += 1;
        countAnswer(answers, res);
        if (res.status === 429) waits.note(res);
      };
      if (!challenge) {
        const res = await publicPost(target, '/otp/initiate', { user_id: owner.sub }, { ip: address() }, shed);
        seen(res);
        if (res.status === 202 && res.body?.challenge_id) {
          challenge = res.body.challenge_id;
          started += 1;
          progressed = true;
        } else if (res.status !== 429) throw new Error(`an initiate answered ${answerKey(res)}`);
      }
      if (challenge) {
        const id = challenge;
        const round = await Promise.all(
          Array.from({ length: options.burst }, () =>
            publicPost(target, '/otp/verify', { challenge_id: id, otp: randomCode() }, { ip: address() }, shed),
          ),
        );
        for (const res of round) {
          seen(res);
          if (compared(res)) {
            guesses += 1;
            perDay[Math.min(perDay.length - 1, Math.floor(clock.elapsedSeconds / DAY_SECONDS))]! += 1;
            progressed = true;
          }
          if (res.status === 200) right += 1;
          if (ended(res)) challenge = undefined;
        }
        // an ended challenge is replaced at once: no time needs to pass for that
        if (!challenge) progressed = true;
      }
      if (progressed) continue;
      if (!ownerTried && clock.elapsedSeconds >= ownerAfter && waits.has('verify_budget_exhausted')) {
        ownerTried = true;
        const signIn = await ownerSignIn(target, owner, trust, shed);
        ownerResult = {
          signedIn: signIn.ok,
          atSimulatedSeconds: clock.elapsedSeconds,
          strangersRefusedWith: waits.kinds.join(', '),
          answers: signIn.answers,
        };
        log(
          `guessing: the owner's sign-in at ${(clock.elapsedSeconds / 3600).toFixed(1)} simulated h, strangers refused with ${ownerResult.strangersRefusedWith}: ${signIn.answers.join(', ')}`,
        );
      }
      if (waits.size === 0) throw new Error('a round was refused without a Retry-After');
      await clock.advance(Math.min(waits.next(), horizon - clock.elapsedSeconds));
    }
    if (!ownerTried) {
      const signIn = await ownerSignIn(target, owner, trust, shed);
      ownerResult = {
        signedIn: signIn.ok,
        atSimulatedSeconds: clock.elapsedSeconds,
        strangersRefusedWith: null,
        answers: signIn.answers,
      };
    }
    const guessesPerDay = Math.round((guesses / (clock.elapsedSeconds / DAY_SECONDS)) * 100) / 100;
    return {
      addressesUsed: used.size,
      simulatedDays: Math.round((clock.elapsedSeconds / DAY_SECONDS) * 1000) / 1000,
      requests,
      guessesCompared: guesses,
      rightGuesses: right,
      guessesPerDay,
      perSimulatedDay: perDay,
      successPerYear: successProbability(guessesPerDay * 365),
      challengesStarted: started,
      clockJumps: clock.jumpCount,
      shed: shed.shed,
      answers,
      owner: ownerResult,
      realSeconds: Math.round(performance.now() - began) / 1000,
    };
  },

  row(r) {
    return {
      attack: `guess one account's codes from ${r.addressesUsed.toLocaleString('en-US')} addresses`,
      reported: "guesses allowed per day, success probability per year; the owner's sign-in while it runs",
      measured: `${r.guessesPerDay} guesses/day (${r.guessesCompared} in ${r.simulatedDays} simulated days), ${percent(r.successPerYear)} per year; owner ${r.owner.signedIn ? 'signed in' : 'NOT signed in'}`,
      target: '< 1% per year; owner signs in',
      pass: r.successPerYear < 0.01 && r.owner.signedIn,
    };
  },

  line(r) {
    return `guessing: ${r.requests} requests from ${r.addressesUsed} addresses over ${r.simulatedDays} simulated days (${r.realSeconds} s real, ${r.clockJumps} clock jumps): ${r.guessesCompared} guesses compared (${r.perSimulatedDay.join('/')} per day), ${r.guessesPerDay}/day -> ${percent(r.successPerYear)} a year; owner ${r.owner.signedIn ? 'signed in' : 'did NOT sign in'} (${r.owner.answers.join(', ')})`;
  },
};

export function percent(p: number): string {
  return `${(Math.round(p * 100_000) / 1000).toString()}%`;
}
