import { describe, expect, it } from 'vitest';
import { decideAttempt } from '../../src/shared/auth';

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
