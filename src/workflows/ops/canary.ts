import { condition, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import {
  CANARY_SIGNAL,
  type CanaryChannel,
  type CanaryInput,
  type CanaryReport,
  type CanaryResult,
} from '../../shared/canary';

const { startCanaryRuns, finishCanaryRun } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});

/** The inbound webhook's verdict on one channel's message: a channel, an outcome and a latency, nothing else. */
export const canaryReportSignal = defineSignal<[CanaryReport]>(CANARY_SIGNAL);

/**
 * One delivery canary run, started by the canary schedule (src/canary/schedule.ts) or by the
 * recovery checklist for one channel: a real sign-in for the canary user on each channel (an
 * SMS code, an email magic link), then one durable timer racing the inbound webhooks' reports.
 * The first report of a channel wins; one that comes after the timeout is dropped with the
 * workflow. The checklist's runs (`checks`) carry the webhook's verdicts on a wrong code and on
 * where the secret was looked for into the row and the result; never the secret.
 */
export async function canaryWorkflow(input: CanaryInput = {}): Promise<CanaryResult> {
  const reports = new Map<CanaryChannel, CanaryReport>();
  setHandler(canaryReportSignal, (r) => {
    if (!reports.has(r.channel)) reports.set(r.channel, r);
  });
  const started = await startCanaryRuns({
    workflowId: workflowInfo().workflowId,
    channels: input.channels,
    checks: input.checks,
  });
  const failed = started.filter((s) => s.status === 'error');
  const waiting = started.filter((s) => s.status === 'waiting');
  // a sign-in that could not start is recorded at once: no message will come back for it
  await Promise.all(failed.map((s) => finishCanaryRun({ runId: s.runId, outcome: 'error', detail: s.detail })));
  if (waiting.length) {
    const timeoutMs = Math.max(...waiting.map((s) => s.timeoutMs));
    await condition(() => waiting.every((s) => reports.has(s.channel)), timeoutMs);
  }
  const finished = await Promise.all(
    waiting.map(async (s): Promise<CanaryResult['runs'][number]> => {
      const report = reports.get(s.channel);
      if (!report) {
        await finishCanaryRun({
          runId: s.runId,
          outcome: 'timeout',
          detail: `no message came back within ${s.timeoutMs} ms`,
        });
        return { channel: s.channel, outcome: 'timeout' };
      }
      await finishCanaryRun({
        runId: s.runId,
        outcome: report.outcome,
        latencyMs: report.latencyMs,
        checks: report.checks,
      });
      return {
        channel: s.channel,
        outcome: report.outcome,
        latencyMs: report.latencyMs,
        ...(report.checks ? { checks: report.checks } : {}),
      };
    }),
  );
  const runs = started.map(
    (s) => finished.find((f) => f.channel === s.channel) ?? { channel: s.channel, outcome: 'error' as const },
  );
  return { runs };
}
