/**
 * The SMS pumping evaluation's names and result, shared by its workflow (deterministic code:
 * nothing but types and constants here), its activities and its schedule
 * (docs/delivery.md#sms-pumping).
 */

/** Who adds the evaluation's blocks and opens their incidents: Warden itself, never an operator. */
export const SMS_PUMPING_ACTOR = 'sms-pumping';

/** One schedule per task queue, so parallel Wardens on one Temporal never share it. */
export function smsPumpingScheduleId(taskQueue: string): string {
  return `warden-sms-pumping-${taskQueue}`;
}

/** The workflow id of every run the schedule starts (overlap: skip, so one at a time). */
export function smsPumpingWorkflowId(taskQueue: string): string {
  return `sms-pumping-${taskQueue}`;
}

export interface SmsPumpingResult {
  /** `read_only`: the database refused writes (failover degradation, a standby); nothing was done */
  status: 'done' | 'read_only';
  /** prefixes that had SMS in the longest window */
  prefixes: number;
  /** prefixes this run blocked */
  blocked: string[];
  /** the incidents those blocks were reported to (workflow ids: an open one takes every block of its prefix) */
  incidents: string[];
}
