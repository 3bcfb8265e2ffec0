import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import {
  awaitIssueUpdate,
  challengeStateQuery,
  resendUpdate,
  revokeSignal,
  verifyUpdate,
  REVOKE_REASONS,
  type ChallengeEnd,
  type ChallengeInput,
  type ChallengeResult,
  type ChallengeState,
  type InvalidationReason,
  type ResendResult,
  type RevokeInput,
  type VerifyInput,
  type VerifyResult,
} from '../../shared/auth';
import { redeliverUpdate, type DeliveryPlan, type RedeliverInput, type RedeliverResult } from '../../shared/delivery';
import { deliverSend } from '../delivery/deliver';

// Issuing answers the waiting initiate request: retry briefly, then fail it (the API says 503).
// It runs as a local activity inside the first workflow task, so the initiate answer costs one
// workflow task and no activity task round trip through the server.
const issueOptions: ActivityOptions & LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: {
    initialInterval: '200 ms',
    backoffCoefficient: 2,
    maximumInterval: '2 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['DataKeyUnavailableError'],
  },
};
// The verify path runs as local activities: no server round trip per step (p95 < 200 ms).
// A missing row cannot appear by retrying.
const checkOptions: LocalActivityOptions = {
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '100 ms', maximumAttempts: 3, nonRetryableErrorTypes: ['ChallengeNotFoundError'] },
};
// An end must land (it wipes the sealed secret): retry until it does.
const endOptions: ActivityOptions & LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: {
    initialInterval: '500 ms',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes: ['ChallengeNotFoundError'],
  },
};

const { issueChallenge } = proxyActivities<Activities>(issueOptions);
const { issueChallenge: issueChallengeLocally } = proxyLocalActivities<Activities>(issueOptions);
/** Challenges started before the local issue replay their scheduled issue activity. */
const LOCAL_ISSUE_PATCH = 'issue-as-local-activity';
/** Challenges revoked before the local end replay their scheduled end activity. */
const LOCAL_REVOKE_PATCH = 'revoke-as-local-activity';
/**
 * Since this patch a challenge takes fewer steps (3 workflow activations fewer, the same
 * effects): the issue also plans the first send, the send activity records the outcome a
 * provider's acceptance makes, and a verify attempt is one local activity that compares and
 * ends or counts. It implies both patches above, so a new challenge records one marker.
 * Challenges recorded before it replay the older steps (test/workflow/challenge-replay.test.ts).
 */
const FOLDED_STEPS_PATCH = 'challenge-folded-steps';
const { endChallenge } = proxyActivities<Activities>(endOptions);
const local = proxyLocalActivities<Activities>(checkOptions);
const localEnd = proxyLocalActivities<Activities>(endOptions);

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
  private status: 'pending' | ChallengeEnd = 'pending';
  private reason: InvalidationReason = 'expired';
  private attempts = 0;
  private sends = 0;
  private lastSendAt = 0;
  private readonly sendQueue: number[] = [];
  /** failure id -> the send number its redelivery got (a repeated request queues nothing) */
  private readonly redelivered = new Map<string, number>();
  private locked = false;
  private readonly expiresAtMs: number;
  /** FOLDED_STEPS_PATCH applies (decided once, before the issue) */
  private folded = false;
  /** the first send's plan, made with the issue */
  private firstPlan: DeliveryPlan | undefined;

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
    setHandler(challengeStateQuery, () => this.state());
  }

  async run(): Promise<ChallengeResult> {
    const { challengeId, userId, method, ipMasked, expiresAt, limits } = this.input;
    try {
      this.folded = patched(FOLDED_STEPS_PATCH);
      const issue = this.folded || patched(LOCAL_ISSUE_PATCH) ? issueChallengeLocally : issueChallenge;
      const issued = await issue({
        challengeId,
        userId,
        method,
        ipMasked,
        expiresAt,
        maxAttempts: limits.maxAttempts,
        ...(this.folded ? { planFirstSend: true } : {}),
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
    return this.status !== 'pending';
  }

  private async untilIssued(): Promise<void> {
    await condition(() => this.issued || this.issueFailed);
    if (!this.issued) throw ApplicationFailure.nonRetryable('the challenge could not be issued', 'ChallengeNotIssued');
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

  private async end(
    status: ChallengeEnd,
    reason: InvalidationReason,
    fast: boolean,
    incidentId?: string,
  ): Promise<void> {
    this.settle(status, reason);
    const args = {
      challengeId: this.input.challengeId,
      status,
      reason,
      attempts: this.attempts,
      ...(incidentId ? { incidentId } : {}),
    };
    await (fast ? localEnd.endChallenge(args) : endChallenge(args));
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
      if (!this.ended) await this.end('expired', 'expired', false);
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
      const plan = sendNumber === 1 ? this.firstPlan : undefined;
      const delivery = await deliverSend(this.input.challengeId, sendNumber, {
        ...(plan ? { plan } : {}),
        recordInSend: this.folded,
      });
      if (delivery.outcome === 'failed')
        log.warn('challenge delivery failed', {
          sendNumber,
          provider: delivery.provider,
          errorClass: delivery.errorClass,
        });
    }
  }

  private async verify({ candidate }: VerifyInput): Promise<VerifyResult> {
    await this.untilIssued();
    return this.withLock(async (): Promise<VerifyResult> => {
      if (this.ended) return this.endedOutcome();
      if (Date.now() >= this.expiresAtMs) {
        await this.end('expired', 'expired', true);
        return { outcome: 'expired' };
      }
      if (this.folded) return this.attempt(candidate);
      const { challengeId, userId, limits } = this.input;
      const { match } = await local.checkChallengeSecret({ challengeId, candidate });
      this.attempts += 1;
      if (match) {
        await this.end('verified', 'used', true);
        return { outcome: 'verified', userId };
      }
      const remainingAttempts = Math.max(0, limits.maxAttempts - this.attempts);
      if (remainingAttempts === 0) {
        await this.end('locked', 'locked', true);
        return { outcome: 'locked', lockedByThisAttempt: true };
      }
      await local.recordChallengeAttempt({ challengeId, attempts: this.attempts });
      return { outcome: 'invalid', remainingAttempts };
    });
  }

  /** A verify attempt as one local activity (FOLDED_STEPS_PATCH): it compares, then ends or counts. */
  private async attempt(candidate: VerifyInput['candidate']): Promise<VerifyResult> {
    const { challengeId, userId, limits } = this.input;
    const attempts = this.attempts + 1;
    const { match } = await local.attemptChallenge({
      challengeId,
      candidate,
      attempts,
      maxAttempts: limits.maxAttempts,
    });
    this.attempts = attempts;
    if (match) {
      this.settle('verified', 'used');
      return { outcome: 'verified', userId };
    }
    const remainingAttempts = Math.max(0, limits.maxAttempts - attempts);
    if (remainingAttempts > 0) return { outcome: 'invalid', remainingAttempts };
    this.settle('locked', 'locked');
    return { outcome: 'locked', lockedByThisAttempt: true };
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
      // a local activity: a mass revocation (a compromised-token response for thousands of
      // users) costs one workflow task per challenge instead of an activity round trip too
      if (!this.ended)
        await this.end(
          'revoked',
          why,
          this.folded || patched(LOCAL_REVOKE_PATCH),
          typeof incidentId === 'string' ? incidentId : undefined,
        );
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
