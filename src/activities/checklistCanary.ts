/**
 * The checklist's functional items with live providers, where there is no sandbox outbox to
 * read codes and links from: one delivery canary run per channel per checklist run
 * (docs/canary.md#the-recovery-checklist), a real message to the operator's phone or mailbox
 * and back through the provider's inbound webhook. The run is started with `checks`: the
 * webhook submits a wrong code (a tampered link token) before the right one, and looks for the
 * secret it received in the histories, logs, audit rows and metrics while it holds it. Every
 * check of the run reads the same canary run (its workflow id is the checklist run's), so a
 * checklist run spends one initiation of the canary user's rate limit per channel.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Runtime } from '../runtime';
import { SECRET_NAME, WRONG_SECRET_ERROR } from '../canary/verdict';
import type { CanaryChannel, CanaryChecks, CanaryOutcome } from '../shared/canary';
import type { CheckOutcome } from '../shared/checklist';
import type { canaryWorkflow } from '../workflows/ops/canary';
import type { CheckInput } from './checklistTypes';

type Item = CheckOutcome['items'][number];
const item = (id: string, ok: boolean, detail: string): Item => ({ id, status: ok ? 'passed' : 'failed', detail });

/** What the checklist reads of its canary run on one channel: verdicts, never a secret. */
export interface CanaryRunView {
  channel: CanaryChannel;
  workflowId: string;
  user: string;
  outcome: CanaryOutcome | 'off';
  latencyMs?: number;
  /** the run's row detail (why it failed to start or timed out) */
  detail?: string | null;
  checks?: CanaryChecks;
}

/** The canary run of a checklist run on a channel: one id per incident, run and channel. */
export function checklistCanaryId(input: Pick<CheckInput, 'incidentId' | 'baseline'>, channel: CanaryChannel): string {
  return `canary-checklist-${input.incidentId}-${channel}-${Date.parse(input.baseline.takenAt)}`;
}

/**
 * The four items a canary run speaks to, judged from its result alone:
 * - generation: the message came back through the provider (verified or not);
 * - valid: the right code or link then verified;
 * - invalid: the wrong one was refused as invalid (401 invalid_otp / invalid_token) and the right
 *   one then verified (a refusal of everything proves nothing);
 * - plaintext: the secret was found nowhere the webhook looked, and every source could be read.
 */
export function canaryVerdicts(run: CanaryRunView): {
  generation: Item;
  valid: Item;
  invalid: Item;
  plaintext: Item;
} {
  const how = `canary ${run.user} (${run.workflowId})`;
  const names = SECRET_NAME[run.channel];
  const what = run.channel === 'sms' ? 'the SMS code' : 'the magic link';
  const cameBack = run.outcome === 'success' || run.outcome === 'rejected';
  const verified = run.outcome === 'success';
  const notBack = `${how}: ${run.outcome}${run.detail && !run.checks ? `, ${run.detail}` : ''}`;

  const generation = item(
    run.channel === 'sms' ? 'sms_otp_generation' : 'magic_link_generation',
    cameBack,
    cameBack ? `${how}: ${what} came back through the provider` : notBack,
  );
  const valid = item(
    'valid_token_validation',
    verified,
    verified ? `${how}: verified in ${run.latencyMs} ms end to end` : `${how}: not verified (${run.outcome})`,
  );

  const wrong = run.checks?.wrongSecret;
  let invalid: Item;
  if (!cameBack || !wrong) invalid = item('invalid_token_rejection', false, `${names.wrong}: not checked, ${notBack}`);
  else if (wrong.verdict !== 'refused')
    invalid = item(
      'invalid_token_rejection',
      false,
      `${names.wrong}: ${wrong.verdict === 'accepted' ? 'ACCEPTED' : 'not refused as invalid'} (${wrong.answer}, expected 401 ${WRONG_SECRET_ERROR[run.channel]}), ${how}`,
    );
  else if (!verified)
    invalid = item(
      'invalid_token_rejection',
      false,
      `${names.wrong}: refused (${wrong.answer}), but ${names.right} was refused too (${run.outcome}), ${how}`,
    );
  else
    invalid = item(
      'invalid_token_rejection',
      true,
      `${names.wrong} (${how}: ${wrong.answer}, then ${names.right} verified)`,
    );

  const scan = run.checks?.plaintext;
  const secret = run.channel === 'sms' ? 'the canary code' : 'the canary link token';
  let plaintext: Item;
  if (!cameBack || !scan) plaintext = item('no_plaintext_tokens', false, `${secret}: not scanned, ${notBack}`);
  else if (scan.found.length)
    plaintext = item('no_plaintext_tokens', false, `${secret} in plaintext at: ${scan.found.join(', ')} (${how})`);
  else if (scan.problem)
    plaintext = item('no_plaintext_tokens', false, `${secret}: scan incomplete, ${scan.problem} (${how})`);
  else plaintext = item('no_plaintext_tokens', true, `${secret} not found in ${scan.scanned.join(', ')} (${how})`);

  return { generation, valid, invalid, plaintext };
}

export function createCanaryChecklist(runtime: Pick<Runtime, 'db' | 'config' | 'temporal'>) {
  const { db, config, temporal } = runtime;

  return {
    /**
     * The checklist run's canary run on a channel, started by the first check that needs it and
     * read by the others (and by a retried check): a finished run is never started again.
     */
    async run(input: CheckInput, channel: CanaryChannel): Promise<CanaryRunView> {
      const workflowId = checklistCanaryId(input, channel);
      const client = temporal.client.workflow;
      let handle;
      try {
        handle = await client.start<typeof canaryWorkflow>('canaryWorkflow', {
          workflowId,
          taskQueue: config.temporal.taskQueue,
          args: [{ channels: [channel], checks: true }],
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          workflowIdConflictPolicy: 'USE_EXISTING',
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        handle = client.getHandle<typeof canaryWorkflow>(workflowId);
      }
      const result = await handle.result();
      const { rows } = await db.query<{ detail: string | null; latency_ms: number | null }>(
        'SELECT detail, latency_ms FROM canary_runs WHERE workflow_id = $1 AND channel = $2',
        [workflowId, channel],
      );
      const run = result.runs.find((r) => r.channel === channel);
      return {
        channel,
        workflowId,
        user: config.canary?.user ?? '',
        outcome: run?.outcome ?? 'off',
        latencyMs: rows[0]?.latency_ms ?? run?.latencyMs,
        detail: rows[0]?.detail,
        checks: run?.checks,
      };
    },
  };
}
