import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHALLENGE_OPEN, CHALLENGE_STATUSES, decideAttempt, isChallengeEnd } from '../../src/shared/auth';
import { DELIVERY_STATUSES } from '../../src/shared/delivery';

const BASE_SCHEMA = readFileSync(path.resolve(__dirname, '../../migrations/0001_base_schema.sql'), 'utf8');

/** The quoted values of `CHECK (<column> IN (...))` in the base schema. */
function checkedValues(column: string): string[] {
  const check = new RegExp(`CHECK \\(${column} IN \\(([^)]*)\\)\\)`).exec(BASE_SCHEMA);
  if (!check) throw new Error(`no CHECK on ${column}`);
  return [...check[1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
}

describe('the verify decision', () => {
  it('verifies a match, even on the last allowed attempt', () => {
    expect(decideAttempt(true, 1, 5)).toEqual({ outcome: 'verified', end: { status: 'verified', reason: 'used' } });
    expect(decideAttempt(true, 5, 5)).toMatchObject({ outcome: 'verified' });
  });

  it('counts a wrong attempt while attempts remain, and locks on the last one', () => {
    expect(decideAttempt(false, 1, 5)).toEqual({ outcome: 'invalid', remainingAttempts: 4 });
    expect(decideAttempt(false, 4, 5)).toEqual({ outcome: 'invalid', remainingAttempts: 1 });
    expect(decideAttempt(false, 5, 5)).toEqual({ outcome: 'locked', end: { status: 'locked', reason: 'locked' } });
    expect(decideAttempt(false, 1, 1)).toMatchObject({ outcome: 'locked' });
  });
});

describe('the challenge statuses', () => {
  it('are the lifecycle the schema allows, open by default, with delivery in a column of its own', () => {
    expect(checkedValues('status')).toEqual([...CHALLENGE_STATUSES]);
    expect(BASE_SCHEMA).toMatch(new RegExp(`\\bstatus +text NOT NULL DEFAULT '${CHALLENGE_OPEN}'`));
    expect(checkedValues('delivery_status')).toEqual([...DELIVERY_STATUSES]);
    for (const s of DELIVERY_STATUSES) expect(CHALLENGE_STATUSES).not.toContain(s);
  });

  it('tell ended statuses from the open one', () => {
    expect(CHALLENGE_STATUSES.filter(isChallengeEnd)).toEqual(['verified', 'expired', 'revoked', 'locked']);
    expect(isChallengeEnd(CHALLENGE_OPEN)).toBe(false);
    expect(isChallengeEnd(null)).toBe(false);
  });
});
