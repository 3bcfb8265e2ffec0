/**
 * The recovery checklist's verdicts on a canary run (docs/canary.md#the-recovery-checklist):
 * a deliberately wrong code (or a link token with one character changed) must be refused as
 * invalid before the right one verifies. Pure functions, shared by the inbound webhook that
 * judges and the checklist that reads the verdict; nothing here sees more than an answer's
 * status and error code.
 */
import { randomInt } from 'node:crypto';
import type { CanaryChannel, CanaryChecks, CanaryWrongSecret } from '../shared/canary';

/** How the public verify path refuses a wrong secret on each channel: 401 with this code. */
export const WRONG_SECRET_ERROR: Record<CanaryChannel, string> = { sms: 'invalid_otp', email: 'invalid_token' };

/** What the checklist calls the secret of each channel. */
export const SECRET_NAME: Record<CanaryChannel, { wrong: string; right: string }> = {
  sms: { wrong: 'wrong code', right: 'the right code' },
  email: { wrong: 'tampered link token', right: 'the right link' },
};

/**
 * A six-digit code that is certainly not `code`, drawn at random: a leak of it would tell
 * nothing about the right one (the next number would).
 */
export function wrongCode(code: string, draw: () => number = () => randomInt(1_000_000)): string {
  for (;;) {
    const wrong = String(draw()).padStart(6, '0');
    if (wrong !== code) return wrong;
  }
}

/**
 * The link token with its first character changed: still well-formed, certainly not the token,
 * and refused only if the whole token is compared. It is as secret as the token (one character
 * from it): never logged or stored, and looked for by the plaintext scan like the token.
 */
export function tamperedToken(token: string): string {
  return `${token[0] === 'A' ? 'B' : 'A'}${token.slice(1)}`;
}

/**
 * The wrong secret was refused when the verify path answered 401 with the channel's
 * invalid-secret code and the challenge is still open afterwards (the right one can still
 * verify). A challenge that is verified afterwards, or a 2xx/3xx answer, means it was accepted;
 * anything else (rate limited, locked, expired, unavailable) proves nothing either way.
 */
export function judgeWrongSecret(
  channel: CanaryChannel,
  answer: { status: number; error?: string },
  statusAfter: string | undefined,
): CanaryWrongSecret {
  const said = `${answer.status}${answer.error ? ` ${answer.error}` : ''}`;
  if (statusAfter === 'verified' || (answer.status >= 200 && answer.status < 400))
    return { verdict: 'accepted', answer: said };
  if (answer.status === 401 && answer.error === WRONG_SECRET_ERROR[channel] && statusAfter === 'open')
    return { verdict: 'refused', answer: said };
  return { verdict: 'unexpected', answer: `${said}, challenge ${statusAfter ?? 'missing'}` };
}

/** The run's `detail`: both verdicts in a line, place names only. */
export function describeChecks(channel: CanaryChannel, checks: CanaryChecks): string {
  const { wrongSecret, plaintext } = checks;
  const wrong = `${SECRET_NAME[channel].wrong} ${wrongSecret.verdict} (${wrongSecret.answer})`;
  const secret = channel === 'sms' ? 'the code' : 'the link token';
  const scan = plaintext.found.length
    ? `${secret} in plaintext at ${plaintext.found.length} place(s): ${plaintext.found.slice(0, 5).join(', ')}`
    : plaintext.problem
      ? `plaintext scan incomplete: ${plaintext.problem}`
      : `${secret} in no history, log line, audit row or metric scanned`;
  return `${wrong}; ${scan}`.slice(0, 1000);
}
