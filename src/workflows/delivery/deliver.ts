import {
  ActivityFailure,
  ApplicationFailure,
  log,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { ProviderName } from '../../providers/types';
import { ChallengeErrorType } from '../../shared/auth';
import {
  DeliveryErrorType,
  type DeliveryPlan,
  type DeliverySummary,
  type ErrorClass,
  type SendFailureDetails,
} from '../../shared/delivery';
import type { ReceiptTimeoutInput } from './receipt';

// Planning reads the route and the shared circuits (and may claim a probe): quick, local.
const planOptions: LocalActivityOptions = {
  startToCloseTimeout: '5 seconds',
  retry: {
    initialInterval: '200 ms',
    backoffCoefficient: 2,
    maximumInterval: '2 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [ChallengeErrorType.notFound],
  },
};
// One provider call per attempt. The activity says whether to call this provider again
// (ProviderTransientError, with the provider's Retry-After as nextRetryDelay) or not
// (ProviderExhaustedError, ProviderPermanentError: non-retryable). The backoff (250 ms, 500 ms)
// leaves a provider that answers 503 to everything after ~0.8 s: the backup's first call goes
// out well inside 5 s of initiate. maximumAttempts is only a ceiling for attempts lost with a
// worker (SIGKILL): the heartbeat timeout notices those in 3 s and the retry repeats the call
// with the same idempotency key. startToClose covers the provider timeout (5 s) and the DB.
const sendOptions: ActivityOptions = {
  startToCloseTimeout: '20 seconds',
  heartbeatTimeout: '3 seconds',
  retry: {
    initialInterval: '250 ms',
    backoffCoefficient: 2,
    maximumInterval: '2 seconds',
    maximumAttempts: 6,
    nonRetryableErrorTypes: [DeliveryErrorType.permanent, DeliveryErrorType.exhausted, ChallengeErrorType.notFound],
  },
};
// An outcome no provider took must land (the challenge row and delivery_failures say what
// happened): retry until it does. A provider that takes a send records it in sendDelivery. So
// must a missing receipt (the provider's circuit hears of it).
const recordOptions: LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

// A decoy (no recipient) records its outcome as a scheduled activity, not a local one: a local
// activity would run inside the workflow task that answers the initiate, so an unknown user's
// initiate would wait for one more database write than a real send, whose provider call is a
// scheduled activity too (a timing oracle). Both paths now end that task the same way.
const decoyOptions: ActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

const { planDelivery } = proxyLocalActivities<Activities>(planOptions);
const { recordDeliveryOutcome: recordDecoy } = proxyActivities<Activities>(decoyOptions);
const { recordDeliveryOutcome: record, noteMissingReceipt } = proxyLocalActivities<Activities>(recordOptions);
const { sendDelivery, resendOnBackup } = proxyActivities<Activities>(sendOptions);

/** A send's outcome; a send a provider took also says how long to wait for its receipt. */
export type DeliveredSend = DeliverySummary & { receiptDeadlineMs?: number };

interface StepFailure {
  provider: ProviderName;
  errorClass: ErrorClass;
  errorCode?: string;
}

/** What the send activity's failure says; a failure without details (a crash loop, no row) counts as transient. */
function stepFailure(err: unknown, provider: ProviderName): StepFailure {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (cause instanceof ApplicationFailure) {
    const details = cause.details?.[0] as SendFailureDetails | undefined;
    const errorClass: ErrorClass = cause.type === DeliveryErrorType.permanent ? 'permanent' : 'transient';
    return { provider, errorClass, errorCode: details?.errorCode ?? cause.type ?? undefined };
  }
  return { provider, errorClass: 'transient', errorCode: 'activity_failed' };
}

/**
 * One send (the n-th of a challenge), orchestrated here: plan (route + circuits) unless the
 * issue planned it already (the first send), then each planned provider in turn until one takes
 * the message; a permanent error stops at once (no failover). The outcome is recorded whatever
 * happened, so no challenge is left without one: a challenge that ended before any provider was
 * called is `skipped`.
 */
export async function deliverSend(
  challengeId: string,
  sendNumber: number,
  planned?: DeliveryPlan,
): Promise<DeliveredSend> {
  const plan = planned ?? (await planDelivery({ challengeId, sendNumber }));
  if (plan.kind === 'skipped') {
    await record({ challengeId, sendNumber, outcome: 'skipped' });
    return { outcome: 'skipped' };
  }
  if (plan.kind === 'no_recipient') {
    await recordDecoy({ challengeId, sendNumber, outcome: 'no_recipient', channelDown: plan.channelDown });
    return { outcome: 'no_recipient' };
  }
  let last: StepFailure | undefined;
  for (const step of plan.steps) {
    try {
      const sent = await sendDelivery({
        challengeId,
        sendNumber,
        provider: step.provider,
        maxCalls: step.maxCalls,
        primary: plan.primary,
        ...(last ? { failoverFrom: last.provider } : {}),
      });
      // the challenge ended meanwhile: what was tried so far is the outcome
      if (sent.outcome === 'skipped') break;
      return {
        outcome: sent.provider === plan.primary ? 'sent' : 'failed_over',
        provider: sent.provider,
        ...(sent.receiptDeadlineMs ? { receiptDeadlineMs: sent.receiptDeadlineMs } : {}),
      };
    } catch (err) {
      last = stepFailure(err, step.provider);
      log.warn('delivery step failed', {
        sendNumber,
        provider: step.provider,
        errorClass: last.errorClass,
        errorCode: last.errorCode,
        probe: step.probe,
      });
      if (last.errorClass === 'permanent') break;
    }
  }
  if (!last) {
    await record({ challengeId, sendNumber, outcome: 'skipped' });
    return { outcome: 'skipped' };
  }
  const failed = last;
  await record({
    challengeId,
    sendNumber,
    outcome: 'failed',
    provider: failed.provider,
    errorClass: failed.errorClass,
    errorCode: failed.errorCode,
  });
  return { outcome: 'failed', provider: failed.provider, errorClass: failed.errorClass };
}

/**
 * A send whose provider never reported it within the deadline: the silence counts against that
 * provider, and a send the primary took goes out once more through the backup, with the same
 * key and so the same secret. The re-send gets no receipt watch of its own and never changes a
 * send already recorded as sent into a failure: the primary's message may still arrive.
 */
export async function failoverOnMissingReceipt(input: ReceiptTimeoutInput): Promise<void> {
  const next = await noteMissingReceipt(input);
  if (next.action !== 'resend') {
    log.info('no receipt, no re-send', { sendNumber: input.sendNumber, provider: input.provider, reason: next.reason });
    return;
  }
  try {
    await resendOnBackup({
      challengeId: input.challengeId,
      sendNumber: input.sendNumber,
      provider: next.backup,
      maxCalls: next.maxCalls,
      primary: next.primary,
      failoverFrom: input.provider,
    });
  } catch (err) {
    const failed = stepFailure(err, next.backup);
    log.warn('receipt re-send failed', {
      sendNumber: input.sendNumber,
      provider: failed.provider,
      errorClass: failed.errorClass,
      errorCode: failed.errorCode,
    });
  }
}
