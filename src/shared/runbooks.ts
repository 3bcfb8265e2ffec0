/**
 * The runbook workflows' contract, imported by the workflows, the activities and the admin API
 * (`/admin/api/v1/runbooks`). Every runbook speaks it; the framework that implements it is
 * src/workflows/runbooks/framework.ts (read its header first); which runbooks exist is
 * src/shared/runbookRegistry.ts.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { RunbookInput, Severity } from './incidents';
import type { Authority } from './roles';

/**
 * What a runbook workflow receives. An incident passes the RunbookInput part (its child starts
 * with no `params`: every runbook has defaults for all of them), with who asked for the run and
 * on whose authority; `POST /admin/api/v1/runbooks/<name>` adds parameters and pre-approvals.
 * A standalone run has empty incident ids.
 */
export interface RunbookStartInput<P = unknown> extends RunbookInput {
  params?: P;
  /** step names approved up front by whoever started the run */
  preApproved?: string[];
  /** overrides the configured approval severities for this run */
  approvalSeverities?: Severity[];
}

export type StepStatus =
  | 'pending'
  | 'awaiting_approval'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'skipped'
  | 'rejected'
  | 'compensated'
  | 'compensation_failed';

export interface StepApproval {
  required: boolean;
  /** P0 containment on an admin's or automation's authority, a pre-approval, or a decision (approveStep update) */
  how?: 'auto_p0_containment' | 'pre_approved' | 'responder' | 'not_required';
  by?: string;
  at?: string;
  note?: string;
}

export interface RunbookStepState {
  name: string;
  title: string;
  destructive: boolean;
  containment: boolean;
  /** what cancelling undoes, or why it cannot be undone (e.g. a revoked challenge stays revoked) */
  compensation: { compensable: true; how: string } | { compensable: false; why: string } | null;
  status: StepStatus;
  approval: StepApproval;
  /** how many times the step ran (repeatable steps run once per batch) */
  runs: number;
  startedAt?: string;
  endedAt?: string;
  summary?: string;
  error?: string;
  /** small structured outcome (counts, ids); large results live in artifacts */
  result?: unknown;
  compensationSummary?: string;
}

export type RunbookStatus = 'running' | 'completed' | 'failed' | 'cancelled';

export interface RunbookState {
  workflowId: string;
  runbook: string;
  incidentId: string;
  severity: Severity;
  status: RunbookStatus;
  startedAt: string;
  endedAt?: string;
  startedBy?: string;
  /** on whose authority it runs: an operator's role or `automation` (decides P0 containment) */
  startedByRole?: Authority;
  approvalSeverities: Severity[];
  steps: RunbookStepState[];
  cancel?: { by: string; reason: string; compensate: boolean; at: string };
  /** every progress entry this run wrote (the incident timeline gets the same; capped) */
  log: Array<{ at: string; kind: 'step' | 'mitigation' | 'root_cause' | 'note'; message: string }>;
  /** entries that could not reach the incident (it had closed) */
  undeliveredProgress: number;
  /** the runbook's own state, e.g. the abuse watch (rate, quiet minutes) */
  detail?: Record<string, unknown>;
}

export interface RunbookResult {
  status: Exclude<RunbookStatus, 'running'>;
  steps: Array<{ name: string; status: StepStatus; summary?: string }>;
  /** applied steps that cancellation cannot undo, with the reason */
  leftInPlace: Array<{ step: string; why: string }>;
}

export interface ApproveStepInput {
  step: string;
  by: string;
  /** false rejects: the step is skipped */
  approve: boolean;
  note?: string;
}

export interface CancelRunbookInput {
  by: string;
  reason: string;
  /** default true: undo what can safely be undone, in reverse order */
  compensate?: boolean;
}

export const runbookStateQuery = defineQuery<RunbookState>('runbookState');
export const approveStepUpdate = defineUpdate<RunbookState, [ApproveStepInput]>('approveStep');
export const cancelRunbookUpdate = defineUpdate<RunbookState, [CancelRunbookInput]>('cancelRunbook');

/** Update rejections as ApplicationFailure types; the API maps each to 404/409/422. */
export const RUNBOOK_ERRORS = [
  'UnknownStep',
  'NotAwaitingApproval',
  'RunbookFinished',
  'AlreadyCancelling',
  'InvalidInput',
] as const;
export type RunbookErrorType = (typeof RUNBOOK_ERRORS)[number];

/**
 * Default severities at which destructive steps wait for an admin. A P0 run waits too unless an
 * admin or automation asked for it, and then its containment steps never wait.
 */
export const DEFAULT_APPROVAL_SEVERITIES: Severity[] = ['P1', 'P2', 'P3'];

/** The idempotency key of one run of a step: the same on every retry and replay. */
export const stepKey = (workflowId: string, step: string, run = 1) =>
  run > 1 ? `${workflowId}/${step}#${run}` : `${workflowId}/${step}`;

// ---- abuse mitigation -----------------------------------------------------------------------

export interface MarkFalsePositivesInput {
  by: string;
  /** users whose rate-limit state is cleared now (legitimate users unblocked) */
  users: string[];
}
export const markFalsePositivesUpdate = defineUpdate<RunbookState, [MarkFalsePositivesInput]>('markFalsePositives');
