/**
 * What the public may learn about a challenge, from its row. The rule, chosen so that a decoy
 * (unknown user, or no phone/email: delivery_outcome `no_recipient`) reads like a real one:
 *
 * - ended challenges say how they ended (verified, expired, revoked, locked); past expires_at
 *   is `expired` even before the workflow's timer has written it;
 * - `pending` until the first send has an outcome;
 * - `failed` only for a failure that is about the channel, not the person: every provider
 *   failed transiently (an outage). A decoy says `failed` exactly when no provider of its
 *   channel would have taken a message (every circuit open), else `delivered`;
 * - `delivered` otherwise, including a permanent failure: "this number/address was refused"
 *   would tell the caller the account exists. Responders see the truth in the row, in
 *   delivery_failures and on the admin API.
 *
 * Residual signal, documented: while an outage is still below the breakers' thresholds, real
 * challenges fail and decoys do not; and a decoy reaches `delivered` without a provider's
 * round trip (milliseconds sooner).
 */
import { isChallengeEnd } from '../shared/auth';
import type { PublicChallengeStatus } from '../shared/delivery';

export interface ChallengeStateRow {
  status: string;
  expires_at: Date;
  delivery_outcome: string | null;
  delivery_status: string | null;
  delivery_error_class: string | null;
}

export function publicStatus(row: ChallengeStateRow, now: Date): PublicChallengeStatus {
  if (isChallengeEnd(row.status)) return row.status;
  if (row.expires_at <= now) return 'expired';
  if (row.delivery_outcome === null) return 'pending';
  if (row.delivery_status === 'failed' && row.delivery_error_class !== 'permanent') return 'failed';
  return 'delivered';
}
