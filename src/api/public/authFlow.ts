/**
 * The public API's side of a challenge: guards, audit and metrics around src/auth/client.ts,
 * and each outcome's HTTP answer. Challenge state changes only through the challenge workflow;
 * the `auth_challenges` row is read to route a request and to answer once the workflow has ended.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuditEventType, logAudit, recordAudit } from '../../auth/audit';
import {
  ChallengeUnavailableError,
  countValidationAttempt,
  recordValidationAttempt,
  requestResend,
  startChallenge,
  validationAttemptEvent,
  verifyCandidate,
  type ChallengeDeps,
} from '../../auth/client';
import { aad, seal } from '../../auth/crypto';
import type { LimitedChallengeRow } from '../../auth/rateLimit';
import {
  CHALLENGE_ENDS,
  type AuthMethod,
  type ChallengeBinding,
  type ChallengeEnd,
  type ChallengeInput,
} from '../../shared/auth';
import { timeStage } from '../../telemetry/stages';
import { ApiError } from '../errors';
import {
  auditLogger,
  checkChallengeRateLimit,
  clientContext,
  enforceRateLimit,
  refuseOverLimit,
  type ClientContext,
} from './authGuards';
import { enforceChallengeAppLimit } from './appBinding';
import { enforceSendBudget, takeGuessOrRefuse, type GuessTicket, type SendTicket } from './budgetGuards';
import { assertChannelEnabled } from './channelGuard';
import { trustOf } from './deviceTrust';

type ChallengeRow = LimitedChallengeRow;

type Ended = ChallengeEnd;
const ENDED: readonly string[] = CHALLENGE_ENDS;

/** The stable error of each way a challenge can have ended. */
const ENDED_ERRORS: Record<Ended, { status: number; code: string; message: string; outcome: string }> = {
  verified: { status: 409, code: 'already_used', message: 'this challenge was already used', outcome: 'already_used' },
  expired: { status: 410, code: 'expired', message: 'this challenge has expired; start a new one', outcome: 'expired' },
  revoked: { status: 410, code: 'revoked', message: 'this challenge was revoked; start a new one', outcome: 'revoked' },
  locked: { status: 423, code: 'locked', message: 'too many wrong attempts; start a new challenge', outcome: 'locked' },
};

const OUTCOME_TO_END: Record<'already_used' | 'expired' | 'revoked' | 'locked', Ended> = {
  already_used: 'verified',
  expired: 'expired',
  revoked: 'revoked',
  locked: 'locked',
};

const notFound = () => new ApiError(404, 'not_found', 'no such challenge');

const challengeDeps = (app: FastifyInstance): ChallengeDeps => ({
  client: app.warden.temporal.client,
  db: app.warden.db,
  taskQueue: app.warden.config.temporal.taskQueue,
});

/** A challenge whose workflow was never started, or could not issue, sends nothing: its count goes back. */
function givingBack(send: SendTicket) {
  return async (err: unknown): Promise<never> => {
    if (err instanceof ChallengeUnavailableError) await send.giveBack();
    throw err;
  };
}

/** The workflow did not answer in time or could not issue: nothing to do but retry shortly. */
async function viaWorkflow<R>(work: () => Promise<R>): Promise<R> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ChallengeUnavailableError)
      throw new ApiError(503, 'unavailable', err.message, {}, { 'Retry-After': '5' });
    throw err;
  }
}

// ---- initiate -----------------------------------------------------------------------------

/**
 * Starts the challenge workflow and waits (update-with-start) until the challenge is issued,
 * so the row exists when the client gets its id. Unknown users and users without the needed
 * phone or email take exactly the same path: their challenge is issued like any other and
 * simply never delivered (no enumeration by status, shape or timing).
 */
export async function initiateChallenge(
  app: FastifyInstance,
  request: FastifyRequest,
  method: AuthMethod,
  userId: string,
  binding?: ChallengeBinding,
  client: ClientContext = clientContext(request),
) {
  const began = performance.now();
  await assertChannelEnabled(app, method);
  const device = trustOf(request);
  const { trusted } = await enforceRateLimit(app, client, { action: 'initiate', userId, method, device });
  const send = await enforceSendBudget(app, client, {
    action: 'initiate',
    userId,
    method,
    device: trusted ? device : undefined,
  });

  const { metrics } = app.warden;
  const settings = await timeStage(metrics, 'initiate', 'settings', () => app.warden.settings.challenge());
  const ttl = method === 'sms_otp' ? settings.otp_ttl_seconds : settings.magic_link_ttl_seconds;
  const challengeId = randomUUID();
  const input: ChallengeInput = {
    challengeId,
    userId,
    method,
    ipMasked: client.ipMasked,
    expiresAt: new Date(Date.now() + ttl * 1000).toISOString(),
    limits: {
      maxAttempts: settings.max_attempts,
      resendCooldownSeconds: settings.resend_cooldown_seconds,
      maxSends: settings.max_sends,
    },
    ...(binding ? { binding } : {}),
  };
  const started = await timeStage(metrics, 'initiate', 'workflow', () =>
    viaWorkflow(() => startChallenge(challengeDeps(app), input).catch(givingBack(send))),
  );
  if (!started.issued)
    request.log.warn({ challengeId }, 'challenge accepted before it was issued: no worker answered in time');
  metrics.generationDuration.observe({ method }, (performance.now() - began) / 1000);
  return { challenge_id: challengeId, expires_at: started.expiresAt };
}

// ---- verify -------------------------------------------------------------------------------

/** identity.auth.validation_attempt outcomes */
type ValidationOutcome =
  | 'success'
  | 'invalid_otp'
  | 'invalid_token'
  | 'expired'
  | 'locked'
  | 'not_found'
  | 'rate_limited'
  | 'already_used'
  | 'revoked';

async function recordValidation(
  app: FastifyInstance,
  client: ClientContext,
  input: {
    outcome: ValidationOutcome;
    method: AuthMethod;
    challengeId: string;
    row?: ChallengeRow;
    details?: Record<string, unknown>;
  },
): Promise<void> {
  const attempt = {
    outcome: input.outcome,
    method: input.method,
    challengeId: input.challengeId,
    userId: input.row?.user_id,
    ipMasked: client.ipMasked,
    details: input.details,
  };
  if (input.outcome === 'rate_limited') {
    // refused before any check: counted into the client's window, and on the challenge's counter
    await app.refusals.record(validationAttemptEvent(attempt));
    if (attempt.userId)
      await countValidationAttempt(app.warden.db.writer, { challengeId: input.challengeId, userId: attempt.userId });
    return;
  }
  const audit = await recordValidationAttempt(app.warden.db.writer, attempt);
  logAudit(auditLogger(app), audit);
}

function invalidError(method: AuthMethod, remaining: number): ApiError {
  return method === 'sms_otp'
    ? new ApiError(401, 'invalid_otp', 'the code is not correct', { remaining_attempts: remaining })
    : new ApiError(401, 'invalid_token', 'the link is not valid', { remaining_attempts: remaining });
}

/**
 * Checks a code or token. The candidate is sealed here (AES-256-GCM under the active data key,
 * bound to the challenge id) before it goes into the verify update, so it never enters
 * workflow history in plaintext. Exactly one validation_attempt audit event per answered
 * attempt (a blocked client's is written by the blocklist hook, before the body is even read;
 * refused ones, blocked or rate-limited, are counted per client and window: src/auth/refusals.ts);
 * a request that fails because Postgres cannot be reached records nothing and answers 503.
 */
export async function verifyChallenge(
  app: FastifyInstance,
  request: FastifyRequest,
  method: AuthMethod,
  challengeId: string,
  secret: string,
  client: ClientContext = clientContext(request),
): Promise<{ status: 'verified'; userId: string }> {
  const started = performance.now();
  const { metrics } = app.warden;
  let row: ChallengeRow | undefined;
  const finish = async (outcome: ValidationOutcome, details?: Record<string, unknown>) => {
    metrics.validationAttempts.inc({ method, outcome });
    metrics.validationDuration.observe({ method }, (performance.now() - started) / 1000);
    await timeStage(metrics, 'verify', 'audit', () =>
      recordValidation(app, client, { outcome, method, challengeId, row, details }),
    );
  };
  const endedAnswer = async (status: Ended): Promise<never> => {
    const e = ENDED_ERRORS[status];
    await finish(e.outcome as ValidationOutcome);
    throw new ApiError(e.status, e.code, e.message);
  };

  // attempts on unknown challenges count against the IP: an enumeration attack
  const device = trustOf(request);
  const limited = await checkChallengeRateLimit(app, client, { action: 'verify', method, challengeId, device });
  row = limited.row;
  try {
    await refuseOverLimit(
      app,
      client,
      { action: 'verify', userId: row?.user_id, method, challengeId },
      limited.decision,
    );
  } catch (err) {
    await finish('rate_limited');
    throw err;
  }
  if (!row) {
    await finish('not_found');
    throw notFound();
  }
  if (ENDED.includes(row.status)) return endedAnswer(row.status as Ended);
  let guess: GuessTicket | undefined;
  try {
    await enforceChallengeAppLimit(app, row.client_id);
    guess = await takeGuessOrRefuse(app, client, {
      method,
      userId: row.user_id,
      challengeId,
      device: limited.trusted ? device : undefined,
    });
  } catch (err) {
    await finish('rate_limited');
    throw err;
  }

  const candidate = await timeStage(metrics, 'verify', 'seal', async () => {
    const key = await app.warden.keys.active();
    return { keyId: key.id, blob: seal(key.seal, secret, aad.candidate(challengeId)).toString('base64') };
  });
  const answer = await timeStage(metrics, 'verify', 'workflow', () =>
    viaWorkflow(() => verifyCandidate(challengeDeps(app), challengeId, candidate)),
  );
  // a verify that failed before the answer stays a counted guess: the code may have been compared
  await guess?.settle('gone' in answer ? 'gone' : answer.result);
  if ('gone' in answer) {
    // the workflow ended between our read and the update: the row has the answer
    row = answer.gone ?? row;
    if (ENDED.includes(row.status)) return endedAnswer(row.status as Ended);
    await finish('not_found');
    throw notFound();
  }
  const result = answer.result;

  const invalidOutcome: ValidationOutcome = method === 'sms_otp' ? 'invalid_otp' : 'invalid_token';
  switch (result.outcome) {
    case 'verified':
      await finish('success');
      return { status: 'verified', userId: result.userId };
    case 'invalid':
      await finish(invalidOutcome, { remaining_attempts: result.remainingAttempts });
      throw invalidError(method, result.remainingAttempts);
    case 'locked':
      if (result.lockedByThisAttempt) {
        await finish(invalidOutcome, { remaining_attempts: 0, locked: true });
        throw new ApiError(423, 'locked', ENDED_ERRORS.locked.message, { remaining_attempts: 0 });
      }
      return endedAnswer('locked');
    default:
      return endedAnswer(OUTCOME_TO_END[result.outcome]);
  }
}

// ---- resend -------------------------------------------------------------------------------

/** Same challenge, same attempt budget: the workflow enforces the cooldown and the cap. */
export async function resendChallenge(
  app: FastifyInstance,
  request: FastifyRequest,
  method: AuthMethod,
  challengeId: string,
  client: ClientContext = clientContext(request),
) {
  await assertChannelEnabled(app, method);
  // a resend sends a message: it counts with initiates
  const device = trustOf(request);
  const limited = await checkChallengeRateLimit(app, client, { action: 'initiate', method, challengeId, device });
  const { row } = limited;
  await refuseOverLimit(
    app,
    client,
    { action: 'initiate', userId: row?.user_id, method, challengeId },
    limited.decision,
  );
  if (!row) throw notFound();
  const endedError = (status: Ended) => {
    const e = ENDED_ERRORS[status];
    return new ApiError(e.status, e.code, e.message);
  };
  if (ENDED.includes(row.status)) throw endedError(row.status as Ended);
  const send = await enforceSendBudget(app, client, {
    action: 'resend',
    userId: row.user_id,
    method,
    challengeId,
    device: limited.trusted ? device : undefined,
  });

  // a resend that timed out may have been queued: only an answer that queued nothing gives it back
  const answer = await viaWorkflow(() => requestResend(challengeDeps(app), challengeId));
  if (!('result' in answer) || answer.result.outcome !== 'queued') await send.giveBack();
  if ('gone' in answer) {
    if (answer.gone && ENDED.includes(answer.gone.status)) throw endedError(answer.gone.status as Ended);
    throw notFound();
  }
  const result = answer.result;
  await recordAudit(app.warden.db, auditLogger(app), {
    type: AuditEventType.resendRequested,
    outcome: result.outcome,
    challengeId,
    userId: row.user_id,
    method,
    ipMasked: client.ipMasked,
  });
  switch (result.outcome) {
    case 'queued':
      return { challenge_id: challengeId, expires_at: result.expiresAt, sends_remaining: result.sendsRemaining };
    case 'cooldown':
      throw new ApiError(
        429,
        'resend_cooldown',
        `wait ${result.retryAfterSeconds} s before asking for another message`,
        { retry_after_seconds: result.retryAfterSeconds },
        { 'Retry-After': String(result.retryAfterSeconds) },
      );
    case 'limit_reached':
      throw new ApiError(
        409,
        'resend_limit_reached',
        'no more messages can be sent for this challenge; start a new one',
      );
    default:
      throw endedError(OUTCOME_TO_END[result.outcome]);
  }
}
