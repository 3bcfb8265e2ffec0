import { ApplicationFailure } from '@temporalio/workflow';
import { checklistPassed, initialChecklist, type CheckOutcome } from '../../shared/checklist';
import {
  EXTERNAL_TASKS,
  externalTasks,
  nextManualRole,
  ROLE_TITLES,
  type EscalationTrigger,
} from '../../shared/escalation';
import { slackEscape, slackName } from '../../shared/format';
import {
  INCIDENT_ID_PATTERN,
  LIMITS,
  type AcknowledgeInput,
  type AddNoteInput,
  type AlertNotificationInput,
  type ChangeSeverityInput,
  type CheckItemInput,
  type CompleteTaskInput,
  type EscalateInput,
  type FlagDataBreachInput,
  type IncidentErrorType,
  type IncidentInput,
  type IncidentState,
  type IncidentTask,
  type MitigationInput,
  type NotifiedRole,
  type PreventiveActionInput,
  type ResolveInput,
  type RootCauseInput,
  type RunbookProgressInput,
  type RunbookStartDecisionInput,
  type TimelineEntry,
} from '../../shared/incidents';
import { isAuthority } from '../../shared/roles';
import { due, newTask, nextWakeAt, reminderText, type ScheduleMarks } from './schedule';

/** Something the workflow must do outside its state: notify, post to the thread. */
export type Effect =
  | { kind: 'escalate'; role: NotifiedRole; reason: string; trigger: EscalationTrigger }
  | { kind: 'thread'; text: string }
  | { kind: 'task'; taskId: string; event: 'created' | 'reminder' | 'overdue'; text: string }
  /** post the gated runbook start's request in the thread, or rewrite it once decided */
  | { kind: 'runbook_gate' }
  /** post a runbook step's approval request in the thread, or rewrite it once decided */
  | { kind: 'step_approval'; runbookWorkflowId: string; step: string }
  /** rewrite a closed task's notice (its Done button goes) */
  | { kind: 'task_closed'; taskId: string };

/** how many step approvals the state keeps (a runbook has a handful of destructive steps) */
const MAX_STEP_APPROVALS = 50;

export function fail(type: IncidentErrorType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

const clean = (list: readonly string[] | undefined) =>
  [...new Set((list ?? []).map((s) => s.trim()).filter(Boolean))].slice(0, LIMITS.affected);

/**
 * The incident's state machine: investigating -> mitigating -> resolved, with its timeline,
 * escalations, tasks and checklist. Validators throw typed ApplicationFailures (the update is
 * rejected and nothing is written to history); commands change the state and queue effects
 * that the workflow carries out with activities.
 */
export class IncidentMachine {
  readonly state: IncidentState;
  readonly marks: ScheduleMarks = { slaBreached: false };
  private effects: Effect[] = [];
  /** the projection row, search attributes or Slack alert need refreshing */
  dirty = true;
  resolving = false;

  constructor(input: IncidentInput, workflowId: string, now: number) {
    const nowIso = new Date(now).toISOString();
    const detected =
      input.detectedAt && new Date(input.detectedAt).getTime() < now
        ? new Date(input.detectedAt).toISOString()
        : nowIso;
    this.state = {
      id: INCIDENT_ID_PATTERN.test(workflowId) ? workflowId : '',
      workflowId,
      type: input.type,
      severity: input.severity,
      title: input.title.slice(0, LIMITS.title),
      impact: (input.impact ?? '').slice(0, LIMITS.text),
      status: 'investigating',
      source: input.source,
      openedBy: input.openedBy,
      ...(isAuthority(input.openedByRole) ? { openedByRole: input.openedByRole } : {}),
      affected: {
        users: clean(input.affected?.users),
        ips: clean(input.affected?.ips),
        providers: clean(input.affected?.providers),
      },
      dataBreach: Boolean(input.dataBreach),
      ddos: Boolean(input.ddos),
      detectedAt: detected,
      escalations: [],
      tasks: [],
      checklist: initialChecklist(),
      checklistRunning: false,
      preventiveActions: [],
      alerts: null,
      timeline: [],
    };
    if (this.state.dataBreach) this.marks.dataBreachAt = nowIso;
    const how =
      input.source === 'alertmanager' ? 'Alertmanager' : input.source === 'slack' ? 'Slack /incident' : input.source;
    this.record({
      at: detected,
      kind: 'detected',
      message: `${input.severity} ${input.type}: ${this.state.title} (via ${how})`,
      by: input.openedBy,
    });
    for (const plan of externalTasks(input.type, this.state.ddos, this.state.dataBreach))
      this.addTask(newTask(plan, nowIso));
    if (input.runbookNeedsApproval) {
      this.state.runbookGate = { status: 'waiting', requestedBy: input.openedBy };
      this.record({
        at: nowIso,
        kind: 'runbook',
        message: `Runbook waits for a responder's approval (opened from Slack by ${input.openedBy}, who is not a responder)`,
      });
      this.effects.push({ kind: 'runbook_gate' });
    }
  }

  get closed(): boolean {
    return this.state.status === 'resolved' && this.effects.length === 0 && !this.dirty;
  }

  hasWork(): boolean {
    return this.effects.length > 0 || this.dirty;
  }

  takeEffects(): Effect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }

  record(entry: TimelineEntry): void {
    // the cap keeps the history bounded; resolution always lands
    if (this.state.timeline.length >= LIMITS.timeline && entry.kind !== 'resolved') return;
    this.state.timeline.push(entry);
    this.dirty = true;
  }

  private thread(text: string): void {
    this.effects.push({ kind: 'thread', text });
  }

  private addTask(task: IncidentTask): void {
    this.state.tasks.push(task);
    this.record({
      at: task.createdAt,
      kind: 'task_created',
      message: `${task.title} (${task.contact}), due ${task.dueAt}`,
    });
    this.effects.push({
      kind: 'task',
      taskId: task.id,
      event: 'created',
      text: `New task: "${task.title}", due ${task.dueAt}`,
    });
  }

  assertOpen(): void {
    if (this.state.status === 'resolved')
      throw fail('IncidentResolved', `${this.state.id || this.state.workflowId} is already resolved`);
  }

  // ---- commands ---------------------------------------------------------------------------

  private now(now: number): string {
    return new Date(now).toISOString();
  }

  acknowledge(i: AcknowledgeInput, now: number): void {
    this.state.acknowledgedAt = this.now(now);
    this.state.acknowledgedBy = i.by;
    this.state.owner = i.by;
    this.record({
      at: this.state.acknowledgedAt,
      kind: 'acknowledged',
      message: i.note ?? `Acknowledged; ${i.by} owns the incident`,
      by: i.by,
    });
    this.thread(
      `:white_check_mark: Acknowledged by ${slackName(i.by)}, who now owns the incident.${i.note ? ` ${slackEscape(i.note)}` : ''}`,
    );
  }

  nextRole() {
    return nextManualRole({
      type: this.state.type,
      severity: this.state.severity,
      dataBreach: this.state.dataBreach,
      detectedAt: 0,
      acknowledged: Boolean(this.state.acknowledgedAt),
      resolved: false,
      engaged: new Set(this.state.escalations.map((e) => e.role)),
    });
  }

  escalate(i: EscalateInput, now: number): void {
    const role = i.role ?? this.nextRole();
    if (role) this.escalateTo(role, `${i.reason} (escalated by ${i.by})`, 'manual', now, i.by);
  }

  /** Records the escalation and queues its Slack + email notification. */
  escalateTo(role: NotifiedRole, reason: string, trigger: EscalationTrigger, now: number, by?: string): void {
    const at = this.now(now);
    this.state.escalations.push({ role, at, reason });
    this.record({
      at,
      kind: role === 'oncall' ? 'notified' : 'escalated',
      message: `${ROLE_TITLES[role]}: ${reason}`,
      role,
      ...(by ? { by } : {}),
    });
    this.effects.push({ kind: 'escalate', role, reason, trigger });
  }

  addNote(i: AddNoteInput, now: number): void {
    this.record({ at: this.now(now), kind: 'note', message: i.text, by: i.by });
    this.thread(`:memo: ${slackName(i.by)}: ${slackEscape(i.text)}`);
  }

  changeSeverity(i: ChangeSeverityInput, now: number): void {
    const from = this.state.severity;
    this.state.severity = i.severity;
    this.record({
      at: this.now(now),
      kind: 'severity_changed',
      message: `Severity ${from} -> ${i.severity}: ${i.reason}`,
      by: i.by,
    });
    this.thread(
      `:arrows_counterclockwise: Severity ${from} -> *${i.severity}* by ${slackName(i.by)}: ${slackEscape(i.reason)}`,
    );
  }

  flagDataBreach(i: FlagDataBreachInput, now: number): void {
    const at = this.now(now);
    this.state.dataBreach = true;
    this.marks.dataBreachAt = at;
    this.record({
      at,
      kind: 'data_breach',
      message: `Flagged as a data breach: ${i.reason}; GDPR 72-hour regulatory deadline started`,
      by: i.by,
    });
    this.thread(
      `:lock: Data breach flagged by ${slackName(i.by)}: ${slackEscape(i.reason)}. Legal and the CISO are notified; the GDPR 72-hour deadline runs.`,
    );
    if (!this.state.tasks.some((t) => t.id === EXTERNAL_TASKS.gdpr.id)) this.addTask(newTask(EXTERNAL_TASKS.gdpr, at));
  }

  reportMitigation(i: MitigationInput, now: number): void {
    const at = this.now(now);
    if (this.state.status === 'investigating') {
      this.state.status = 'mitigating';
      this.state.mitigatingAt = at;
    }
    this.record({ at, kind: 'mitigation', message: i.description, by: i.by });
    this.thread(`:hammer_and_wrench: Mitigation by ${slackName(i.by)}: ${slackEscape(i.description)}`);
  }

  recordRootCause(i: RootCauseInput, now: number): void {
    this.state.rootCause = i.text;
    this.record({ at: this.now(now), kind: 'root_cause', message: i.text, by: i.by });
    this.thread(`:mag: Root cause (${slackName(i.by)}): ${slackEscape(i.text)}`);
  }

  completeTask(i: CompleteTaskInput, now: number): void {
    const task = this.state.tasks.find((t) => t.id === i.taskId)!;
    task.status = i.outcome;
    task.completedAt = this.now(now);
    task.completedBy = i.by;
    const what = i.outcome === 'done' ? 'done' : 'not needed';
    this.record({
      at: task.completedAt,
      kind: 'task_completed',
      message: `${task.title}: ${what}${i.note ? ` (${i.note})` : ''}`,
      by: i.by,
    });
    this.thread(`:ballot_box_with_check: Task "${task.title}" ${what} (${slackName(i.by)})`);
    if (task.slackTs) this.effects.push({ kind: 'task_closed', taskId: task.id });
  }

  /** A responder's decision on the gated runbook start; the workflow starts it once approved. */
  decideRunbookStart(i: RunbookStartDecisionInput, now: number): void {
    const gate = this.state.runbookGate!;
    gate.status = i.approve ? 'approved' : 'rejected';
    gate.decidedBy = i.by;
    if (i.role) gate.decidedByRole = i.role;
    gate.decidedAt = this.now(now);
    gate.note = i.note;
    const note = i.note ? ` (${i.note})` : '';
    this.record({
      at: gate.decidedAt,
      kind: 'runbook',
      message: i.approve
        ? `Runbook start approved by ${i.by}${note}`
        : `Runbook not started: rejected by ${i.by}${note}`,
      by: i.by,
    });
    this.effects.push({ kind: 'runbook_gate' });
  }

  checkItem(i: CheckItemInput, now: number): void {
    const item = this.state.checklist.find((c) => c.id === i.itemId)!;
    item.status = i.passed ? 'passed' : 'failed';
    item.checkedAt = this.now(now);
    item.by = i.by;
    item.detail = i.note;
    this.record({
      at: item.checkedAt,
      kind: 'checklist',
      message: `${item.label}: ${item.status}${i.note ? ` (${i.note})` : ''}`,
      by: i.by,
    });
    this.checkPassed(now);
  }

  applyCheckOutcome(outcome: CheckOutcome, now: number): void {
    for (const result of outcome.items) {
      const item = this.state.checklist.find((c) => c.id === result.id);
      if (!item || !item.automated) continue;
      item.status = result.status;
      item.detail = result.detail.slice(0, 500);
      item.checkedAt = this.now(now);
      item.by = 'checklist';
    }
    this.dirty = true;
  }

  /** Records "service restored" the first time every item has passed. */
  checkPassed(now: number): boolean {
    const passed = checklistPassed(this.state.checklist);
    if (passed && !this.state.timeline.some((e) => e.kind === 'checklist_passed')) {
      this.record({ at: this.now(now), kind: 'checklist_passed', message: 'Recovery validation checklist passed' });
      this.thread(':white_check_mark: Recovery validation checklist passed: service restored, monitoring validated.');
    }
    return passed;
  }

  addPreventiveAction(i: PreventiveActionInput, now: number): void {
    const at = this.now(now);
    this.state.preventiveActions.push({
      description: i.description,
      category: i.category,
      owner: i.owner,
      due: i.due,
      by: i.by,
      at,
    });
    this.record({
      at,
      kind: 'preventive_action',
      message: `Preventive action (${i.category}): ${i.description}`,
      by: i.by,
    });
  }

  resolve(i: ResolveInput, now: number): void {
    const at = this.now(now);
    this.state.status = 'resolved';
    this.state.resolvedAt = at;
    this.state.resolution = i.resolution;
    if (i.rootCause) this.state.rootCause = i.rootCause;
    if (i.impact) this.state.impact = i.impact;
    if (i.wentWell || i.toImprove) this.state.lessons = { wentWell: i.wentWell, toImprove: i.toImprove };
    if (i.force) this.state.forcedResolution = { by: i.by, reason: i.reason ?? '' };
    if (i.rootCause && !this.state.timeline.some((e) => e.kind === 'root_cause')) {
      this.record({ at, kind: 'root_cause', message: i.rootCause, by: i.by });
    }
    const forced = i.force ? ` (forced without a passed checklist: ${i.reason})` : '';
    this.record({ at, kind: 'resolved', message: `${i.resolution}${forced}`, by: i.by });
    this.thread(
      `:large_green_circle: Resolved by ${slackName(i.by)}: ${slackEscape(i.resolution)}${slackEscape(forced)}`,
    );
  }

  alert(i: AlertNotificationInput, now: number): void {
    const firing = [...new Set(i.firing)].sort();
    const before = this.state.alerts;
    // HA pairs and repeat_interval resend the same notification: only changes are news
    if (before && before.status === i.status && before.firing.join(',') === firing.join(',')) return;
    this.state.alerts = { status: i.status, firing };
    if (!before) return; // the notification that opened the incident is its "detected" entry
    const names = i.alertnames.join(', ') || 'alerts';
    const message =
      i.status === 'resolved'
        ? `Alertmanager: ${names} resolved`
        : `Alertmanager: ${names} firing (${firing.length} alert(s))`;
    this.record({ at: this.now(now), kind: 'alert', message, by: 'alertmanager' });
    this.thread(`:bell: ${slackEscape(message)}`);
  }

  runbookProgress(i: RunbookProgressInput, now: number): void {
    if (i.approval && i.step) this.stepApproval(i.step, i.approval);
    if (i.kind === 'mitigation' && this.state.status !== 'resolved')
      return this.reportMitigation({ by: 'runbook', description: i.message }, now);
    if (i.kind === 'root_cause') return this.recordRootCause({ by: 'runbook', text: i.message }, now);
    this.record({
      at: this.now(now),
      kind: 'runbook',
      message: i.step ? `${i.step}: ${i.message}` : i.message,
      by: 'runbook',
    });
  }

  /** Keeps the step's approval request in the state and has it posted (or rewritten) in the thread. */
  private stepApproval(step: string, a: NonNullable<RunbookProgressInput['approval']>): void {
    const list = (this.state.stepApprovals ??= []);
    let notice = list.find((n) => n.runbookWorkflowId === a.runbookWorkflowId && n.step === step);
    if (!notice) {
      if (list.length >= MAX_STEP_APPROVALS) return;
      notice = { runbookWorkflowId: a.runbookWorkflowId, step, title: a.title, status: a.status };
      list.push(notice);
    }
    notice.status = a.status;
    notice.by = a.by;
    notice.note = a.note;
    this.dirty = true;
    this.effects.push({ kind: 'step_approval', runbookWorkflowId: a.runbookWorkflowId, step });
  }

  // ---- the clock ---------------------------------------------------------------------------

  tick(now: number): void {
    for (const action of due(this.state, this.marks, now)) {
      switch (action.kind) {
        case 'sla_breach':
          this.marks.slaBreached = true;
          this.record({ at: this.now(now), kind: 'sla_breached', message: action.message });
          break;
        case 'escalate':
          this.escalateTo(action.role, action.reason, action.trigger, now);
          break;
        case 'task_reminder': {
          action.task.remindersSent = action.index + 1;
          const text = reminderText(action.task, now);
          this.record({ at: this.now(now), kind: 'task_reminder', message: text });
          this.effects.push({ kind: 'task', taskId: action.task.id, event: 'reminder', text });
          break;
        }
        case 'task_overdue': {
          action.task.status = 'overdue';
          const text = `Overdue: "${action.task.title}" was due ${action.task.dueAt}`;
          this.record({ at: this.now(now), kind: 'task_overdue', message: text });
          this.effects.push({ kind: 'task', taskId: action.task.id, event: 'overdue', text });
          break;
        }
      }
    }
  }

  /** an escalation, SLA breach or task reminder is due and not yet done */
  hasDue(now: number): boolean {
    return due(this.state, this.marks, now).length > 0;
  }

  nextWakeAt(now: number): number | undefined {
    return nextWakeAt(this.state, this.marks, now);
  }
}
