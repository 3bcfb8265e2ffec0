/**
 * Geo permissions for SMS: the countries a code may be sent to, by E.164 country calling code
 * (`1` North America, `44` the UK, `49` Germany...). Checked by the send activity on every
 * provider call (src/delivery/sender.ts), against the number the user has at that moment: a
 * phone changed after the challenge began, a resend, a failover to the backup provider or the
 * backup's re-send after a missing receipt all pass through it. Toll fraud ("SMS pumping")
 * sends codes to expensive foreign ranges; a deployment allows the countries its users live in.
 */
import { getCountries, getCountryCallingCode, isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js';

/** The stable error code of a send refused for its country (delivery_failures.error_code, the failure audit). */
export const COUNTRY_NOT_ALLOWED = 'destination_country_not_allowed';

/** `all`, or the allowed calling codes. */
export type SmsCountries = 'all' | ReadonlySet<string>;

/** The country calling code of an E.164 number; undefined when it is not one. */
export function callingCode(e164: string): string | undefined {
  return parsePhoneNumberFromString(e164)?.countryCallingCode;
}

/** Whether a code may be sent to this number. A number without a known calling code may not. */
export function smsCountryAllowed(allowed: SmsCountries, e164: string): boolean {
  if (allowed === 'all') return true;
  const code = callingCode(e164);
  return code !== undefined && allowed.has(code);
}

/**
 * WARDEN_SMS_COUNTRIES: `*` for every country, or calling codes separated by commas. Unset:
 * the calling code of WARDEN_DEFAULT_PHONE_COUNTRY, or `1` without one; the safe default is
 * one home region, never the world. Throws a sentence naming the bad code, never guesses.
 */
export function parseSmsCountries(value: string | undefined, defaultPhoneCountry?: string): SmsCountries {
  const raw = value?.trim();
  if (raw === '*') return 'all';
  if (!raw) {
    const home =
      defaultPhoneCountry && isSupportedCountry(defaultPhoneCountry) ? getCountryCallingCode(defaultPhoneCountry) : '1';
    return new Set([home]);
  }
  // the calling codes of countries and territories (not the non-geographic ones: satellite, freephone)
  const known = new Set<string>(getCountries().map((c) => getCountryCallingCode(c)));
  const codes = raw.split(',').map((c) => c.trim().replace(/^\+/, ''));
  for (const code of codes) {
    if (!known.has(code)) throw new Error(`WARDEN_SMS_COUNTRIES: "${code.slice(0, 8)}" is not a country calling code`);
  }
  return new Set(codes);
}
