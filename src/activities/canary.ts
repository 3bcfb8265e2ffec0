/**
 * The delivery canary's side effects (docs/canary.md). A run signs the canary user in through
 * the public API, exactly as a browser would, and records the outcome its workflow saw. The
 * code travels provider -> the canary's phone -> the provider's inbound webhook, where Warden
 * verifies it (src/canary/inbound.ts): it is never read here and never returned.
 */
import { randomUUID } from 'node:crypto';
import type { Runtime } from '../runtime';
import type { CanaryOutcome, CanaryStart } from '../shared/canary';
import { SyntheticClient } from './checklistHttp';

const OTP_INITIATE = '/browser/api/v1/identity/auth/otp/initiate';

export function createCanaryActivities(runtime: Pick<Runtime, 'db' | 'config' | 'metrics' | 'logger'>) {
  const { db, config, metrics } = runtime;
  const log = runtime.logger.child({ component: 'canary' });

  return {
    /** Writes the run (waiting) before the sign-in starts, so its message always finds it. */
    async startCanaryRun(input: { workflowId: string }): Promise<CanaryStart> {
      const canary = config.canary;
      if (!canary) return { status: 'off' };
      const runId = randomUUID();
      // a retried start leaves no run waiting forever: the earlier attempt's row is closed
      await db.writer.query(
        "UPDATE canary_runs SET status = 'error', detail = 'its start was retried', finished_at = now() WHERE workflow_id = $1 AND status = 'waiting'",
        [input.workflowId],
      );
      await db.writer.query('INSERT INTO canary_runs (id, channel, workflow_id, user_id) VALUES ($1, $2, $3, $4)', [
        runId,
        'sms',
        input.workflowId,
        canary.user,
      ]);
      const client = new SyntheticClient(config.publicBaseUrl, `canary/${runId}`, config.providers.timeoutMs);
      let answer: Awaited<ReturnType<SyntheticClient['post']>>;
      try {
        answer = await client.post(OTP_INITIATE, { user_id: canary.user });
      } catch (err) {
        return { status: 'error', runId, detail: `initiate failed: ${(err as Error).message}` };
      }
      const challengeId = answer.body.challenge_id;
      if (answer.status !== 202 || typeof challengeId !== 'string')
        return {
          status: 'error',
          runId,
          detail: `initiate answered ${answer.status} ${String(answer.body.error ?? '')}`.trim(),
        };
      await db.writer.query('UPDATE canary_runs SET challenge_id = $2 WHERE id = $1', [runId, challengeId]);
      return { status: 'waiting', runId, timeoutMs: canary.timeoutMs };
    },

    /** The run's one outcome, its metrics and its log line; a second call changes nothing. */
    async finishCanaryRun(input: {
      runId: string;
      outcome: CanaryOutcome;
      latencyMs?: number;
      detail?: string;
    }): Promise<void> {
      const { rows } = await db.writer.query<{ channel: string }>(
        `UPDATE canary_runs SET status = $2, latency_ms = $3, detail = $4, finished_at = now()
          WHERE id = $1 AND status = 'waiting' RETURNING channel`,
        [input.runId, input.outcome, input.latencyMs ?? null, input.detail ?? null],
      );
      const channel = rows[0]?.channel;
      if (!channel) return;
      metrics.canaryRuns.inc({ channel, outcome: input.outcome });
      const fields = { runId: input.runId, channel, outcome: input.outcome, latencyMs: input.latencyMs };
      if (input.outcome === 'success') {
        metrics.canaryLatency.observe({ channel }, (input.latencyMs ?? 0) / 1000);
        metrics.canaryLastSuccess.set({ channel }, Date.now() / 1000);
        log.info(fields, 'canary run succeeded');
      } else {
        log.warn({ ...fields, detail: input.detail }, `canary run failed: ${input.outcome}`);
      }
    },
  };
}
