/**
 * The delivery canary's shapes, shared by its workflow (deterministic code: nothing but types
 * and constants here), its activities and the inbound webhooks that answer it.
 */

/** success: came back and verified; rejected: came back, refused; timeout: never came back; error: no sign-in */
export const CANARY_OUTCOMES = ['success', 'rejected', 'timeout', 'error'] as const;
export type CanaryOutcome = (typeof CANARY_OUTCOMES)[number];

/** The canary's only signal: what the inbound webhook saw. Never the code or the link. */
export interface CanaryReport {
  outcome: 'success' | 'rejected';
  /** sign-in started until the code verified, measured by the webhook */
  latencyMs: number;
}

export const CANARY_SIGNAL = 'canaryReport';

/** What starting a run gives the workflow: how long to wait, or why there is nothing to wait for. */
export type CanaryStart =
  | { status: 'off' }
  | { status: 'waiting'; runId: string; timeoutMs: number }
  | { status: 'error'; runId: string; detail: string };

/** One schedule per task queue, so parallel Wardens on one Temporal never share a canary. */
export function canaryScheduleId(taskQueue: string): string {
  return `warden-canary-${taskQueue}`;
}
