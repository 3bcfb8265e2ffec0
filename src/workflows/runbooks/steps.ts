import {
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { runbookProgressSignal, type RunbookProgressInput, type Severity } from '../../shared/incidents';
import {
  stepKey,
  type RunbookErrorType,
  type RunbookStartInput,
  type RunbookState,
  type RunbookStepState,
  type StepStatus,
} from '../../shared/runbooks';
import { operatorKeywords, OperatorsKey, RunbookStatusKey } from '../../shared/searchAttributes';
import { runStatus, stepApproval } from './approvalPolicy';
import { opsActivities } from '../opsActivities';

/** How a runbook declares a step (see framework.ts for the rules). */
export interface StepDef {
  name: string;
  title: string;
  /** changes the system (blocks, revokes, rotates, sends): may wait for an admin's approval */
  destructive?: boolean;
  /** isolates the damage: approved automatically at P0 when an admin or an alert asked for the run */
  containment?: boolean;
  /** what cancelling undoes (the step's run() passes the matching `compensate`) */
  compensable?: string;
  /** why cancelling cannot undo it */
  notCompensable?: string;
  /** also undone when the runbook stops on a failure: temporary measures the runbook would lift itself */
  undoOnFailure?: boolean;
  /** a failure is recorded and the runbook goes on (investigation steps) */
  optional?: boolean;
  /** runs once per batch (e.g. false positives marked during the run) */
  repeatable?: boolean;
  /** the incident timeline kind of the success entry; containment defaults to `mitigation` */
  timeline?: 'step' | 'mitigation' | 'root_cause';
}

export interface StepContext {
  /** `<workflow id>/<step>[#run]`: the idempotency key every side effect of this run of the step uses */
  key: string;
  step: string;
  run: number;
  workflowId: string;
  incidentId: string;
  /** activities (on the ops task queue) whose ids are `<step>[#run][.suffix]`, so retries and replays reuse the same id */
  activities(options: ActivityOptions, suffix?: string): Activities;
}

/** What a step's body returns: the sentence for the timeline, a small result for the query. */
export interface StepOutcome<T = undefined> {
  summary: string;
  result?: unknown;
  value?: T;
}

export interface StepOptions {
  /** undo this step; registered before the step starts, since an interrupted step may have half-applied */
  compensate?: (ctx: StepContext) => Promise<string>;
}

export function fail(type: RunbookErrorType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

// Bookkeeping (projection rows, metrics) must never hold up or fail a runbook.
const bookkeepingOptions: ActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
};
export const bookkeeping = (): Activities => opsActivities(bookkeepingOptions);

const LOG_CAP = 500;
const TERMINAL: readonly StepStatus[] = [
  'succeeded',
  'failed',
  'skipped',
  'rejected',
  'compensated',
  'compensation_failed',
];

export function errorText(err: unknown): string {
  if (err instanceof ApplicationFailure && err.cause instanceof Error) return `${err.message}: ${err.cause.message}`;
  const cause = (err as { cause?: unknown }).cause;
  if (err instanceof Error && cause instanceof Error) return `${err.message}: ${cause.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * One run's steps: approval gates, idempotency keys, the compensation stack, the timeline and
 * the bookkeeping. The framework (framework.ts) drives it; runbooks call `step()`.
 */
export class RunbookSteps {
  readonly state: RunbookState;
  readonly defs = new Map<string, StepDef>();
  private readonly decisions = new Map<string, { approve: boolean; by: string; note?: string; at: string }>();
  readonly compensations: Array<{ step: string; run: () => Promise<string> }> = [];
  private compensating = false;

  constructor(
    readonly name: string,
    readonly input: RunbookStartInput,
    workflowId: string,
    defs: StepDef[],
    now: string,
  ) {
    for (const def of defs) this.defs.set(def.name, def);
    this.state = {
      workflowId,
      runbook: name,
      incidentId: input.incidentId,
      severity: input.severity,
      status: 'running',
      startedAt: now,
      startedBy: input.startedBy,
      ...(input.startedByRole ? { startedByRole: input.startedByRole } : {}),
      approvalSeverities: input.approvalSeverities ?? [],
      steps: defs.map((def) => ({
        name: def.name,
        title: def.title,
        destructive: Boolean(def.destructive),
        containment: Boolean(def.containment),
        compensation: def.compensable
          ? { compensable: true, how: def.compensable }
          : def.notCompensable
            ? { compensable: false, why: def.notCompensable }
            : null,
        status: 'pending',
        approval: { required: false },
        runs: 0,
      })),
      log: [],
      undeliveredProgress: 0,
    };
  }

  /** Decides every step's approval once the policy is known (at start; approvalPolicy.ts). */
  applyPolicy(severities: Severity[]): void {
    this.state.approvalSeverities = severities;
    const run = {
      severity: this.state.severity,
      severities,
      authority: this.input.startedByRole,
      startedBy: this.input.startedBy,
      preApproved: this.input.preApproved ?? [],
    };
    for (const s of this.state.steps) s.approval = stepApproval(s, run);
  }

  find(name: string): RunbookStepState {
    const s = this.state.steps.find((x) => x.name === name);
    if (!s) throw fail('UnknownStep', `no step ${name} in runbook ${this.name}`);
    return s;
  }

  validateApproval(step: string): void {
    if (this.state.status !== 'running') throw fail('RunbookFinished', `runbook is ${this.state.status}`);
    if (this.state.cancel) throw fail('RunbookFinished', `runbook was cancelled by ${this.state.cancel.by}`);
    const s = this.state.steps.find((x) => x.name === step);
    if (!s) throw fail('UnknownStep', `no step ${step}; steps: ${this.state.steps.map((x) => x.name).join(', ')}`);
    if (!s.approval.required || s.approval.how || !['pending', 'awaiting_approval'].includes(s.status)) {
      throw fail('NotAwaitingApproval', `step ${step} does not wait for an approval (status ${s.status})`);
    }
  }

  decide(step: string, approve: boolean, by: string, at: string, note?: string): void {
    this.decisions.set(step, { approve, by, note, at });
  }

  /**
   * Appends to the run's log and the incident's timeline (when there is an incident). An
   * `approval` has the incident post the step's approval request in its Slack thread, with
   * Approve and Reject buttons, and rewrite it once decided; Slack failures stay the incident's.
   */
  async progress(
    kind: RunbookProgressInput['kind'],
    message: string,
    step?: string,
    approval?: RunbookProgressInput['approval'],
  ): Promise<void> {
    const text = message.slice(0, 3900);
    if (this.state.log.length < LOG_CAP)
      this.state.log.push({ at: new Date().toISOString(), kind, message: step ? `${step}: ${text}` : text });
    if (!this.input.incidentWorkflowId) return;
    try {
      await getExternalWorkflowHandle(this.input.incidentWorkflowId).signal(runbookProgressSignal, {
        kind,
        message: text,
        ...(step ? { step } : {}),
        ...(approval ? { approval } : {}),
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.state.undeliveredProgress++; // the incident has closed; the run's own log keeps the entry
    }
  }

  async record(s: RunbookStepState): Promise<void> {
    if (!TERMINAL.includes(s.status) && s.status !== 'awaiting_approval') return;
    try {
      await bookkeeping().recordRunbookStep({
        workflowId: this.state.workflowId,
        runbook: this.name,
        step: s.name,
        run: Math.max(1, s.runs),
        status: s.status,
        summary: s.summary ?? s.error ?? s.compensationSummary ?? null,
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
    }
  }

  private context(s: RunbookStepState): StepContext {
    const suffix = s.runs > 1 ? `#${s.runs}` : '';
    return {
      key: stepKey(this.state.workflowId, s.name, s.runs),
      step: s.name,
      run: s.runs,
      workflowId: this.state.workflowId,
      incidentId: this.input.incidentId,
      activities: (options, extra) =>
        opsActivities({ ...options, activityId: `${s.name}${suffix}${extra ? `.${extra}` : ''}` }),
    };
  }

  /** Undoing has begun (a cancel, or a failure): the status says so until the run ends. */
  beginCompensation(): void {
    this.compensating = true;
    this.syncStatus();
  }

  /** Keeps the RunbookStatus search attribute on where the run stands (responders filter on it). */
  syncStatus(): void {
    const status = runStatus(this.state, this.compensating);
    if (workflowInfo().typedSearchAttributes.get(RunbookStatusKey) !== status)
      upsertSearchAttributes([{ key: RunbookStatusKey, value: status }]);
  }

  /** Adds whoever decided to the run's Operators search attribute (the UI filters runs by it). */
  private noteOperator(by: string): void {
    const current = workflowInfo().typedSearchAttributes.get(OperatorsKey) ?? [];
    const next = operatorKeywords([...current, by]);
    if (next.length !== current.length) upsertSearchAttributes([{ key: OperatorsKey, value: next }]);
  }

  /** Waits for an admin's decision when the step needs one; false when it was rejected. */
  private async approved(s: RunbookStepState): Promise<boolean> {
    if (!s.approval.required || s.approval.how) return true;
    s.status = 'awaiting_approval';
    this.syncStatus();
    await this.record(s);
    const approval = { runbookWorkflowId: this.state.workflowId, title: s.title };
    await this.progress('step', `awaiting an admin's approval (approveStep update or POST .../approve)`, s.name, {
      ...approval,
      status: 'waiting',
    });
    await condition(() => this.decisions.has(s.name));
    const d = this.decisions.get(s.name)!;
    s.approval = { required: true, how: 'responder', by: d.by, at: d.at, note: d.note };
    this.noteOperator(d.by);
    const decision = { ...approval, by: d.by, ...(d.note ? { note: d.note } : {}) };
    if (d.approve) {
      await this.progress('step', `approved by ${d.by}${d.note ? ` (${d.note})` : ''}`, s.name, {
        ...decision,
        status: 'approved',
      });
      return true;
    }
    s.status = 'rejected';
    s.endedAt = new Date().toISOString();
    s.summary = `rejected by ${d.by}${d.note ? `: ${d.note}` : ''}; not run`;
    this.syncStatus();
    await this.record(s);
    await this.progress('step', s.summary, s.name, { ...decision, status: 'rejected' });
    return false;
  }

  /**
   * Runs one step: approval, then the body with its idempotency key, then the timeline entry.
   * Returns the body's value, or undefined when the step was rejected (or failed and is optional).
   */
  async step<T>(
    name: string,
    body: (ctx: StepContext) => Promise<StepOutcome<T>>,
    options: StepOptions = {},
  ): Promise<T | undefined> {
    const s = this.find(name);
    const def = this.defs.get(name)!;
    if (s.runs > 0 && !def.repeatable) throw fail('InvalidInput', `step ${name} already ran`);
    if (s.runs === 0 && !(await this.approved(s))) return undefined;
    s.runs++;
    s.status = 'running';
    this.syncStatus();
    s.startedAt = new Date().toISOString();
    s.error = undefined;
    const ctx = this.context(s);
    if (options.compensate && s.runs === 1) {
      const compensate = options.compensate;
      this.compensations.push({ step: name, run: () => compensate(ctx) });
    }
    try {
      const outcome = await body(ctx);
      s.status = 'succeeded';
      s.summary = outcome.summary;
      s.result = outcome.result;
      s.endedAt = new Date().toISOString();
      await this.record(s);
      const kind = def.timeline ?? (def.containment ? 'mitigation' : 'step');
      await this.progress(
        kind,
        kind === 'step' ? outcome.summary : `${def.title}: ${outcome.summary}`,
        kind === 'step' ? name : undefined,
      );
      return outcome.value;
    } catch (err) {
      s.status = 'failed';
      s.error = isCancellation(err) ? 'cancelled while running' : errorText(err);
      s.endedAt = new Date().toISOString();
      if (isCancellation(err)) throw err;
      await this.record(s);
      await this.progress('step', `failed: ${s.error}`, name);
      if (def.optional) return undefined;
      throw err;
    }
  }

  /** Marks a step that does not apply to this run. */
  async skip(name: string, reason: string): Promise<void> {
    const s = this.find(name);
    s.status = 'skipped';
    s.summary = reason;
    s.endedAt = new Date().toISOString();
    await this.record(s);
    await this.progress('step', `skipped: ${reason}`, name);
  }
}
