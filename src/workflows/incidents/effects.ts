import { log, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { IncidentSummary, SlackThread } from '../../activities/notifySlack';
import type { DecisionRequest } from '../../incidents/slackBlocks';
import { EXTERNAL_TASKS } from '../../shared/escalation';
import type { IncidentState } from '../../shared/incidents';
import { incidentSearchAttributes, operatorKeywords } from '../../shared/searchAttributes';
import { notify, store } from './proxies';
import type { Effect, IncidentMachine } from './machine';

const RETRY_MS = 60_000;

function summary(s: IncidentState): IncidentSummary {
  return {
    id: s.id || s.workflowId,
    type: s.type,
    severity: s.severity,
    title: s.title,
    impact: s.impact,
    status: s.status,
    detectedAt: s.detectedAt,
    owner: s.owner,
    source: s.source,
    dataBreach: s.dataBreach,
    affected: s.affected,
  };
}

const errorText = (err: unknown) =>
  (err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)).slice(0, 300);

/**
 * Carries out what the machine decided: registration, the Slack alert and its thread,
 * escalation pages (Slack + email), task notices, search attributes and the projection.
 * A failed notification lands on the timeline; a failed projection is retried a minute later.
 */
export class EffectRunner {
  private registered = false;
  private searchKey = '';
  private alertKey = '';
  private projectionPending = true;
  /** when a failed registration, projection or alert refresh should be tried again */
  retryAt: number | undefined;

  constructor(private readonly machine: IncidentMachine) {}

  private get thread(): SlackThread | undefined {
    return this.machine.state.slack;
  }

  async drain(): Promise<void> {
    const m = this.machine;
    const effects = m.takeEffects();
    if (m.dirty) this.projectionPending = true;
    m.dirty = false;
    this.retryAt = undefined;
    this.upsertSearchAttributes();
    await this.register();
    await this.ensureAlert();
    for (const effect of effects) await this.perform(effect);
    await this.project();
    await this.refreshAlert();
  }

  private upsertSearchAttributes(): void {
    const s = this.machine.state;
    // responders filter on these in the Temporal UI: keywords, the INC id, and the operators
    // who acted (names and Slack ids, never a user's data)
    const operators = operatorKeywords([s.openedBy, ...s.timeline.map((e) => e.by)]);
    const key = `${s.type}|${s.severity}|${s.status}|${s.id}|${operators.join(',')}`;
    if (key === this.searchKey) return;
    this.searchKey = key;
    upsertSearchAttributes(
      incidentSearchAttributes({ type: s.type, severity: s.severity, status: s.status, id: s.id, operators }),
    );
  }

  private async register(): Promise<void> {
    if (this.registered) return;
    const info = workflowInfo();
    try {
      const { id } = await store.registerIncident({
        workflowId: info.workflowId,
        runId: info.runId,
        day: new Date().toISOString().slice(0, 10),
        state: this.machine.state,
      });
      this.machine.state.id = id;
      this.registered = true;
    } catch (err) {
      // an Alertmanager incident pages under its workflow id until the database answers
      log.warn('incident registration failed; retrying later', { error: errorText(err) });
      this.retryAt = Date.now() + RETRY_MS;
    }
  }

  private async ensureAlert(): Promise<void> {
    if (this.thread) return;
    try {
      this.machine.state.slack = await notify.postIncidentAlert({ incident: summary(this.machine.state) });
      this.alertKey = this.currentAlertKey();
    } catch (err) {
      this.machine.record({
        at: new Date().toISOString(),
        kind: 'delivery_failed',
        message: `Slack incident alert not posted: ${errorText(err)}`,
      });
    }
  }

  private currentAlertKey(): string {
    const s = this.machine.state;
    return [s.id, s.severity, s.status, s.owner, s.title, s.impact].join('|');
  }

  private async refreshAlert(): Promise<void> {
    const thread = this.thread;
    if (!thread || this.currentAlertKey() === this.alertKey) return;
    try {
      await notify.updateIncidentAlert({ incident: summary(this.machine.state), thread });
      this.alertKey = this.currentAlertKey();
    } catch (err) {
      log.warn('Slack alert refresh failed; retrying later', { error: errorText(err) });
      this.retryAt = Date.now() + RETRY_MS;
    }
  }

  private async project(): Promise<void> {
    if (!this.projectionPending || !this.registered) return;
    const info = workflowInfo();
    try {
      await store.projectIncident({ workflowId: info.workflowId, runId: info.runId, state: this.machine.state });
      this.projectionPending = false;
    } catch (err) {
      log.warn('incident projection failed; retrying later', { error: errorText(err) });
      this.retryAt = Date.now() + RETRY_MS;
    }
  }

  private async perform(effect: Effect): Promise<void> {
    const incident = summary(this.machine.state);
    const thread = this.thread;
    const info = workflowInfo();
    const failed = (what: string, err: unknown) =>
      this.machine.record({
        at: new Date().toISOString(),
        kind: 'delivery_failed',
        message: `${what} failed: ${errorText(err)}`,
      });

    switch (effect.kind) {
      case 'thread':
        await notify
          .postIncidentThread({ text: effect.text, thread })
          .catch((err: unknown) => failed('Slack update', err));
        return;
      case 'escalate': {
        const { role, reason } = effect;
        // Slack and email independently: one channel down must not silence the other
        await Promise.all([
          notify
            .notifyRoleSlack({ incident, role, reason, thread })
            .catch((err: unknown) => failed(`Slack page of ${role}`, err)),
          notify
            .notifyRoleEmail({
              incident,
              role,
              reason,
              idempotencyKey: `${info.workflowId}/${info.runId}/escalation-${role}`,
            })
            .catch((err: unknown) => failed(`Email to ${role}`, err)),
        ]);
        return;
      }
      case 'task': {
        const task = this.machine.state.tasks.find((t) => t.id === effect.taskId);
        if (!task) return;
        const jobs: Array<Promise<unknown>> = [
          notify.notifyTaskSlack({ incident, task, event: effect.event, text: effect.text, thread }).then(
            // the first notice carries the Done button; it is rewritten when the task closes
            (posted) => {
              if (effect.event === 'created' && posted?.ts) task.slackTs = posted.ts;
            },
            (err: unknown) => failed('Slack task notice', err),
          ),
        ];
        // the GDPR deadline also reaches legal and the CISO by email
        if (task.id === EXTERNAL_TASKS.gdpr.id && effect.event !== 'created') {
          for (const role of ['legal', 'ciso'] as const) {
            const key = `${info.workflowId}/${info.runId}/${task.id}-${effect.event}-${task.remindersSent}-${role}`;
            jobs.push(
              notify
                .notifyRoleEmail({ incident, role, reason: effect.text, idempotencyKey: key })
                .catch((err: unknown) => failed(`Email to ${role}`, err)),
            );
          }
        }
        await Promise.all(jobs);
        return;
      }
      case 'task_closed': {
        const task = this.machine.state.tasks.find((t) => t.id === effect.taskId);
        if (!task?.slackTs || !thread) return;
        await notify
          .updateTaskNotice({ incident, task, thread, ts: task.slackTs })
          .catch((err: unknown) => failed('Slack task notice update', err));
        return;
      }
      case 'runbook_gate': {
        const gate = this.machine.state.runbookGate;
        if (!gate || !thread) return;
        const request: DecisionRequest = { kind: 'runbook_start', ...gate };
        await this.postOrUpdate(incident, thread, gate, request, 'Slack runbook approval request');
        return;
      }
      case 'step_approval': {
        const notice = this.machine.state.stepApprovals?.find(
          (n) => n.runbookWorkflowId === effect.runbookWorkflowId && n.step === effect.step,
        );
        if (!notice || !thread) return;
        const request: DecisionRequest = { kind: 'runbook_step', ...notice };
        await this.postOrUpdate(incident, thread, notice, request, 'Slack step approval request');
        return;
      }
    }
  }

  /** Posts a decision request with its buttons, or rewrites the one posted before (in place). */
  private async postOrUpdate(
    incident: IncidentSummary,
    thread: SlackThread,
    target: { slackTs?: string },
    request: DecisionRequest,
    what: string,
  ): Promise<void> {
    const failed = (err: unknown) =>
      this.machine.record({
        at: new Date().toISOString(),
        kind: 'delivery_failed',
        message: `${what} failed: ${errorText(err)}`,
      });
    if (target.slackTs) {
      await notify
        .updateDecisionRequest({ incident, thread, ts: target.slackTs, request })
        .catch((err: unknown) => failed(err));
      return;
    }
    await notify.postDecisionRequest({ incident, thread, request }).then((posted) => {
      if (posted?.ts) target.slackTs = posted.ts;
    }, failed);
  }
}
