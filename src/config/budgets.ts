/**
 * The budgets' settings (docs/security.md, docs/operations.md), read from the validated
 * environment: the destination budget, the account guess budget and the SMS countries.
 */
import type { DestinationBudget, GuessBudget } from '../auth/budgets';
import { parseSmsCountries, type SmsCountries } from '../delivery/countries';
import type { Env } from './schema';

export interface BudgetConfig {
  /** messages per phone number or email address, whoever asks */
  destination: DestinationBudget;
  /** wrong SMS codes per account */
  guesses: GuessBudget;
  /** where SMS may go, by country calling code */
  smsCountries: SmsCountries;
}

/** `fail` turns a sentence about a bad value into the loader's error. */
export function budgetConfig(env: Env, fail: (message: string) => Error): BudgetConfig {
  let smsCountries: SmsCountries;
  try {
    smsCountries = parseSmsCountries(env.WARDEN_SMS_COUNTRIES, env.WARDEN_DEFAULT_PHONE_COUNTRY);
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (env.WARDEN_DESTINATION_MAX_PER_DAY < env.WARDEN_DESTINATION_MAX_PER_HOUR)
    throw fail('WARDEN_DESTINATION_MAX_PER_DAY must be at least WARDEN_DESTINATION_MAX_PER_HOUR');
  return {
    destination: { perHour: env.WARDEN_DESTINATION_MAX_PER_HOUR, perDay: env.WARDEN_DESTINATION_MAX_PER_DAY },
    guesses: {
      perDay: env.WARDEN_GUESS_MAX_PER_DAY,
      freeFailures: env.WARDEN_GUESS_FREE_FAILURES,
      backoffBaseSeconds: env.WARDEN_GUESS_BACKOFF_BASE_S,
      backoffMaxSeconds: Math.max(env.WARDEN_GUESS_BACKOFF_MAX_S, env.WARDEN_GUESS_BACKOFF_BASE_S),
    },
    smsCountries,
  };
}
