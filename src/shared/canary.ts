/**
 * The delivery canary's shapes, shared by its workflow (deterministic code: nothing but types
 * and constants here), its activities and the inbound webhooks that answer it.
 */

/** The channels a canary run can sign in through: an SMS code, an email magic link. */
export const CANARY_CHANNELS = ['sms', 'email'] as const;
export type CanaryChannel = (typeof CANARY_CHANNELS)[number];

/** success: came back and verified; rejected: came back, refused; timeout: never came back; error: no sign-in */
export const CANARY_OUTCOMES = ['success', 'rejected', 'timeout', 'error'] as const;
export type CanaryOutcome = (typeof CANARY_OUTCOMES)[number];

/**
 * What the inbound webhook's deliberately wrong code (a link token with one character changed)
 * met before the right one was verified: `refused` when it was answered 401 `invalid_otp` /
 * `invalid_token` and left the challenge open, `accepted` when it verified, `unexpected` for
 * any other answer. `answer` is what came back (`401 invalid_otp`), never the code.
 */
export interface CanaryWrongSecret {
  verdict: 'refused' | 'accepted' | 'unexpected';
  answer: string;
}

/**
 * Where the webhook looked for the code or link token it received, while it held it, and the
 * places (event, row, column, field, log line, metric) where that exact string was found.
 * Names of places only, never the string. `problem` when a source could not be read.
 */
export interface CanaryPlaintextScan {
  found: string[];
  scanned: string[];
  problem?: string;
}

/** What a checklist run asks a canary run to prove besides the sign-in (`CanaryInput.checks`). */
export interface CanaryChecks {
  wrongSecret: CanaryWrongSecret;
  plaintext: CanaryPlaintextScan;
}

/** The canary's only signal: what the inbound webhook saw on one channel. Never the code or the link. */
export interface CanaryReport {
  channel: CanaryChannel;
  outcome: 'success' | 'rejected';
  /** sign-in started until the code (or link) verified, measured by the webhook */
  latencyMs: number;
  /** only for a run started with `checks` (the recovery checklist's) */
  checks?: CanaryChecks;
}

export const CANARY_SIGNAL = 'canaryReport';

/** What a run is asked for: the configured channels (or the canary user's) unless named. */
export interface CanaryInput {
  channels?: CanaryChannel[];
  /**
   * The recovery checklist's runs: the webhook first submits a wrong code (a tampered link
   * token) and checks it is refused, then verifies the right one, then looks for the secret it
   * received in the histories, logs, audit rows and metrics (`CanaryChecks`).
   */
  checks?: boolean;
}

/** What starting a channel's run gives the workflow: how long to wait, or why there is nothing to wait for. */
export type CanaryStart =
  | { channel: CanaryChannel; status: 'waiting'; runId: string; timeoutMs: number }
  | { channel: CanaryChannel; status: 'error'; runId: string; detail: string };

/** A run's verdict per channel; no runs when the canary is off. */
export interface CanaryResult {
  runs: Array<{ channel: CanaryChannel; outcome: CanaryOutcome; latencyMs?: number; checks?: CanaryChecks }>;
}

/** One schedule per task queue, so parallel Wardens on one Temporal never share a canary. */
export function canaryScheduleId(taskQueue: string): string {
  return `warden-canary-${taskQueue}`;
}
