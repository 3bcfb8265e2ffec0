import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { allHandlersFinished, condition, ParentClosePolicy, startChild, workflowInfo } from '@temporalio/workflow';
import { runbookOfIncident } from '../../shared/runbookRegistry';
import { runbookSearchAttributes } from '../../shared/searchAttributes';
import type { IncidentInput, IncidentResult, RunbookInput } from '../../shared/incidents';
import { ChecklistRunner } from './checklistRunner';
import { EffectRunner } from './effects';
import { registerHandlers } from './handlers';
import { IncidentMachine } from './machine';

/**
 * One incident, from detection to resolution. Workflow id `INC-YYYY-MM-DD-NN` (REST, Slack)
 * or `alert-<hash of groupKey>` (Alertmanager; the INC id is claimed at start). The state
 * machine is in machine.ts, the clock in schedule.ts, the side effects in effects.ts.
 *
 * History stays bounded without continue-as-new: one durable timer at a time, escalations at
 * most once per role, timeline and list sizes capped, and repeated alert notifications that
 * change nothing add no entry. An incident is addressed by (workflow id, run id), which
 * continue-as-new would change under the API's feet.
 */
export async function incidentWorkflow(input: IncidentInput): Promise<IncidentResult> {
  const machine = new IncidentMachine(input, workflowInfo().workflowId, Date.now());
  const checklist = new ChecklistRunner(machine);
  const effects = new EffectRunner(machine);
  registerHandlers(machine, checklist);

  machine.tick(Date.now()); // on-call is paged at detection
  await effects.drain();
  // a gated incident (opened from Slack by a non-responder) starts its runbook in the loop
  // below, once a responder approves; without a gate nothing changes
  if (!machine.state.runbookGate) await startRunbook(machine);

  while (!machine.closed) {
    const now = Date.now();
    const wake = [machine.nextWakeAt(now), effects.retryAt].filter((t): t is number => t !== undefined);
    if (machine.hasDue(now)) {
      // something fell due while the last effects drained (or the worker/server was away): do it now
    } else if (wake.length) {
      const at = Math.min(...wake);
      if (at > now)
        await condition(() => machine.hasWork(), at - now, { summary: 'next escalation, reminder or retry' });
    } else {
      await condition(() => machine.hasWork());
    }
    machine.tick(Date.now());
    await effects.drain();
    const gate = machine.state.runbookGate;
    if (gate?.status === 'approved' && !machine.state.runbook && machine.state.status !== 'resolved')
      await startRunbook(machine);
  }
  await condition(allHandlersFinished);
  return { id: machine.state.id, status: machine.state.status, resolvedAt: machine.state.resolvedAt };
}

async function startRunbook(machine: IncidentMachine): Promise<void> {
  const s = machine.state;
  const runbook = runbookOfIncident(s.type);
  if (!runbook) return;
  const { workflowType } = runbook;
  // a gated start runs on the authority of whoever approved it, any other on the opener's
  const gate = s.runbookGate;
  const startedBy = gate?.decidedBy ?? s.openedBy;
  const startedByRole = gate ? gate.decidedByRole : s.openedByRole;
  const args: RunbookInput = {
    incidentId: s.id,
    incidentWorkflowId: s.workflowId,
    type: s.type,
    severity: s.severity,
    affected: s.affected,
    dataBreach: s.dataBreach,
    ddos: s.ddos,
    startedBy,
    ...(startedByRole ? { startedByRole } : {}),
  };
  let workflowId = `${s.id || s.workflowId}-runbook`;
  // a resolved incident cancels its runbook; the runbook decides what cancellation means
  const start = () =>
    startChild(workflowType, {
      workflowId,
      args: [args],
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      typedSearchAttributes: runbookSearchAttributes(runbook.name, s.type, s.severity, {
        incidentId: s.id,
        startedBy,
      }),
    });
  let child: Awaited<ReturnType<typeof start>>;
  try {
    child = await start();
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    // the id is taken in the namespace (another deployment's incident with the same INC id, or
    // this alert group's previous run whose runbook is still compensating): a run-scoped id
    workflowId = `${workflowId}-${workflowInfo().runId.slice(0, 8)}`;
    child = await start();
  }
  s.runbook = { workflowType, workflowId, status: 'running' };
  machine.record({
    at: new Date().toISOString(),
    kind: 'runbook',
    message: `Runbook ${workflowType} started (${workflowId})`,
  });
  child.result().then(
    () => {
      s.runbook = { workflowType, workflowId, status: 'completed' };
      machine.record({ at: new Date().toISOString(), kind: 'runbook', message: `Runbook ${workflowType} completed` });
    },
    (err: unknown) => {
      s.runbook = { workflowType, workflowId, status: 'failed' };
      machine.record({
        at: new Date().toISOString(),
        kind: 'runbook',
        message: `Runbook ${workflowType} failed: ${err instanceof Error ? err.message : String(err)}`,
      });
    },
  );
}
