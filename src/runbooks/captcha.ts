import { Type, type Static } from '@sinclair/typebox';

/**
 * CAPTCHA mode, a runtime setting the abuse runbook switches on while an attack lasts: a
 * client (its IP) or user with at least `threshold` failed attempts in the last
 * `window_seconds` must send a valid hCaptcha `captcha_token` with its next auth request.
 * Failed attempts are requests the rate limiter refused (per IP or per user) and wrong,
 * locked or unknown-challenge verifications of the user.
 */
export const CAPTCHA_SETTINGS_KEY = 'auth.captcha';

export const CaptchaSettings = Type.Object(
  {
    enabled: Type.Boolean(),
    threshold: Type.Integer({ minimum: 1, maximum: 1000 }),
    window_seconds: Type.Integer({ minimum: 10, maximum: 86_400 }),
  },
  { additionalProperties: false },
);
export type CaptchaSettings = Static<typeof CaptchaSettings>;

/** Off, with the normal threshold (3 failed attempts) ready for when it is switched on. */
export const DEFAULT_CAPTCHA_SETTINGS: CaptchaSettings = { enabled: false, threshold: 3, window_seconds: 900 };
