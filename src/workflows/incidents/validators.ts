import { itemDef } from '../../shared/checklist';
import { ROLE_TITLES } from '../../shared/escalation';
import {
  LIMITS,
  type AcknowledgeInput,
  type AddNoteInput,
  type ChangeSeverityInput,
  type CheckItemInput,
  type CompleteTaskInput,
  type EscalateInput,
  type FlagDataBreachInput,
  type MitigationInput,
  type PreventiveActionInput,
  type ResolveInput,
  type RootCauseInput,
  type RunbookStartDecisionInput,
} from '../../shared/incidents';
import { isRole } from '../../shared/roles';
import { fail, type IncidentMachine } from './machine';

/**
 * The update validators: what makes no sense is refused before it reaches the history
 * (a rejected update leaves no trace), with a typed failure the API turns into a 4xx.
 */
export class IncidentValidators {
  constructor(private readonly m: IncidentMachine) {}

  private assertText(value: string | undefined, what: string, max: number = LIMITS.text): void {
    if (typeof value !== 'string' || !value.trim()) throw fail('InvalidInput', `${what} is required`);
    if (value.length > max) throw fail('InvalidInput', `${what} is longer than ${max} characters`);
  }

  private assertRoom(): void {
    if (this.m.state.timeline.length >= LIMITS.timeline)
      throw fail('LimitReached', `the timeline holds its maximum of ${LIMITS.timeline} entries`);
  }

  validateAcknowledge(i: AcknowledgeInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    if (this.m.state.acknowledgedAt) {
      throw fail(
        'AlreadyAcknowledged',
        `already acknowledged by ${this.m.state.acknowledgedBy} at ${this.m.state.acknowledgedAt}`,
      );
    }
  }

  validateEscalate(i: EscalateInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    this.assertText(i.reason, 'reason');
    const engaged = new Set(this.m.state.escalations.map((e) => e.role));
    if (i.role && engaged.has(i.role))
      throw fail('NothingToEscalate', `${ROLE_TITLES[i.role]} has already been engaged`);
    if (!i.role && !this.m.nextRole())
      throw fail('NothingToEscalate', 'every role of the escalation path has already been engaged');
  }

  validateNote(i: AddNoteInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    this.assertText(i.text, 'text');
    this.assertRoom();
  }

  validateSeverity(i: ChangeSeverityInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    this.assertText(i.reason, 'reason');
    if (i.severity === this.m.state.severity) throw fail('SameSeverity', `the incident is already ${i.severity}`);
  }

  validateDataBreach(i: FlagDataBreachInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    this.assertText(i.reason, 'reason');
    if (this.m.state.dataBreach) throw fail('AlreadyFlagged', 'the incident is already flagged as a data breach');
  }

  validateMitigation(i: MitigationInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    this.assertText(i.description, 'description');
    this.assertRoom();
  }

  validateRootCause(i: RootCauseInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    this.assertText(i.text, 'text');
    this.assertRoom();
  }

  validateTask(i: CompleteTaskInput): void {
    this.assertText(i.by, 'by', 200);
    const task = this.m.state.tasks.find((t) => t.id === i.taskId);
    if (!task)
      throw fail(
        'UnknownTask',
        `no task ${i.taskId}; tasks: ${this.m.state.tasks.map((t) => t.id).join(', ') || 'none'}`,
      );
    if (task.status === 'done' || task.status === 'not_needed')
      throw fail('TaskClosed', `task ${i.taskId} is already ${task.status}`);
  }

  validateCheckItem(i: CheckItemInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    const def = itemDef(i.itemId);
    if (!def) throw fail('UnknownChecklistItem', `no checklist item ${i.itemId}`);
    if (def.check) throw fail('AutomatedItem', `${i.itemId} is checked automatically: run the checklist instead`);
  }

  validateRunChecklist(): void {
    this.m.assertOpen();
    if (this.m.state.checklistRunning) throw fail('ChecklistRunning', 'the checklist is already running');
  }

  validatePreventiveAction(i: PreventiveActionInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    this.assertText(i.description, 'description');
    if (!['code', 'monitoring', 'process', 'infrastructure'].includes(i.category))
      throw fail('InvalidInput', 'category must be code, monitoring, process or infrastructure');
    if (this.m.state.preventiveActions.length >= LIMITS.preventiveActions)
      throw fail('LimitReached', 'too many preventive actions');
  }

  validateRunbookStart(i: RunbookStartDecisionInput): void {
    this.m.assertOpen();
    if (!i || typeof i !== 'object') throw fail('InvalidInput', '`by` and `approve` are required');
    this.assertText(i.by, 'by', 200);
    if (typeof i.approve !== 'boolean') throw fail('InvalidInput', '`approve` must be true or false');
    if (i.role !== undefined && !isRole(i.role))
      throw fail('InvalidInput', '`role` must be viewer, responder or admin');
    if (i.note !== undefined) this.assertText(i.note, 'note');
    const gate = this.m.state.runbookGate;
    if (!gate) throw fail('NotAwaitingApproval', 'the runbook of this incident does not wait for an approval');
    if (gate.status !== 'waiting')
      throw fail('NotAwaitingApproval', `the runbook start was already ${gate.status} by ${gate.decidedBy}`);
    this.assertRoom();
  }

  validateResolve(i: ResolveInput): void {
    this.m.assertOpen();
    this.assertText(i.by, 'by', 200);
    this.assertText(i.resolution, 'resolution');
    if (this.m.resolving || this.m.state.checklistRunning)
      throw fail('ChecklistRunning', 'the checklist is running; try again when it has finished');
    if (this.m.state.preventiveActions.length === 0) {
      throw fail(
        'PreventiveActionRequired',
        'record at least one preventive action before closing (every incident ends with at least one preventive measure)',
      );
    }
    if (i.force) {
      this.assertText(i.reason, 'reason (required with force)');
      return;
    }
    const open = this.m.state.tasks.filter((t) => t.status === 'open' || t.status === 'overdue');
    if (open.length)
      throw fail('OpenTasks', `complete or waive the open tasks first: ${open.map((t) => t.id).join(', ')}`);
    const manual = this.m.state.checklist.filter(
      (item) => !item.automated && item.status !== 'passed' && item.status !== 'not_applicable',
    );
    if (manual.length)
      throw fail('ChecklistIncomplete', `manual checklist items not ticked: ${manual.map((m) => m.id).join(', ')}`);
  }
}
