/**
 * The leak-scan patterns, `grep -E '\b[0-9]{6}\b|\b[a-f0-9]{32,}\b'`, plus the format of
 * our magic-link tokens (43 base64url characters), which the hex pattern cannot match.
 * The patterns also match harmless things (6-digit numbers, hashes, trace ids), so a match is
 * only a candidate: it is a confirmed leak only if it equals a secret issued in the window,
 * which the scan checks against the stored bcrypt hashes (leak scan activity), never by
 * keeping plaintext.
 */
import { MAGIC_TOKEN_PATTERN, OTP_PATTERN } from '../auth/crypto';

export const LEAK_SCAN_PATTERNS: readonly RegExp[] = [/\b[0-9]{6}\b/g, /\b[a-f0-9]{32,}\b/g];
export const TOKEN_FORMAT_PATTERN = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;

export type CandidateKind = 'sms_otp' | 'magic_link' | 'other';

/** What a matched string could be: an OTP, a magic-link token, or neither by its format. */
export function classifyCandidate(value: string): CandidateKind {
  if (OTP_PATTERN.test(value)) return 'sms_otp';
  if (MAGIC_TOKEN_PATTERN.test(value)) return 'magic_link';
  return 'other';
}

/** Every match of the leak patterns and the token format in `text` (the same string may repeat). */
export function findMatches(text: string): string[] {
  const out: string[] = [];
  for (const pattern of [...LEAK_SCAN_PATTERNS, TOKEN_FORMAT_PATTERN]) {
    for (const m of text.matchAll(pattern)) out.push(m[0]);
  }
  return out;
}

/**
 * Candidates by value, with the places each was seen and the challenges whose own history
 * held it (checked against that challenge first: a challenge's workflow only ever handles
 * its own secret). Matches inside numbers (a JSON number, a metric's sample value) are
 * counted but not candidates: every code and token is a string everywhere in Warden, and a
 * number cannot carry a code's leading zeros.
 */
export class CandidateSet {
  readonly byValue = new Map<string, { sources: Set<string>; near: Set<string> }>();
  matches = 0;
  numericMatches = 0;
  readonly matchesBySource: Record<string, number> = {};

  /** Free text: every match is a candidate. */
  add(text: string, source: string, nearChallenge?: string): void {
    for (const value of findMatches(text)) {
      this.matches++;
      this.matchesBySource[source] = (this.matchesBySource[source] ?? 0) + 1;
      let entry = this.byValue.get(value);
      if (!entry) {
        entry = { sources: new Set(), near: new Set() };
        this.byValue.set(value, entry);
      }
      entry.sources.add(source);
      if (nearChallenge) entry.near.add(nearChallenge);
    }
  }

  private numeric(text: string, source: string): void {
    const n = findMatches(text).length;
    this.matches += n;
    this.numericMatches += n;
    this.matchesBySource[source] = (this.matchesBySource[source] ?? 0) + n;
  }

  /** A JSON document (a log line, a decoded payload): strings and keys are candidates, numbers are counted. Non-JSON is free text. */
  addJson(text: string, source: string, nearChallenge?: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.add(text, source, nearChallenge);
    }
    const walk = (value: unknown, depth: number): void => {
      if (typeof value === 'string') this.add(value, source, nearChallenge);
      else if (typeof value === 'number') this.numeric(String(value), source);
      else if (value && typeof value === 'object' && depth < 64) {
        for (const [key, child] of Object.entries(value)) {
          if (!Array.isArray(value)) this.add(key, source, nearChallenge);
          walk(child, depth + 1);
        }
      }
    };
    walk(parsed, 0);
  }

  /** A Prometheus text page: names, labels and comments are candidates; sample values are numbers. */
  addMetrics(text: string, source: string): void {
    for (const line of text.split('\n')) {
      const sample = /^([^#\s].*?)\s+(\S+)(\s+\d+)?$/.exec(line);
      if (!sample) {
        this.add(line, source);
        continue;
      }
      this.add(sample[1]!, source);
      this.numeric(`${sample[2]}${sample[3] ?? ''}`, source);
    }
  }
}
