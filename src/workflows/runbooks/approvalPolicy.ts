/**
 * Which steps of a runbook run wait for an admin, and where a run stands for the Temporal UI:
 * pure decisions, unit-tested (test/unit/runbook-approval-policy.test.ts), that the step runner
 * (steps.ts) applies.
 *
 * A destructive step waits at the approval severities (WARDEN_RUNBOOK_APPROVAL_SEVERITIES, or
 * the run's own). P0 is decided by the run's authority: on an admin's or an alert's, containment
 * goes ahead at once (and P0's other destructive steps wait only where P0 is listed); on anyone
 * else's (a responder's, or unknown) every destructive step waits for an admin, whatever the
 * severities say, since only an admin decides destructive steps.
 */
import type { Severity } from '../../shared/incidents';
import { containsWithoutApproval, type Authority } from '../../shared/roles';
import type { RunbookState, StepApproval } from '../../shared/runbooks';
import type { RunbookRunStatus } from '../../shared/searchAttributes';

export interface ApprovalContext {
  severity: Severity;
  /** the severities at which destructive steps wait */
  severities: readonly Severity[];
  authority?: Authority;
  startedBy?: string;
  /** steps an admin approved when starting the run */
  preApproved: readonly string[];
}

export function stepApproval(
  step: { name: string; destructive: boolean; containment: boolean },
  run: ApprovalContext,
): StepApproval {
  if (!step.destructive) return { required: false, how: 'not_required' };
  const p0 = run.severity === 'P0';
  const trusted = containsWithoutApproval(run.authority);
  if (p0 && step.containment && trusted)
    return { required: false, how: 'auto_p0_containment', ...(run.startedBy ? { by: run.startedBy } : {}) };
  const waits = run.severities.includes(run.severity) || (p0 && !trusted);
  if (!waits) return { required: false, how: 'not_required' };
  if (run.preApproved.includes(step.name))
    return { required: true, how: 'pre_approved', by: run.startedBy ?? 'starter' };
  return { required: true };
}

/** The RunbookStatus keyword: the run's own status once it ends, else what it is doing now. */
export function runStatus(state: Pick<RunbookState, 'status' | 'steps'>, compensating: boolean): RunbookRunStatus {
  if (state.status !== 'running') return state.status;
  if (compensating) return 'compensating';
  return state.steps.some((s) => s.status === 'awaiting_approval') ? 'awaiting_approval' : 'running';
}
