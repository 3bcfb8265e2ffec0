/**
 * THE RUNBOOK FRAMEWORK: how every incident-response procedure (docs/incident-response.md) runs as a workflow.
 *
 * Write a runbook as a short script over declared steps:
 *
 *   const STEPS: StepDef[] = [
 *     { name: 'block_ips', title: 'Block suspicious IPs', destructive: true, containment: true,
 *       compensable: 'the blocks this run added are lifted' },
 *     { name: 'rotate_keys', title: 'Emergency key rotation', destructive: true, containment: true,
 *       notCompensable: 'un-rotating would bring back a key that may be compromised' },
 *     { name: 'anomalies', title: 'Anomaly queries', optional: true },
 *   ];
 *   export async function myRunbook(input: RunbookStartInput<MyParams>): Promise<RunbookResult> {
 *     return runRunbook('my-runbook', input, STEPS, async (rb) => {
 *       await rb.step('block_ips', async (ctx) => {
 *         const done = await ctx.activities(blockOptions).blockIps({ key: ctx.key, ... });
 *         return { summary: `blocked ${done.blocked} IP(s)`, result: done };
 *       }, { compensate: async (ctx) => (await ctx.activities(undoOptions, 'undo').unblockIps({ key: ctx.key })).summary });
 *     });
 *   }
 *
 * Then register it: export it from src/workflows/index.ts and give it one entry in
 * src/shared/runbookRegistry.ts (URL name, incident type, workflow type, parameter schema).
 *
 * Rules the framework enforces:
 * - Start: as an incident's child (RunbookInput, no params: every parameter needs a default) or
 *   by `POST /admin/api/v1/runbooks/<name>` (params, pre-approvals; standalone, or attached to an
 *   existing incident by `incident_id`, which then gets the timeline entries).
 * - Timeline: every step's outcome (and approval waits, rejections, compensations) goes to the
 *   incident as runbookProgressSignal and to the run's own `log`. Containment steps land as
 *   `mitigation` entries (the report's "Mitigation applied"); `rb.progress('root_cause', ...)`
 *   records findings.
 * - Idempotency: `ctx.key` (`<workflow id>/<step>[#run]`) is the key of every side effect of the
 *   step, and `ctx.activities()` gives activity ids `<step>[#run][.suffix]`. Activities must make
 *   a second call with the same key change nothing.
 * - Approval: a `destructive` step waits for approveStepUpdate (an admin's decision) when the
 *   run's severity is one of the approval severities (WARDEN_RUNBOOK_APPROVAL_SEVERITIES, default
 *   P1,P2,P3, or the start input's). At P0 the run's authority (`startedByRole`: the role of
 *   whoever asked for it, `automation` for an alert) decides: an admin's or an alert's run has
 *   its `containment` approved automatically; anyone else's waits at every destructive step
 *   (approvalPolicy.ts). A rejection skips the step. Admins may pre-approve steps. With an
 *   incident, the wait and the decision reach it as progress with an `approval`: the incident
 *   posts the request in its Slack thread with Approve and Reject buttons (admins decide) and
 *   rewrites it once decided, from Slack or the API.
 * - Cancellation (cancelRunbookUpdate, or a Temporal cancel, e.g. when the incident resolves):
 *   the running step is interrupted and the registered compensations run in reverse order,
 *   unless the canceller asked for `compensate: false`. A step with `notCompensable` says why
 *   it stays (the result's `leftInPlace`). A failure stops the run and undoes only the steps
 *   marked `undoOnFailure`; `optional` steps record their failure and the run goes on.
 * - Observability: runbookStateQuery (steps, statuses, approvals, log), rows in runbook_runs /
 *   runbook_steps, warden_runbook_steps_total{runbook,step,outcome}, and the RunbookStatus search
 *   attribute (running, awaiting_approval, compensating, then how it ended) kept current.
 */
import { CancellationScope, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  approveStepUpdate,
  cancelRunbookUpdate,
  runbookStateQuery,
  type CancelRunbookInput,
  type RunbookResult,
  type RunbookStartInput,
} from '../../shared/runbooks';
import { bookkeeping, errorText, fail, RunbookSteps, type StepDef } from './steps';

export { fail, type StepContext, type StepDef, type StepOutcome, type StepOptions } from './steps';
export type Runbook = RunbookSteps;

export async function runRunbook<P>(
  name: string,
  input: RunbookStartInput<P>,
  steps: StepDef[],
  body: (rb: RunbookSteps) => Promise<void>,
): Promise<RunbookResult> {
  const { workflowId } = workflowInfo();
  const rb = new RunbookSteps(name, input, workflowId, steps, new Date().toISOString());
  const main = new CancellationScope();

  setHandler(runbookStateQuery, () => rb.state);
  setHandler(
    approveStepUpdate,
    (i) => {
      rb.decide(i.step, i.approve, i.by, new Date().toISOString(), i.note);
      return rb.state;
    },
    {
      validator: (i) => {
        if (
          !i ||
          typeof i.step !== 'string' ||
          typeof i.by !== 'string' ||
          !i.by.trim() ||
          typeof i.approve !== 'boolean'
        )
          throw fail('InvalidInput', '`step`, `by` and `approve` are required');
        rb.validateApproval(i.step);
      },
    },
  );
  setHandler(
    cancelRunbookUpdate,
    (i: CancelRunbookInput) => {
      rb.state.cancel = {
        by: i.by,
        reason: i.reason,
        compensate: i.compensate !== false,
        at: new Date().toISOString(),
      };
      main.cancel();
      return rb.state;
    },
    {
      validator: (i) => {
        if (!i || typeof i.by !== 'string' || !i.by.trim() || typeof i.reason !== 'string' || !i.reason.trim())
          throw fail('InvalidInput', '`by` and `reason` are required');
        if (rb.state.status !== 'running') throw fail('RunbookFinished', `runbook is ${rb.state.status}`);
        if (rb.state.cancel)
          throw fail('AlreadyCancelling', `cancelled by ${rb.state.cancel.by} at ${rb.state.cancel.at}`);
      },
    },
  );

  // the status changes only once everything (compensations included) is done, so a reader
  // who sees `cancelled` sees what was undone
  let final: RunbookResult['status'] = 'completed';
  try {
    rb.syncStatus();
    await main.run(async () => {
      const policy = await bookkeeping().startRunbookRun({
        workflowId,
        runbook: name,
        incidentId: input.incidentId,
        severity: input.severity,
        startedBy: input.startedBy ?? null,
        approvalSeverities: input.approvalSeverities ?? null,
      });
      rb.applyPolicy(policy.approvalSeverities);
      const gated = rb.state.steps.filter((s) => s.approval.required && !s.approval.how).map((s) => s.name);
      await rb.progress(
        'step',
        `Runbook ${name} started at ${input.severity}${gated.length ? `; waiting for approval before: ${gated.join(', ')}` : '; no step needs approval'}`,
      );
      await body(rb);
    });
    final = 'completed';
  } catch (err) {
    if (isCancellation(err)) {
      rb.state.cancel ??= {
        by: 'temporal',
        reason: 'cancellation requested (the incident closed, or the workflow was cancelled)',
        compensate: true,
        at: new Date().toISOString(),
      };
      final = 'cancelled';
      await CancellationScope.nonCancellable(() => {
        rb.beginCompensation();
        return compensate(rb, () => rb.state.cancel!.compensate);
      });
    } else {
      final = 'failed';
      await CancellationScope.nonCancellable(async () => {
        rb.beginCompensation();
        await rb.progress('step', `Runbook ${name} stopped: ${errorText(err)}`);
        await compensate(rb, (step) => Boolean(rb.defs.get(step)?.undoOnFailure));
      });
    }
  }

  return CancellationScope.nonCancellable(async () => {
    for (const s of rb.state.steps) {
      if (s.status === 'pending' || s.status === 'awaiting_approval') {
        s.status = 'skipped';
        s.summary = `not run: the runbook ${final === 'completed' ? 'did not need it' : final}`;
      }
    }
    rb.state.endedAt = new Date().toISOString();
    rb.state.status = final;
    rb.syncStatus();
    const leftInPlace = rb.state.steps
      .filter((s) => s.status === 'succeeded' && s.compensation && !s.compensation.compensable)
      .map((s) => ({ step: s.name, why: s.compensation && !s.compensation.compensable ? s.compensation.why : '' }));
    const summary = `Runbook ${name} ${final}: ${rb.state.steps.map((s) => `${s.name} ${s.status}`).join(', ')}`;
    await rb.progress('step', summary);
    await bookkeeping()
      .finishRunbookRun({ workflowId, status: final, summary })
      .catch(() => undefined);
    return {
      status: final,
      steps: rb.state.steps.map((s) => ({ name: s.name, status: s.status, summary: s.summary })),
      leftInPlace,
    };
  });
}

/** Runs the compensation stack in reverse; `which` picks the steps to undo. */
async function compensate(rb: RunbookSteps, which: (step: string) => boolean): Promise<void> {
  const cancel = rb.state.cancel;
  if (cancel)
    await rb.progress(
      'step',
      `Runbook cancelled by ${cancel.by}: ${cancel.reason}${cancel.compensate ? '' : ' (nothing undone, as asked)'}`,
    );
  for (const c of [...rb.compensations].reverse()) {
    if (!which(c.step)) continue;
    const s = rb.find(c.step);
    try {
      s.compensationSummary = await c.run();
      s.status = 'compensated';
      await rb.record(s);
      await rb.progress('step', `undone: ${s.compensationSummary}`, s.name);
    } catch (err) {
      s.status = 'compensation_failed';
      s.compensationSummary = errorText(err);
      await rb.record(s);
      await rb.progress('step', `could not be undone: ${s.compensationSummary}`, s.name);
    }
  }
  for (const s of rb.state.steps) {
    if (s.status === 'succeeded' && s.compensation && !s.compensation.compensable && cancel) {
      await rb.progress('step', `left in place: ${s.compensation.why}`, s.name);
    }
  }
}
