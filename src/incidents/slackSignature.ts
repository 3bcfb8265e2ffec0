/**
 * Slack request signing (https://api.slack.com/authentication/verifying-requests-from-slack):
 * `v0=` + hex HMAC-SHA256(signing secret, `v0:<timestamp>:<raw body>`), with the timestamp no
 * more than five minutes from now. Replays inside the window are caught by the caller, which
 * remembers the signatures it has seen.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Database } from '../db/database';
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

/**
 * The signatures seen, in Postgres (not in memory) so that every API replica refuses a replay,
 * kept at least as long as the timestamp check would still accept their requests: retention
 * deletes them after WARDEN_RETENTION_SLACK_SIGNATURES, which may not be shorter than twice that
 * window (src/config/index.ts). The function answers whether a signature is new, and remembers it.
 */
export function signatureLedger(db: Database): (signature: string) => Promise<boolean> {
  return async (signature) => {
    const { rows } = await db.write(
      'INSERT INTO slack_request_signatures (signature) VALUES ($1) ON CONFLICT DO NOTHING RETURNING signature',
      [signature],
    );
    return rows.length === 1;
  };
}
