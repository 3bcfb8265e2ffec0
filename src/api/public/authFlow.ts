import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuditEventType, insertAudit, logAudit, recordAudit } from '../../auth/audit';
import { aad, seal } from '../../auth/crypto';
import type { LimitedChallengeRow } from '../../auth/rateLimit';
import {
  awaitIssueUpdate,
  challengeWorkflowId,
  CHALLENGE_WORKFLOW_TYPE,
  resendUpdate,
  verifyUpdate,
  type AuthMethod,
  type ChallengeInput,
  type VerifyResult,
} from '../../shared/auth';
import type { challengeWorkflow } from '../../workflows/auth/challenge';
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
import { assertChannelEnabled } from './channelGuard';

/**
 * The public API's side of a challenge. It never reads or writes challenge state itself except
 * through the challenge workflow; the `auth_challenges` row is read to route a request and to
 * answer once the workflow has ended.
 */
type ChallengeRow = LimitedChallengeRow;

type Ended = 'verified' | 'expired' | 'revoked' | 'locked';
const ENDED: readonly string[] = ['verified', 'expired', 'revoked', 'locked'];

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

async function loadChallenge(app: FastifyInstance, challengeId: string): Promise<ChallengeRow | undefined> {
  const { rows } = await app.warden.db.query<ChallengeRow>(
    'SELECT user_id, method, status, expires_at FROM auth_challenges WHERE id = $1',
    [challengeId],
  );
  return rows[0];
}

const notFound = () => new ApiError(404, 'not_found', 'no such challenge');

/** How long a request waits for its challenge workflow (a worker outage must not pile up requests). */
const WORKFLOW_DEADLINE_MS = 10_000;

async function viaWorkflow<R>(app: FastifyInstance, fn: () => Promise<R>): Promise<R> {
  try {
    return await app.warden.temporal.client.withDeadline(Date.now() + WORKFLOW_DEADLINE_MS, fn);
  } catch (err) {
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      throw new ApiError(
        503,
        'unavailable',
        'the challenge service did not answer in time; try again shortly',
        {},
        { 'Retry-After': '5' },
      );
    }
    throw err;
  }
}

/**
 * Whether the challenge workflow exists. Update-with-start only reports the start together with
 * the update's acceptance, which needs a worker; the server may have started the workflow anyway.
 */
async function workflowStarted(app: FastifyInstance, challengeId: string): Promise<boolean> {
  const { client } = app.warden.temporal;
  return client
    .withDeadline(Date.now() + 3000, () => client.workflow.getHandle(challengeWorkflowId(challengeId)).describe())
    .then(
      () => true,
      () => false,
    );
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
) {
  const started = performance.now();
  const client = clientContext(request);
  await assertChannelEnabled(app, method);
  await enforceRateLimit(app, client, { action: 'initiate', userId, method });

  const { config, temporal, metrics } = app.warden;
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
  };
  const startWorkflowOperation = new WithStartWorkflowOperation<typeof challengeWorkflow>(CHALLENGE_WORKFLOW_TYPE, {
    workflowId: challengeWorkflowId(challengeId),
    taskQueue: config.temporal.taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'FAIL',
  });
  try {
    const issued = await timeStage(metrics, 'initiate', 'workflow', () =>
      temporal.client
        .withDeadline(Date.now() + WORKFLOW_DEADLINE_MS, () =>
          temporal.client.workflow.executeUpdateWithStart(awaitIssueUpdate, { args: [{}], startWorkflowOperation }),
        )
        .catch(async (err: unknown) => {
          // The workflow was started but no worker issued it in time (overload, a worker restart):
          // it issues and delivers as soon as a worker takes it, so the request was accepted.
          // Answering 503 here would make the client start a second challenge and get two messages.
          if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError && (await workflowStarted(app, challengeId))) {
            request.log.warn({ challengeId }, 'challenge accepted before it was issued: no worker answered in time');
            return { expiresAt: input.expiresAt };
          }
          throw err;
        }),
    );
    metrics.generationDuration.observe({ method }, (performance.now() - started) / 1000);
    return { challenge_id: challengeId, expires_at: issued.expiresAt };
  } catch (err) {
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      throw new ApiError(
        503,
        'unavailable',
        'the challenge service did not answer in time; try again shortly',
        {},
        { 'Retry-After': '5' },
      );
    }
    if (err instanceof WorkflowUpdateFailedError) {
      throw new ApiError(
        503,
        'unavailable',
        'the challenge could not be issued; try again shortly',
        {},
        { 'Retry-After': '5' },
      );
    }
    throw err;
  }
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
  const { row } = input;
  // the seed's forensic table: every attempt per challenge, flagged once it hits an expired one;
  // counted in the same statement as the audit row (one round trip, both or neither)
  const attempt = row
    ? {
        sql: `INSERT INTO challenge_validation_attempts AS a (challenge_id, user_id, validation_attempts, last_attempt_at, challenge_expired)
              VALUES ($11, $12, 1, now(), $13)
              ON CONFLICT (challenge_id) DO UPDATE SET validation_attempts = a.validation_attempts + 1,
                last_attempt_at = now(), challenge_expired = a.challenge_expired OR EXCLUDED.challenge_expired`,
        values: [input.challengeId, row.user_id, input.outcome === 'expired'],
      }
    : undefined;
  const audit = await insertAudit(
    app.warden.db.writer,
    {
      type: AuditEventType.validationAttempt,
      outcome: input.outcome,
      challengeId: input.challengeId,
      userId: row?.user_id,
      method: input.method,
      ipMasked: client.ipMasked,
      details: input.details,
    },
    attempt,
  );
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
 * attempt (a blocked client's is written by the blocklist hook, before the body is even read);
 * a request that fails because Postgres cannot be reached records nothing and answers 503.
 */
export async function verifyChallenge(
  app: FastifyInstance,
  request: FastifyRequest,
  method: AuthMethod,
  challengeId: string,
  secret: string,
) {
  const started = performance.now();
  const client = clientContext(request);
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

  // attempts on unknown challenges count against the IP: the seed's enumeration attack
  const limited = await checkChallengeRateLimit(app, client, { action: 'verify', method, challengeId });
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

  const candidate = await timeStage(metrics, 'verify', 'seal', async () => {
    const key = await app.warden.keys.active();
    return { keyId: key.id, blob: seal(key.seal, secret, aad.candidate(challengeId)).toString('base64') };
  });
  let result: VerifyResult;
  try {
    const handle = app.warden.temporal.client.workflow.getHandle(challengeWorkflowId(challengeId));
    result = await timeStage(metrics, 'verify', 'workflow', () =>
      viaWorkflow(app, () => handle.executeUpdate(verifyUpdate, { args: [{ candidate }] })),
    );
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    // the workflow ended between our read and the update: the row has the answer
    row = (await loadChallenge(app, challengeId)) ?? row;
    if (ENDED.includes(row.status)) return endedAnswer(row.status as Ended);
    await finish('not_found');
    throw notFound();
  }

  const invalidOutcome: ValidationOutcome = method === 'sms_otp' ? 'invalid_otp' : 'invalid_token';
  switch (result.outcome) {
    case 'verified':
      await finish('success');
      return { status: 'verified' as const, user_id: result.userId };
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
) {
  const client = clientContext(request);
  await assertChannelEnabled(app, method);
  // a resend sends a message: it counts with initiates
  const limited = await checkChallengeRateLimit(app, client, { action: 'initiate', method, challengeId });
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

  let result;
  try {
    const handle = app.warden.temporal.client.workflow.getHandle(challengeWorkflowId(challengeId));
    result = await viaWorkflow(app, () => handle.executeUpdate(resendUpdate, { args: [{}] }));
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    const now = await loadChallenge(app, challengeId);
    if (now && ENDED.includes(now.status)) throw endedError(now.status as Ended);
    throw notFound();
  }
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
