import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  log,
  proxyLocalActivities,
  setHandler,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { ProviderName } from '../../providers/types';
import {
  awaitIssueUpdate,
  challengeStateQuery,
  resendUpdate,
  revokeSignal,
  verifyUpdate,
  CHALLENGE_OPEN,
  ChallengeErrorType,
  REVOKE_REASONS,
  type ChallengeEnd,
  type ChallengeInput,
  type ChallengeResult,
  type ChallengeState,
  type ChallengeStatus,
  type InvalidationReason,
  type ResendResult,
  type RevokeInput,
  type VerifyInput,
  type VerifyResult,
} from '../../shared/auth';
import { redeliverUpdate, type DeliveryPlan, type RedeliverInput, type RedeliverResult } from '../../shared/delivery';
import { deliverSend, failoverOnMissingReceipt } from '../delivery/deliver';
import { deliveryReceiptSignal, type DeliveryReceipt } from '../delivery/receipt';

// The challenge's own steps run as local activities: no activity task round trip through the
// server per step, so an initiate costs one workflow task, a verify stays well inside its 200 ms
// p95, and a mass revocation (a compromised-token response) one workflow task per challenge.

// Issuing answers the waiting initiate request: retry briefly, then fail it (the API says 503).
const issueOptions: LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: {
    initialInterval: '200 ms',
    backoffCoefficient: 2,
    maximumInterval: '2 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [ChallengeErrorType.dataKeyUnavailable],
  },
};
// A verify answers a waiting request: a few quick retries. A missing row cannot appear by retrying.
const attemptOptions: LocalActivityOptions = {
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '100 ms', maximumAttempts: 3, nonRetryableErrorTypes: [ChallengeErrorType.notFound] },
};
// An end must land (it wipes the sealed secret): retry until it does.
const endOptions: LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: {
    initialInterval: '500 ms',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes: [ChallengeErrorType.notFound],
  },
};

const { issueChallenge } = proxyLocalActivities<Activities>(issueOptions);
const { attemptChallenge } = proxyLocalActivities<Activities>(attemptOptions);
const { endChallenge } = proxyLocalActivities<Activities>(endOptions);

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BLOB = /^[A-Za-z0-9+/]{40,512}={0,2}$/;

/** Rejected updates never reach history: malformed input costs nothing. */
function validateVerify(input: VerifyInput): void {
  const candidate = input?.candidate;
  if (
    !candidate ||
    typeof candidate.keyId !== 'string' ||
    !KEY_ID.test(candidate.keyId) ||
    typeof candidate.blob !== 'string' ||
    !BLOB.test(candidate.blob)
  ) {
    throw new Error('verify needs a sealed candidate');
  }
}

function validateRedeliver(input: RedeliverInput): void {
  if (
    typeof input?.failureId !== 'string' ||
    !/^\d{1,18}$/.test(input.failureId) ||
    !Number.isInteger(input.failedSendNumber) ||
    input.failedSendNumber < 1
  ) {
    throw new Error('redeliver needs a failure id and the failed send number');
  }
}

/**
 * One challenge's life: issue, deliver, then verify / resend / revoke until it ends by
 * success, lockout, revocation or expiry. Checks and ends are serialised by a small lock, so
 * two concurrent correct guesses cannot both succeed and an expiry cannot interleave a check.
 */
export class ChallengeMachine {
  private issued = false;
  private issueFailed = false;
  private status: ChallengeStatus = CHALLENGE_OPEN;
  private reason: InvalidationReason = 'expired';
  private attempts = 0;
  private sends = 0;
  private lastSendAt = 0;
  private readonly sendQueue: number[] = [];
  /** failure id -> the send number its redelivery got (a repeated request queues nothing) */
  private readonly redelivered = new Map<string, number>();
  private locked = false;
  private readonly expiresAtMs: number;
  /** the first send's plan, made with the issue */
  private firstPlan: DeliveryPlan | undefined;
  /** sends a provider reported on (delivered or failed), from the callbacks' receipt signal */
  private readonly reported = new Set<number>();
  private deliveredOnce = false;

  constructor(private readonly input: ChallengeInput) {
    this.expiresAtMs = Date.parse(input.expiresAt);
    setHandler(awaitIssueUpdate, async () => {
      await this.untilIssued();
      return { expiresAt: input.expiresAt };
    });
    setHandler(verifyUpdate, (update) => this.verify(update), { validator: validateVerify });
    setHandler(resendUpdate, () => this.resend());
    setHandler(redeliverUpdate, (update) => this.redeliver(update), { validator: validateRedeliver });
    setHandler(revokeSignal, (signal) => this.revoke(signal));
    setHandler(deliveryReceiptSignal, (receipt) => this.receipt(receipt));
    setHandler(challengeStateQuery, () => this.state());
  }

  async run(): Promise<ChallengeResult> {
    const { challengeId, userId, method, ipMasked, expiresAt, limits } = this.input;
    try {
      const issued = await issueChallenge({
        challengeId,
        userId,
        method,
        ipMasked,
        expiresAt,
        maxAttempts: limits.maxAttempts,
        binding: this.input.binding,
      });
      this.firstPlan = issued.plan;
      this.issued = true;
    } catch (err) {
      this.issueFailed = true;
      await condition(allHandlersFinished);
      throw err;
    }
    this.queueSend();
    await Promise.all([this.expiry(), this.deliveries()]);
    await condition(allHandlersFinished);
    return { status: this.status as ChallengeEnd, reason: this.reason, attempts: this.attempts, sends: this.sends };
  }

  private get ended(): boolean {
    return this.status !== CHALLENGE_OPEN;
  }

  private async untilIssued(): Promise<void> {
    await condition(() => this.issued || this.issueFailed);
    if (!this.issued)
      throw ApplicationFailure.nonRetryable('the challenge could not be issued', ChallengeErrorType.notIssued);
  }

  /** `condition` may wake several waiters at once: each re-checks before taking the lock. */
  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    while (this.locked) await condition(() => !this.locked);
    this.locked = true;
    try {
      return await fn();
    } finally {
      this.locked = false;
    }
  }

  private settle(status: ChallengeEnd, reason: InvalidationReason): void {
    this.status = status;
    this.reason = reason;
  }

  private async end(status: ChallengeEnd, reason: InvalidationReason, incidentId?: string): Promise<void> {
    this.settle(status, reason);
    await endChallenge({
      challengeId: this.input.challengeId,
      status,
      reason,
      attempts: this.attempts,
      ...(incidentId ? { incidentId } : {}),
    });
  }

  private endedOutcome():
    { outcome: 'expired' } | { outcome: 'already_used' } | { outcome: 'revoked' } | { outcome: 'locked' } {
    if (this.status === 'verified') return { outcome: 'already_used' };
    if (this.status === 'locked') return { outcome: 'locked' };
    if (this.status === 'revoked') return { outcome: 'revoked' };
    return { outcome: 'expired' };
  }

  private async expiry(): Promise<void> {
    const remaining = this.expiresAtMs - Date.now();
    const endedFirst = remaining > 0 && (await condition(() => this.ended, remaining));
    if (endedFirst) return;
    await this.withLock(async () => {
      if (!this.ended) await this.end('expired', 'expired');
    });
  }

  private queueSend(): void {
    this.sends += 1;
    this.lastSendAt = Date.now();
    this.sendQueue.push(this.sends);
  }

  private async deliveries(): Promise<void> {
    for (;;) {
      await condition(() => this.ended || this.sendQueue.length > 0);
      const sendNumber = this.sendQueue.shift();
      if (this.ended || sendNumber === undefined) return;
      // provider order, retries and failover live in deliverSend; its outcome is on the row
      const delivery = await deliverSend(
        this.input.challengeId,
        sendNumber,
        sendNumber === 1 ? this.firstPlan : undefined,
      );
      if (delivery.outcome === 'failed')
        log.warn('challenge delivery failed', {
          sendNumber,
          provider: delivery.provider,
          errorClass: delivery.errorClass,
        });
      if (delivery.provider && delivery.receiptDeadlineMs)
        await this.watchReceipt(sendNumber, delivery.provider, delivery.receiptDeadlineMs);
    }
  }

  /**
   * A durable timer against the send's receipt: a provider that took the message and says
   * nothing (no delivered, no failed report) within the deadline is treated as having lost it,
   * and the send goes out once more through the backup (failoverOnMissingReceipt). The watch
   * ends quietly when a receipt arrives (a failed one takes the failure path: the failure row,
   * ready to be resent), when any send was delivered, when the challenge ends, or when a newer
   * send is queued (it carries the same secret and gets its own watch).
   */
  private async watchReceipt(sendNumber: number, provider: ProviderName, deadlineMs: number): Promise<void> {
    const settled = () =>
      this.ended || this.deliveredOnce || this.reported.has(sendNumber) || this.sendQueue.length > 0;
    if (settled() || (await condition(settled, deadlineMs))) return;
    await failoverOnMissingReceipt({ challengeId: this.input.challengeId, sendNumber, provider });
  }

  /** A signal has no validator: anything but a well-formed receipt is ignored. */
  private receipt(receipt: DeliveryReceipt): void {
    if (!Number.isInteger(receipt?.sendNumber)) return;
    if (receipt.outcome === 'delivered') this.deliveredOnce = true;
    else if (receipt.outcome === 'failed') this.reported.add(receipt.sendNumber);
  }

  private async verify({ candidate }: VerifyInput): Promise<VerifyResult> {
    await this.untilIssued();
    return this.withLock(async (): Promise<VerifyResult> => {
      if (this.ended) return this.endedOutcome();
      if (Date.now() >= this.expiresAtMs) {
        await this.end('expired', 'expired');
        return { outcome: 'expired' };
      }
      // the activity compares, decides (decideAttempt) and ends or counts on the row; this settles on its decision
      const attempts = this.attempts + 1;
      const decision = await attemptChallenge({
        challengeId: this.input.challengeId,
        candidate,
        attempts,
        maxAttempts: this.input.limits.maxAttempts,
      });
      this.attempts = attempts;
      if (decision.outcome === 'invalid') return decision;
      this.settle(decision.end.status, decision.end.reason);
      if (decision.outcome === 'revoked') return { outcome: 'revoked' };
      if (decision.outcome === 'locked') return { outcome: 'locked', lockedByThisAttempt: true };
      return { outcome: 'verified', userId: this.input.userId };
    });
  }

  private async resend(): Promise<ResendResult> {
    await this.untilIssued();
    if (this.ended) return this.endedOutcome();
    if (Date.now() >= this.expiresAtMs) return { outcome: 'expired' };
    const { maxSends, resendCooldownSeconds } = this.input.limits;
    if (this.sends >= maxSends) return { outcome: 'limit_reached', sends: this.sends };
    const waitMs = this.lastSendAt + resendCooldownSeconds * 1000 - Date.now();
    if (waitMs > 0) return { outcome: 'cooldown', retryAfterSeconds: Math.ceil(waitMs / 1000) };
    this.queueSend();
    return {
      outcome: 'queued',
      sends: this.sends,
      sendsRemaining: maxSends - this.sends,
      expiresAt: this.input.expiresAt,
    };
  }

  /** A responder's resend after an outage: no cooldown or send cap (the failure was ours), once per failure. */
  private async redeliver({ failureId, failedSendNumber }: RedeliverInput): Promise<RedeliverResult> {
    await this.untilIssued();
    const done = this.redelivered.get(failureId);
    if (done !== undefined) return { outcome: 'queued', sendNumber: done, duplicate: true };
    if (this.ended) return this.endedOutcome();
    if (Date.now() >= this.expiresAtMs) return { outcome: 'expired' };
    if (this.sends > failedSendNumber) return { outcome: 'superseded', sendNumber: this.sends };
    this.queueSend();
    this.redelivered.set(failureId, this.sends);
    return { outcome: 'queued', sendNumber: this.sends, duplicate: false };
  }

  private async revoke({ reason, incidentId }: RevokeInput): Promise<void> {
    await condition(() => this.issued || this.issueFailed);
    if (!this.issued) return;
    // a signal has no validator: an unknown reason is recorded as a manual revoke
    const why = REVOKE_REASONS.includes(reason) ? reason : 'manual_revoke';
    await this.withLock(async () => {
      if (!this.ended) await this.end('revoked', why, typeof incidentId === 'string' ? incidentId : undefined);
    });
  }

  private state(): ChallengeState {
    return {
      issued: this.issued,
      status: this.status,
      attempts: this.attempts,
      maxAttempts: this.input.limits.maxAttempts,
      sends: this.sends,
      expiresAt: this.input.expiresAt,
    };
  }
}
