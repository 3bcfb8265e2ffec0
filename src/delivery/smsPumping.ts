/**
 * SMS pumping ("toll fraud"): someone has Warden send codes to numbers whose operator pays them
 * per message, and never types a code in. What gives it away is conversion: of the challenges a
 * number prefix was sent, how many were verified. The decisions here are pure, so the whole rule
 * is one unit test; the counting is SQL over the delivery ledger (src/delivery/conversion.ts),
 * the blocks are src/delivery/prefixBlocks.ts, and docs/delivery.md#sms-pumping says why.
 */
import { getCountries, getCountryCallingCode } from 'libphonenumber-js';

/** A sliding window and the messages it must hold before its conversion is judged. */
export interface PumpingWindow {
  seconds: number;
  minMessages: number;
}

export interface PumpingRules {
  /** digits of the E.164 number after `+` that make a prefix */
  prefixDigits: number;
  windows: PumpingWindow[];
  /** verified / settled challenges below this blocks the prefix (0: measure only, never block) */
  minConversion: number;
  /** an open challenge younger than this is not counted as unverified yet */
  graceSeconds: number;
  /** how long a block lasts */
  blockSeconds: number;
}

/** One prefix's numbers in one window, counted since the prefix's last block ended. */
export interface PrefixCounts {
  prefix: string;
  windowSeconds: number;
  /** messages a provider took (resends and receipt re-sends included: each one is paid for) */
  messages: number;
  /** challenges those messages belonged to */
  challenges: number;
  /** challenges whose outcome is known: verified, ended, or open for longer than the grace */
  settled: number;
  verified: number;
}

export interface BlockCandidate extends PrefixCounts {
  conversion: number;
}

/**
 * Blocks one evaluation may add at most: the rest wait for the next run. A burst of genuine
 * blocks fits; a bug or a wrong setting cannot cut off a whole country in one minute.
 */
export const MAX_BLOCKS_PER_EVALUATION = 20;

const E164 = /^\+([1-9][0-9]{1,14})$/;

/** The digits of an E.164 number after `+`; undefined when it is not one. */
export function e164Digits(phone: string): string | undefined {
  return E164.exec(phone)?.[1];
}

/** The first `digits` digits of an E.164 number after `+` (all of them for a shorter number). */
export function numberPrefix(phone: string, digits: number): string | undefined {
  return e164Digits(phone)?.slice(0, digits);
}

/** Every prefix a block may name for this number: its leading digits, one to all. */
export function prefixesOf(phone: string): string[] {
  const all = e164Digits(phone);
  if (!all) return [];
  return Array.from({ length: all.length }, (_, i) => all.slice(0, i + 1));
}

/** Verified share of the settled challenges; undefined while none is settled. */
export function conversionOf(c: Pick<PrefixCounts, 'settled' | 'verified'>): number | undefined {
  return c.settled > 0 ? c.verified / c.settled : undefined;
}

export type Verdict =
  | { kind: 'block'; conversion: number }
  /** below the window's volume, or too few outcomes known yet */
  | { kind: 'too_few' }
  | { kind: 'ok'; conversion: number };

/**
 * One prefix in one window: blocked when it holds the window's volume, most of its challenges
 * have an outcome (a burst sent a moment ago is not judged on its first few answers), and the
 * verified share of those is below the threshold.
 */
export function judgePrefix(c: PrefixCounts, window: PumpingWindow, minConversion: number): Verdict {
  const conversion = conversionOf(c);
  if (c.messages < window.minMessages || conversion === undefined || c.settled * 2 < c.challenges)
    return { kind: 'too_few' };
  return conversion < minConversion ? { kind: 'block', conversion } : { kind: 'ok', conversion };
}

/**
 * The prefixes to block: a prefix is blocked when any window judges so (the window with the
 * lowest conversion is the reason given), the most messages first, at most MAX_BLOCKS_PER_EVALUATION.
 * Rows of windows the rules do not name are ignored.
 */
export function prefixesToBlock(rows: readonly PrefixCounts[], rules: Pick<PumpingRules, 'windows' | 'minConversion'>) {
  const worst = new Map<string, BlockCandidate>();
  for (const row of rows) {
    const window = rules.windows.find((w) => w.seconds === row.windowSeconds);
    if (!window) continue;
    const verdict = judgePrefix(row, window, rules.minConversion);
    if (verdict.kind !== 'block') continue;
    const before = worst.get(row.prefix);
    if (!before || verdict.conversion < before.conversion)
      worst.set(row.prefix, { ...row, conversion: verdict.conversion });
  }
  return [...worst.values()]
    .sort((a, b) => b.messages - a.messages || a.prefix.localeCompare(b.prefix))
    .slice(0, MAX_BLOCKS_PER_EVALUATION);
}

/**
 * Calling codes that belong to no country (satellite, international networks, freephone): SMS
 * pumping's favourite ranges, reported as their own code.
 */
const NON_GEOGRAPHIC = ['800', '808', '870', '878', '881', '882', '883', '888', '979'];
const CALLING_CODES = new Set<string>([...getCountries().map((c) => getCountryCallingCode(c)), ...NON_GEOGRAPHIC]);

/**
 * The country calling code a prefix starts with (calling codes are prefix-free: at most one of
 * its first one, two or three digits is one); `unknown` when none is.
 */
export function countryOf(prefix: string): string {
  for (let length = 1; length <= 3 && length <= prefix.length; length++) {
    const code = prefix.slice(0, length);
    if (CALLING_CODES.has(code)) return code;
  }
  return 'unknown';
}

export type CountryCounts = Omit<PrefixCounts, 'prefix'> & { country: string };

/** Per country, the sum of its prefixes' rows of one window. */
export function countryTotals(rows: readonly PrefixCounts[], windowSeconds: number): CountryCounts[] {
  const totals = new Map<string, CountryCounts>();
  for (const row of rows) {
    if (row.windowSeconds !== windowSeconds) continue;
    const country = countryOf(row.prefix);
    const t = totals.get(country) ?? { country, windowSeconds, messages: 0, challenges: 0, settled: 0, verified: 0 };
    t.messages += row.messages;
    t.challenges += row.challenges;
    t.settled += row.settled;
    t.verified += row.verified;
    totals.set(country, t);
  }
  return [...totals.values()].sort((a, b) => a.country.localeCompare(b.country));
}
