/** The budgets' arithmetic (src/auth/budgets.ts) and settings (src/config/budgets.ts, src/delivery/countries.ts). */
import { describe, expect, it } from 'vitest';
import {
  backoffDelaySeconds,
  backoffSteps,
  DAY_SECONDS,
  destinationBudgetFor,
  guessesAdmittedByBackoff,
  guessSuccessBound,
  largestSafeDailyBudget,
  type GuessBudget,
} from '../../src/auth/budgets';
import { loadConfig } from '../../src/config';
import { callingCode, parseSmsCountries, smsCountryAllowed } from '../../src/delivery/countries';

const env = (extra: Record<string, string> = {}) => ({ WARDEN_ADMIN_TOKEN: 'x'.repeat(24), ...extra });
const defaults = () => loadConfig(env()).budgets;

describe('the account guess budget', () => {
  it('keeps a year of guessing one account under 1% with the default daily budget', () => {
    const { guesses } = defaults();
    expect(guesses.perDay).toBe(20);
    // 20 wrong codes a day, each one of 10^6 codes: 20 * 365 / 10^6 = 0.73% a year
    expect(guessSuccessBound(guesses.perDay, 365)).toBeCloseTo(0.0073, 6);
    expect(guessSuccessBound(guesses.perDay, 365)).toBeLessThan(0.01);
    // the largest budget that still does: 27 a day (28 would be 1.02%)
    expect(largestSafeDailyBudget(0.01)).toBe(27);
    expect(guessSuccessBound(27, 365)).toBeLessThan(0.01);
    expect(guessSuccessBound(28, 365)).toBeGreaterThan(0.01);
  });

  it('compares with what the per-user limit alone allowed: 10 guesses per 5 minutes, 65% a year', () => {
    const perDay = (10 * DAY_SECONDS) / 300;
    expect(perDay).toBe(2880);
    expect(guessSuccessBound(perDay, 1)).toBeCloseTo(0.00288, 6);
    // the union bound saturates; the exact chance of at least one hit in a year is 1 - (1 - 1e-6)^(2880 * 365)
    expect(1 - (1 - 1e-6) ** (perDay * 365)).toBeGreaterThan(0.65);
    expect(guessSuccessBound(perDay, 365)).toBe(1);
  });

  it('slows an account down after a few wrong codes in a row, doubling up to the cap', () => {
    const budget: GuessBudget = { perDay: 20, freeFailures: 3, backoffBaseSeconds: 2, backoffMaxSeconds: 900 };
    expect(backoffSteps(budget)).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 512, 900]);
    expect([0, 1, 2, 3, 4, 5, 12, 13, 100].map((n) => backoffDelaySeconds(budget, n))).toEqual([
      0, 0, 0, 2, 4, 8, 900, 900, 900,
    ]);
    // alone, the backoff would still admit about a hundred wrong codes a day (3.8% a year): the daily budget is the bound
    const admitted = guessesAdmittedByBackoff(budget);
    expect(admitted).toBeGreaterThan(90);
    expect(admitted).toBeLessThan(110);
    // a cap below the base is the only step
    expect(backoffSteps({ backoffBaseSeconds: 10, backoffMaxSeconds: 5 })).toEqual([5]);
    expect(backoffSteps({ backoffBaseSeconds: 5, backoffMaxSeconds: 5 })).toEqual([5]);
  });

  it('has defaults that a stranger cannot turn into more than the budget a day', () => {
    const { guesses, destination } = defaults();
    expect(guesses).toEqual({ perDay: 20, freeFailures: 3, backoffBaseSeconds: 2, backoffMaxSeconds: 900 });
    expect(destination).toEqual({ perHour: 10, perDay: 20 });
  });
});

describe('the destination budget', () => {
  it("gives the delivery canary's user what its schedule sends on top of the normal budget", () => {
    const budget = { perHour: 10, perDay: 20 };
    const canary = { user: 'canary', intervalSeconds: 300 };
    expect(destinationBudgetFor(budget, canary, 'canary')).toEqual({ perHour: 22, perDay: 308 });
    expect(destinationBudgetFor(budget, canary, 'someone-else')).toBe(budget);
    expect(destinationBudgetFor(budget, undefined, 'canary')).toBe(budget);
    expect(destinationBudgetFor(budget, { user: 'canary', intervalSeconds: 3600 }, 'canary')).toEqual({
      perHour: 11,
      perDay: 44,
    });
  });
});

describe('budget settings', () => {
  it('refuses a day budget below the hour budget, and reads the backoff cap as at least the base', () => {
    expect(() =>
      loadConfig(env({ WARDEN_DESTINATION_MAX_PER_HOUR: '30', WARDEN_DESTINATION_MAX_PER_DAY: '20' })),
    ).toThrow(/WARDEN_DESTINATION_MAX_PER_DAY/);
    const read = loadConfig(env({ WARDEN_GUESS_BACKOFF_BASE_S: '60', WARDEN_GUESS_BACKOFF_MAX_S: '10' })).budgets;
    expect(read.guesses.backoffMaxSeconds).toBe(60);
    expect(() => loadConfig(env({ WARDEN_GUESS_FREE_FAILURES: '0' }))).toThrow(/WARDEN_GUESS_FREE_FAILURES/);
  });
});

describe('SMS countries', () => {
  it('reads the calling code of an E.164 number', () => {
    expect(callingCode('+15555550100')).toBe('1');
    expect(callingCode('+447700900123')).toBe('44');
    expect(callingCode('+4915112345678')).toBe('49');
    expect(callingCode('+99912345')).toBeUndefined();
    expect(callingCode('not a number')).toBeUndefined();
  });

  it('allows North America only when nothing is set, the default phone country when there is one', () => {
    expect(defaults().smsCountries).toEqual(new Set(['1']));
    expect(loadConfig(env({ WARDEN_DEFAULT_PHONE_COUNTRY: 'GB' })).budgets.smsCountries).toEqual(new Set(['44']));
    expect(loadConfig(env({ WARDEN_SMS_COUNTRIES: '' })).budgets.smsCountries).toEqual(new Set(['1']));
    expect(loadConfig(env({ WARDEN_SMS_COUNTRIES: '*' })).budgets.smsCountries).toBe('all');
    expect(loadConfig(env({ WARDEN_SMS_COUNTRIES: ' 1, +44,49 ' })).budgets.smsCountries).toEqual(
      new Set(['1', '44', '49']),
    );
  });

  it('refuses what is not a country calling code, naming the variable', () => {
    for (const value of ['999', '1,2', '0', '44;49', 'uk', '1234'])
      expect(() => loadConfig(env({ WARDEN_SMS_COUNTRIES: value })), value).toThrow(/WARDEN_SMS_COUNTRIES/);
    expect(() => parseSmsCountries('800')).toThrow(/not a country calling code/);
  });

  it('decides by the number as it is now, and refuses a number without a known calling code', () => {
    const allowed = parseSmsCountries('1,44');
    expect(smsCountryAllowed(allowed, '+15555550100')).toBe(true);
    expect(smsCountryAllowed(allowed, '+447700900123')).toBe(true);
    expect(smsCountryAllowed(allowed, '+4915112345678')).toBe(false);
    expect(smsCountryAllowed(allowed, '+99912345')).toBe(false);
    expect(smsCountryAllowed('all', '+99912345')).toBe(true);
  });
});
