/**
 * The delivery canary's side effects (docs/canary.md). A run signs the canary user in through
 * the public API, exactly as a browser would, once per channel (an SMS code, an email magic
 * link), and records the outcome its workflow saw. The code or link travels provider -> the
 * operator's phone or mailbox -> the provider's inbound webhook, where Warden verifies it
 * (src/canary/inbound.ts): it is never read here and never returned.
 */
import { randomUUID } from 'node:crypto';
import type { Runtime } from '../runtime';
import { describeChecks } from '../canary/verdict';
import {
  CANARY_CHANNELS,
  type CanaryChannel,
  type CanaryChecks,
  type CanaryOutcome,
  type CanaryStart,
} from '../shared/canary';
import { SyntheticClient } from './checklistHttp';

const INITIATE: Record<CanaryChannel, string> = {
  sms: '/browser/api/v1/identity/auth/otp/initiate',
  email: '/browser/api/v1/identity/auth/magic-link/initiate',
};
const CONTACT: Record<CanaryChannel, 'phone' | 'email'> = { sms: 'phone', email: 'email' };

export function createCanaryActivities(runtime: Pick<Runtime, 'db' | 'config' | 'metrics' | 'logger'>) {
  const { db, config, metrics } = runtime;
  const log = runtime.logger.child({ component: 'canary' });

  /** Writes the channel's run (waiting) before its sign-in starts, so its message always finds it. */
  async function startOne(
    workflowId: string,
    user: string,
    channel: CanaryChannel,
    contact: string | null | undefined,
    timeoutMs: number,
    checks: boolean,
  ): Promise<CanaryStart> {
    const runId = randomUUID();
    await db.writer.query(
      'INSERT INTO canary_runs (id, channel, workflow_id, user_id, checks) VALUES ($1, $2, $3, $4, $5)',
      [runId, channel, workflowId, user, checks],
    );
    if (contact === undefined)
      return { channel, status: 'error', runId, detail: `the canary user ${user} does not exist` };
    if (!contact) return { channel, status: 'error', runId, detail: `the canary user has no ${CONTACT[channel]}` };
    const client = new SyntheticClient(config.publicBaseUrl, `canary/${runId}`, config.providers.timeoutMs);
    let answer: Awaited<ReturnType<SyntheticClient['post']>>;
    try {
      answer = await client.post(INITIATE[channel], { user_id: user });
    } catch (err) {
      return { channel, status: 'error', runId, detail: `initiate failed: ${(err as Error).message}` };
    }
    const challengeId = answer.body.challenge_id;
    if (answer.status !== 202 || typeof challengeId !== 'string')
      return {
        channel,
        status: 'error',
        runId,
        detail: `initiate answered ${answer.status} ${String(answer.body.error ?? '')}`.trim(),
      };
    await db.writer.query('UPDATE canary_runs SET challenge_id = $2 WHERE id = $1', [runId, challengeId]);
    return { channel, status: 'waiting', runId, timeoutMs };
  }

  return {
    /**
     * One run per channel: the ones asked for, else WARDEN_CANARY_CHANNELS, else every channel
     * the canary user has a phone or an email for. Empty when the canary is off. `checks`: the
     * recovery checklist's runs, whose webhook also checks a wrong secret and looks for leaks.
     */
    async startCanaryRuns(input: {
      workflowId: string;
      channels?: CanaryChannel[];
      checks?: boolean;
    }): Promise<CanaryStart[]> {
      const canary = config.canary;
      if (!canary) return [];
      // a retried start leaves no run waiting forever: the earlier attempt's rows are closed
      await db.writer.query(
        "UPDATE canary_runs SET status = 'error', detail = 'its start was retried', finished_at = now() WHERE workflow_id = $1 AND status = 'waiting'",
        [input.workflowId],
      );
      const { rows } = await db.writer.query<{ phone: string | null; email: string | null }>(
        'SELECT phone, email FROM users WHERE sub = $1',
        [canary.user],
      );
      const user = rows[0];
      const asked = input.channels ?? canary.channels;
      const channels = asked
        ? CANARY_CHANNELS.filter((c) => asked.includes(c))
        : CANARY_CHANNELS.filter((c) => user?.[CONTACT[c]]);
      // a user with neither contact still gets a run: its error says why nothing was sent
      const run = channels.length ? channels : (['sms'] as const);
      return Promise.all(
        run.map((channel) =>
          startOne(
            input.workflowId,
            canary.user,
            channel,
            user ? user[CONTACT[channel]] : undefined,
            canary.timeoutMs,
            input.checks ?? false,
          ),
        ),
      );
    },

    /**
     * A run's one outcome, its metrics and its log line; a second call changes nothing. A
     * checklist run's verdicts (`checks`: place names and answers, never the secret) are its
     * detail.
     */
    async finishCanaryRun(input: {
      runId: string;
      outcome: CanaryOutcome;
      latencyMs?: number;
      detail?: string;
      checks?: CanaryChecks;
    }): Promise<void> {
      let detail = input.detail;
      if (input.checks) {
        const run = await db.writer.query<{ channel: CanaryChannel }>('SELECT channel FROM canary_runs WHERE id = $1', [
          input.runId,
        ]);
        if (run.rows[0]) detail = describeChecks(run.rows[0].channel, input.checks);
      }
      const { rows } = await db.writer.query<{ channel: CanaryChannel }>(
        `UPDATE canary_runs SET status = $2, latency_ms = $3, detail = $4, finished_at = now()
          WHERE id = $1 AND status = 'waiting' RETURNING channel`,
        [input.runId, input.outcome, input.latencyMs ?? null, detail ?? null],
      );
      const channel = rows[0]?.channel;
      if (!channel) return;
      metrics.canaryRuns.inc({ channel, outcome: input.outcome });
      const fields = { runId: input.runId, channel, outcome: input.outcome, latencyMs: input.latencyMs };
      if (input.outcome === 'success') {
        metrics.canaryLatency.observe({ channel }, (input.latencyMs ?? 0) / 1000);
        metrics.canaryLastSuccess.set({ channel }, Date.now() / 1000);
        log.info(input.checks ? { ...fields, detail } : fields, 'canary run succeeded');
      } else {
        log.warn({ ...fields, detail }, `canary run failed: ${input.outcome}`);
      }
    },
  };
}
