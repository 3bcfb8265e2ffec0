/**
 * The incident workflow's contract, imported by the workflow, the API (REST, Slack,
 * Alertmanager) and the runbook workflows. Every message is defined here once.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Authority, Role } from './roles';

export const INCIDENT_TYPES = ['compromised_token', 'provider_outage', 'abuse', 'db_connectivity', 'other'] as const;
export type IncidentType = (typeof INCIDENT_TYPES)[number];
export const SEVERITIES = ['P0', 'P1', 'P2', 'P3'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const INCIDENT_STATUSES = ['investigating', 'mitigating', 'resolved'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/** Roles of the internal escalation chain (docs/incident-response.md), then the external contacts. */
export const INTERNAL_ROLES = ['oncall', 'security_lead', 'dba', 'engineering_manager', 'vp_engineering'] as const;
export type InternalRole = (typeof INTERNAL_ROLES)[number];
export const NOTIFIED_ROLES = [...INTERNAL_ROLES, 'legal', 'ciso'] as const;
export type NotifiedRole = (typeof NOTIFIED_ROLES)[number];

export const INCIDENT_WORKFLOW_TYPE = 'incidentWorkflow';
/** `INC-YYYY-MM-DD-NN`; NN grows past 99 on a very bad day. */
export const INCIDENT_ID_PATTERN = /^INC-\d{4}-\d{2}-\d{2}-\d{2,4}$/;
/** Workflow ids of incidents opened by Alertmanager: one per notification group. */
export const ALERT_WORKFLOW_PREFIX = 'alert-';

export function incidentId(day: string, seq: number): string {
  return `INC-${day}-${String(seq).padStart(2, '0')}`;
}

/** Limits that keep an incident's history bounded (see the workflow's note on continue-as-new). */
export const LIMITS = {
  title: 200,
  text: 4000,
  affected: 500,
  timeline: 2000,
  preventiveActions: 50,
} as const;

export type IncidentSource = 'api' | 'slack' | 'alertmanager' | 'runbook';

export interface Affected {
  users: string[];
  ips: string[];
  providers: string[];
}

export interface IncidentInput {
  type: IncidentType;
  severity: Severity;
  title: string;
  impact?: string;
  source: IncidentSource;
  /** who opened it: an admin name, a Slack user, `alertmanager` */
  openedBy: string;
  /** the opener's role, or `automation` for an alert: whether P0 containment waits for an admin */
  openedByRole?: Authority;
  affected?: Partial<Affected>;
  dataBreach?: boolean;
  /** an abuse incident that is a DDoS attack: the ISP/CDN escalation applies */
  ddos?: boolean;
  /** ISO time the problem started (an alert's startsAt), if earlier than the start */
  detectedAt?: string;
  /** the Alertmanager group this incident was opened for (its hash; never the raw labels) */
  alertGroup?: string;
  /**
   * opened from Slack, at or above SLACK_APPROVAL_SEVERITY, by someone who is not a responder:
   * the runbook starts only once a responder approves (decideRunbookStartUpdate)
   */
  runbookNeedsApproval?: boolean;
}

export type TimelineKind =
  | 'detected'
  | 'notified'
  | 'escalated'
  | 'sla_breached'
  | 'acknowledged'
  | 'note'
  | 'severity_changed'
  | 'data_breach'
  | 'task_created'
  | 'task_reminder'
  | 'task_overdue'
  | 'task_completed'
  | 'alert'
  | 'mitigation'
  | 'root_cause'
  | 'runbook'
  | 'checklist'
  | 'checklist_passed'
  | 'preventive_action'
  | 'delivery_failed'
  | 'resolved';

export interface TimelineEntry {
  at: string;
  kind: TimelineKind;
  message: string;
  by?: string;
  role?: NotifiedRole;
}

export type ChecklistGroup = 'functional' | 'security' | 'performance' | 'monitoring';
export type ChecklistStatus = 'pending' | 'passed' | 'failed' | 'not_applicable';

export interface ChecklistItemState {
  id: string;
  group: ChecklistGroup;
  label: string;
  automated: boolean;
  status: ChecklistStatus;
  detail?: string;
  checkedAt?: string;
  by?: string;
}

/** An action with a deadline: the external escalations and the GDPR notification. */
export interface IncidentTask {
  id: string;
  title: string;
  contact: string;
  createdAt: string;
  dueAt: string;
  /** ms offsets from createdAt at which a reminder goes out */
  reminders: number[];
  remindersSent: number;
  status: 'open' | 'done' | 'not_needed' | 'overdue';
  completedAt?: string;
  completedBy?: string;
  /** the task's notice in the Slack thread (with its Done button), rewritten once it is closed */
  slackTs?: string;
}

/** A decision someone has to take in the incident's Slack thread, with its buttons. */
export type DecisionStatus = 'waiting' | 'approved' | 'rejected';

/** The runbook start of a gated incident (IncidentInput.runbookNeedsApproval). */
export interface RunbookGate {
  status: DecisionStatus;
  requestedBy: string;
  decidedBy?: string;
  /** the decider's role: the runbook then runs on their authority */
  decidedByRole?: Role;
  decidedAt?: string;
  note?: string;
  /** the request in the Slack thread */
  slackTs?: string;
}

/** A runbook step waiting for (or decided by) a responder, as the incident's thread shows it. */
export interface StepApprovalNotice {
  runbookWorkflowId: string;
  step: string;
  title: string;
  status: DecisionStatus;
  by?: string;
  note?: string;
  slackTs?: string;
}

export interface PreventiveAction {
  description: string;
  category: 'code' | 'monitoring' | 'process' | 'infrastructure';
  owner?: string;
  due?: string;
  by: string;
  at: string;
}

export interface Escalation {
  role: NotifiedRole;
  at: string;
  reason: string;
}

export interface IncidentState {
  /** INC-YYYY-MM-DD-NN; empty until claimed for an alert-opened incident */
  id: string;
  workflowId: string;
  type: IncidentType;
  severity: Severity;
  title: string;
  impact: string;
  status: IncidentStatus;
  source: IncidentSource;
  openedBy: string;
  openedByRole?: Authority;
  owner?: string;
  affected: Affected;
  dataBreach: boolean;
  ddos: boolean;
  detectedAt: string;
  acknowledgedAt?: string;
  acknowledgedBy?: string;
  mitigatingAt?: string;
  resolvedAt?: string;
  rootCause?: string;
  resolution?: string;
  lessons?: { wentWell?: string; toImprove?: string };
  forcedResolution?: { by: string; reason: string };
  escalations: Escalation[];
  tasks: IncidentTask[];
  checklist: ChecklistItemState[];
  checklistRunning: boolean;
  preventiveActions: PreventiveAction[];
  /** firing alert fingerprints of the Alertmanager group, and the last status seen */
  alerts: { status: 'firing' | 'resolved'; firing: string[] } | null;
  runbook?: { workflowType: string; workflowId: string; status: 'running' | 'completed' | 'failed' };
  /** set when the runbook start waits for a responder's approval */
  runbookGate?: RunbookGate;
  /** runbook steps that waited for an approval, newest last */
  stepApprovals?: StepApprovalNotice[];
  slack?: { channel: string; ts: string };
  timeline: TimelineEntry[];
}

export interface IncidentResult {
  id: string;
  status: IncidentStatus;
  resolvedAt?: string;
}

// ---- message inputs: one object each, `by` names the responder -------------------------------

export interface AcknowledgeInput {
  by: string;
  note?: string;
}
export interface EscalateInput {
  by: string;
  reason: string;
  /** a specific role; otherwise the next role of the path not yet engaged */
  role?: InternalRole;
}
export interface AddNoteInput {
  by: string;
  text: string;
}
export interface ChangeSeverityInput {
  by: string;
  severity: Severity;
  reason: string;
}
export interface FlagDataBreachInput {
  by: string;
  reason: string;
}
export interface MitigationInput {
  by: string;
  description: string;
}
export interface RootCauseInput {
  by: string;
  text: string;
}
export interface CompleteTaskInput {
  by: string;
  taskId: string;
  outcome: 'done' | 'not_needed';
  note?: string;
}
export interface CheckItemInput {
  by: string;
  itemId: string;
  /** false records a failed manual check */
  passed: boolean;
  note?: string;
}
export interface RunChecklistInput {
  by: string;
}
export interface PreventiveActionInput {
  by: string;
  description: string;
  category: PreventiveAction['category'];
  owner?: string;
  due?: string;
}
export interface ResolveInput {
  by: string;
  resolution: string;
  rootCause?: string;
  impact?: string;
  wentWell?: string;
  toImprove?: string;
  /** skip the checklist gate; needs a reason, which lands on the timeline and in the report */
  force?: boolean;
  reason?: string;
}
export interface AlertNotificationInput {
  status: 'firing' | 'resolved';
  /** fingerprints of the alerts currently firing in the group */
  firing: string[];
  resolved: string[];
  alertnames: string[];
}
/** What a runbook child reports back: a step it took, a mitigation it applied, a finding. */
export interface RunbookProgressInput {
  kind: 'step' | 'mitigation' | 'root_cause' | 'note';
  message: string;
  step?: string;
  /** the step waits for an approval, or has just been approved or rejected (posted in the thread) */
  approval?: { runbookWorkflowId: string; title: string; status: DecisionStatus; by?: string; note?: string };
}
/** A responder's decision on a gated runbook start. */
export interface RunbookStartDecisionInput {
  by: string;
  /** the decider's role, as their credential says (an approver's runs on it) */
  role?: Role;
  approve: boolean;
  note?: string;
}

/** What the incident workflow passes to the runbook child for its type. */
export interface RunbookInput {
  incidentId: string;
  incidentWorkflowId: string;
  type: IncidentType;
  severity: Severity;
  affected: Affected;
  dataBreach: boolean;
  ddos: boolean;
  /** who asked for the run: an operator's name, a Slack user, `alertmanager` */
  startedBy?: string;
  /** on whose authority it runs (never a credential): absent counts as no more than a responder */
  startedByRole?: Authority;
}

export const incidentStateQuery = defineQuery<IncidentState>('incidentState');
export const timelineQuery = defineQuery<TimelineEntry[]>('timeline');

export const acknowledgeUpdate = defineUpdate<IncidentState, [AcknowledgeInput]>('acknowledge');
export const escalateUpdate = defineUpdate<IncidentState, [EscalateInput]>('escalate');
export const addNoteUpdate = defineUpdate<IncidentState, [AddNoteInput]>('addNote');
export const changeSeverityUpdate = defineUpdate<IncidentState, [ChangeSeverityInput]>('changeSeverity');
export const flagDataBreachUpdate = defineUpdate<IncidentState, [FlagDataBreachInput]>('flagDataBreach');
export const reportMitigationUpdate = defineUpdate<IncidentState, [MitigationInput]>('reportMitigation');
export const recordRootCauseUpdate = defineUpdate<IncidentState, [RootCauseInput]>('recordRootCause');
export const completeTaskUpdate = defineUpdate<IncidentState, [CompleteTaskInput]>('completeTask');
export const checkItemUpdate = defineUpdate<IncidentState, [CheckItemInput]>('checkItem');
export const runChecklistUpdate = defineUpdate<IncidentState, [RunChecklistInput]>('runChecklist');
export const addPreventiveActionUpdate = defineUpdate<IncidentState, [PreventiveActionInput]>('addPreventiveAction');
export const resolveUpdate = defineUpdate<IncidentState, [ResolveInput]>('resolve');
export const decideRunbookStartUpdate = defineUpdate<IncidentState, [RunbookStartDecisionInput]>('decideRunbookStart');

/** Alertmanager's follow-up notifications for the group (repeats, resolved). */
export const alertNotificationSignal = defineSignal<[AlertNotificationInput]>('alertNotification');
/** The seam for runbook children: append to the timeline, report mitigations. */
export const runbookProgressSignal = defineSignal<[RunbookProgressInput]>('runbookProgress');

/**
 * Validation and gate failures of the messages above, as ApplicationFailure types. The API
 * maps each to a 409/422 with the snake_case code; workflows never retry them.
 */
export const INCIDENT_ERRORS = [
  'IncidentResolved',
  'AlreadyAcknowledged',
  'NothingToEscalate',
  'SameSeverity',
  'AlreadyFlagged',
  'UnknownTask',
  'TaskClosed',
  'UnknownChecklistItem',
  'AutomatedItem',
  'ChecklistRunning',
  'ChecklistIncomplete',
  'ChecklistFailed',
  'PreventiveActionRequired',
  'OpenTasks',
  'ReasonRequired',
  'LimitReached',
  'InvalidInput',
  'NotAwaitingApproval',
] as const;
export type IncidentErrorType = (typeof INCIDENT_ERRORS)[number];
