import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Slack request signing (https://api.slack.com/authentication/verifying-requests-from-slack):
 * `v0=` + hex HMAC-SHA256(signing secret, `v0:<timestamp>:<raw body>`), with the timestamp no
 * more than five minutes from now. Replays inside the window are caught by the caller, which
 * remembers the signatures it has seen.
 */
export const SLACK_WINDOW_SECONDS = 5 * 60;

export type SlackVerdict =
  { ok: true } | { ok: false; reason: 'missing_headers' | 'stale_timestamp' | 'bad_signature' };

export function slackSignature(secret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

export function verifySlackRequest(input: {
  secret: string;
  timestamp: string | undefined;
  signature: string | undefined;
  rawBody: string;
  nowSeconds: number;
}): SlackVerdict {
  const { timestamp, signature } = input;
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'missing_headers' };
  if (Math.abs(input.nowSeconds - Number(timestamp)) > SLACK_WINDOW_SECONDS)
    return { ok: false, reason: 'stale_timestamp' };
  const expected = Buffer.from(slackSignature(input.secret, timestamp, input.rawBody));
  const presented = Buffer.from(signature);
  // timingSafeEqual needs equal lengths; a wrong length is a wrong signature either way
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
    return { ok: false, reason: 'bad_signature' };
  return { ok: true };
}
