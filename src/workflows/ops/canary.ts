import { condition, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { CANARY_SIGNAL, type CanaryReport } from '../../shared/canary';

const { startCanaryRun, finishCanaryRun } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});

/** The inbound webhook's verdict on the run's message: an outcome and a latency, nothing else. */
export const canaryReportSignal = defineSignal<[CanaryReport]>(CANARY_SIGNAL);

/**
 * One delivery canary run, started by the canary schedule (src/canary/schedule.ts): a real
 * sign-in for the canary user, then a durable timer racing the inbound webhook's report. The
 * first report wins; one that comes after the timeout is dropped with the workflow.
 */
export async function canaryWorkflow(): Promise<{ outcome: string; latencyMs?: number }> {
  let report: CanaryReport | undefined;
  setHandler(canaryReportSignal, (r) => {
    report ??= r;
  });
  const started = await startCanaryRun({ workflowId: workflowInfo().workflowId });
  if (started.status === 'off') return { outcome: 'off' };
  if (started.status === 'error') {
    await finishCanaryRun({ runId: started.runId, outcome: 'error', detail: started.detail });
    return { outcome: 'error' };
  }
  const arrived = await condition(() => report !== undefined, started.timeoutMs);
  if (!arrived || !report) {
    await finishCanaryRun({
      runId: started.runId,
      outcome: 'timeout',
      detail: `no message came back within ${started.timeoutMs} ms`,
    });
    return { outcome: 'timeout' };
  }
  await finishCanaryRun({ runId: started.runId, outcome: report.outcome, latencyMs: report.latencyMs });
  return { outcome: report.outcome, latencyMs: report.latencyMs };
}
