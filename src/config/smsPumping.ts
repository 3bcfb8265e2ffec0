/**
 * The SMS pumping defence's settings (docs/delivery.md#sms-pumping, docs/operations.md), read
 * from the validated environment.
 */
import type { PumpingRules, PumpingWindow } from '../delivery/smsPumping';
import { durationMs } from '../shared/format';
import type { Env } from './schema';

export interface SmsPumpingConfig {
  /** how often the evaluation runs; null: never (nothing is measured or blocked) */
  intervalSeconds: number | null;
  rules: PumpingRules;
}

/** The longest window the evaluation reads: a day of SMS is already a large scan (docs/delivery.md). */
const MAX_WINDOW_SECONDS = 7 * 86_400;

/** `1h:50,1d:300`: windows, each with the messages it must hold; the schema admits only that shape. */
export function parseWindows(value: string, fail: (message: string) => Error): PumpingWindow[] {
  const windows = value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const [duration, messages] = part.split(':') as [string, string];
      return { seconds: durationMs(duration.trim())! / 1000, minMessages: Number(messages.trim()) };
    });
  if (windows.length === 0) throw fail('WARDEN_SMS_PUMPING_WINDOWS names no window');
  const seconds = windows.map((w) => w.seconds);
  if (new Set(seconds).size !== seconds.length) throw fail('WARDEN_SMS_PUMPING_WINDOWS names a window twice');
  if (seconds.some((s) => s < 60 || s > MAX_WINDOW_SECONDS))
    throw fail('WARDEN_SMS_PUMPING_WINDOWS: every window must be between 1m and 7d');
  return windows.sort((a, b) => a.seconds - b.seconds);
}

/** `fail` turns a sentence about a bad value into the loader's error. */
export function smsPumpingConfig(env: Env, fail: (message: string) => Error): SmsPumpingConfig {
  const interval = env.WARDEN_SMS_PUMPING_INTERVAL;
  const intervalSeconds = interval === 'off' ? null : durationMs(interval)! / 1000;
  if (intervalSeconds !== null && intervalSeconds < 10)
    throw fail('WARDEN_SMS_PUMPING_INTERVAL must be at least 10s (or off)');
  const blockSeconds = durationMs(env.WARDEN_SMS_PUMPING_BLOCK)! / 1000;
  if (blockSeconds < 60) throw fail('WARDEN_SMS_PUMPING_BLOCK must be at least 1m');
  return {
    intervalSeconds,
    rules: {
      prefixDigits: env.WARDEN_SMS_PUMPING_PREFIX_DIGITS,
      windows: parseWindows(env.WARDEN_SMS_PUMPING_WINDOWS, fail),
      minConversion: env.WARDEN_SMS_PUMPING_MIN_CONVERSION,
      graceSeconds: durationMs(env.WARDEN_SMS_PUMPING_GRACE)! / 1000,
      blockSeconds,
    },
  };
}
