/**
 * The incident's clock: which escalations, SLA breaches and task reminders are due, and when
 * the next one is. The workflow sleeps until `nextWakeAt` (one durable timer at a time) and
 * then asks `due` what to do; both are pure functions of the state and the time.
 */
import { ackDeadline, plannedEscalations, type EscalationTrigger, type PlannedTask } from '../../shared/escalation';
import { formatDuration, SEVERITY_TABLE } from '../../shared/severity';
import type { IncidentState, IncidentTask, NotifiedRole } from '../../shared/incidents';

const ms = (iso: string) => new Date(iso).getTime();

export type DueAction =
  | { kind: 'escalate'; role: NotifiedRole; reason: string; trigger: EscalationTrigger }
  | { kind: 'sla_breach'; message: string }
  | { kind: 'task_reminder'; task: IncidentTask; index: number }
  | { kind: 'task_overdue'; task: IncidentTask };

export interface ScheduleMarks {
  /** set once the SLA breach has been recorded */
  slaBreached: boolean;
  dataBreachAt?: string;
}

function policyState(state: IncidentState, marks: ScheduleMarks) {
  return {
    type: state.type,
    severity: state.severity,
    dataBreach: state.dataBreach,
    detectedAt: ms(state.detectedAt),
    dataBreachAt: marks.dataBreachAt ? ms(marks.dataBreachAt) : undefined,
    acknowledged: Boolean(state.acknowledgedAt),
    resolved: state.status === 'resolved',
    engaged: new Set(state.escalations.map((e) => e.role)),
  };
}

function taskTimes(task: IncidentTask): Array<{ at: number; action: DueAction }> {
  if (task.status !== 'open') return [];
  const created = ms(task.createdAt);
  const out: Array<{ at: number; action: DueAction }> = [];
  task.reminders.forEach((offset, index) => {
    if (index >= task.remindersSent) out.push({ at: created + offset, action: { kind: 'task_reminder', task, index } });
  });
  out.push({ at: ms(task.dueAt), action: { kind: 'task_overdue', task } });
  return out;
}

function everything(state: IncidentState, marks: ScheduleMarks): Array<{ at: number; action: DueAction }> {
  if (state.status === 'resolved') return [];
  const out: Array<{ at: number; action: DueAction }> = [];
  const policy = policyState(state, marks);
  const deadline = ackDeadline(policy);
  if (deadline !== undefined && !marks.slaBreached) {
    const sla = SEVERITY_TABLE[state.severity];
    out.push({
      at: deadline,
      action: {
        kind: 'sla_breach',
        message: `Acknowledgement SLA missed: ${state.severity} must be acknowledged ${sla.responseText}`,
      },
    });
  }
  for (const step of plannedEscalations(policy)) {
    out.push({
      at: step.at,
      action: { kind: 'escalate', role: step.role, reason: step.reason, trigger: step.trigger },
    });
  }
  for (const task of state.tasks) out.push(...taskTimes(task));
  return out;
}

/** Everything due at `now`, in time order (an SLA breach before the escalation it causes). */
export function due(state: IncidentState, marks: ScheduleMarks, now: number): DueAction[] {
  return everything(state, marks)
    .filter((item) => item.at <= now)
    .sort((a, b) => a.at - b.at)
    .map((item) => item.action);
}

export function nextWakeAt(state: IncidentState, marks: ScheduleMarks, now: number): number | undefined {
  const future = everything(state, marks)
    .map((item) => item.at)
    .filter((at) => at > now);
  return future.length ? Math.min(...future) : undefined;
}

export function newTask(plan: PlannedTask, nowIso: string): IncidentTask {
  return {
    id: plan.id,
    title: plan.title,
    contact: plan.contact,
    createdAt: nowIso,
    dueAt: new Date(ms(nowIso) + plan.withinMs).toISOString(),
    reminders: plan.reminders,
    remindersSent: 0,
    status: 'open',
  };
}

export function reminderText(task: IncidentTask, now: number): string {
  return `Reminder: "${task.title}" is due in ${formatDuration(ms(task.dueAt) - now)} (${task.dueAt})`;
}
