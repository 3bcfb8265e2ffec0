/**
 * The client side of challenges, used by the public API: starting a challenge workflow and
 * waiting until it is issued, sending it a verify or resend, and the `auth_challenges` reads
 * that route a request or answer once the workflow has ended. Every call to the workflow has a
 * deadline (a worker outage must not pile up requests); failing it is ChallengeUnavailableError.
 */
import { randomUUID } from 'node:crypto';
import {
  ServiceError,
  WithStartWorkflowOperation,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Database, Queryable } from '../db/database';
import {
  awaitIssueUpdate,
  challengeWorkflowId,
  CHALLENGE_WORKFLOW_TYPE,
  resendUpdate,
  verifyUpdate,
  type AuthMethod,
  type ChallengeInput,
  type ResendResult,
  type SealedCandidate,
  type VerifyResult,
} from '../shared/auth';
import type { challengeWorkflow } from '../workflows/auth/challenge';
import { AuditEventType, insertAudit, type AuditEvent, type AuditRow } from './audit';
import type { LimitedChallengeRow } from './rateLimit';

export interface ChallengeDeps {
  client: Client;
  db: Database;
  taskQueue: string;
}

/** How long a request waits for its challenge workflow. */
const WORKFLOW_DEADLINE_MS = 10_000;

/** The challenge workflow did not answer in time, or could not issue: the client should retry. */
export class ChallengeUnavailableError extends Error {
  override name = 'ChallengeUnavailableError';
}

const timedOut = () => new ChallengeUnavailableError('the challenge service did not answer in time; try again shortly');

async function withDeadline<R>(deps: ChallengeDeps, fn: () => Promise<R>, ms = WORKFLOW_DEADLINE_MS): Promise<R> {
  return deps.client.withDeadline(Date.now() + ms, fn);
}

/**
 * Whether the challenge workflow exists. Update-with-start only reports the start together with
 * the update's acceptance, which needs a worker; the server may have started the workflow anyway.
 */
async function workflowStarted(deps: ChallengeDeps, challengeId: string): Promise<boolean> {
  return withDeadline(
    deps,
    () => deps.client.workflow.getHandle(challengeWorkflowId(challengeId)).describe(),
    3000,
  ).then(
    () => true,
    () => false,
  );
}

/**
 * Starts `challenge-<id>` (a second start of the same id fails) and waits until the challenge is
 * issued, so its row exists when the caller answers. `issued: false`: the workflow was started
 * but no worker issued it in time (overload, a worker restart); it issues and delivers as soon
 * as a worker takes it, so the request was accepted, and refusing it would make the caller
 * start a second challenge and get two messages.
 */
export async function startChallenge(
  deps: ChallengeDeps,
  input: ChallengeInput,
): Promise<{ expiresAt: string; issued: boolean }> {
  const startWorkflowOperation = new WithStartWorkflowOperation<typeof challengeWorkflow>(CHALLENGE_WORKFLOW_TYPE, {
    workflowId: challengeWorkflowId(input.challengeId),
    taskQueue: deps.taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'FAIL',
  });
  try {
    const issued = await withDeadline(deps, () =>
      deps.client.workflow.executeUpdateWithStart(awaitIssueUpdate, { args: [{}], startWorkflowOperation }),
    );
    return { expiresAt: issued.expiresAt, issued: true };
  } catch (err) {
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      if (await workflowStarted(deps, input.challengeId)) return { expiresAt: input.expiresAt, issued: false };
      throw timedOut();
    }
    if (err instanceof WorkflowUpdateFailedError)
      throw new ChallengeUnavailableError('the challenge could not be issued; try again shortly');
    throw err;
  }
}

/** How often an update the server could not take is sent again, and the pause before each. */
const UPDATE_RETRY_PAUSES_MS = [50, 100, 200, 400, 800, 1600];

/**
 * Sends an update to a challenge's workflow. `gone`: the workflow has ended (or never existed);
 * the row, read again, says how it ended, if it exists.
 *
 * The server may refuse to take an update for a moment (Unavailable), most often because the
 * workflow task carrying it could not complete: another event, a delivery receipt, landed at
 * the same instant, and the server aborted the task's updates. The update is then sent again
 * with the same update id, which the server deduplicates: an update that did land is answered
 * with its own outcome, never applied twice. Only when every try is refused (about 3 s of
 * pauses, within the request's deadline) does the caller get ChallengeUnavailableError (503).
 */
async function update<R>(
  deps: ChallengeDeps,
  challengeId: string,
  send: (handle: WorkflowHandle<typeof challengeWorkflow>, updateId: string) => Promise<R>,
): Promise<{ result: R } | { gone: LimitedChallengeRow | undefined }> {
  const handle = deps.client.workflow.getHandle<typeof challengeWorkflow>(challengeWorkflowId(challengeId));
  const updateId = randomUUID();
  const deadline = Date.now() + WORKFLOW_DEADLINE_MS;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return { result: await deps.client.withDeadline(deadline, () => send(handle, updateId)) };
    } catch (err) {
      if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) throw timedOut();
      if (err instanceof WorkflowNotFoundError) return { gone: await loadChallenge(deps.db, challengeId) };
      if (!(err instanceof ServiceError)) throw err;
      const pause = UPDATE_RETRY_PAUSES_MS[attempt];
      if (pause === undefined || Date.now() + pause >= deadline)
        throw new ChallengeUnavailableError('the challenge service could not take this request; try again shortly');
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/** Checks a sealed candidate; the secret itself never reaches the workflow. */
export const verifyCandidate = (deps: ChallengeDeps, challengeId: string, candidate: SealedCandidate) =>
  update<VerifyResult>(deps, challengeId, (h, updateId) =>
    h.executeUpdate(verifyUpdate, { args: [{ candidate }], updateId }),
  );

export const requestResend = (deps: ChallengeDeps, challengeId: string) =>
  update<ResendResult>(deps, challengeId, (h, updateId) => h.executeUpdate(resendUpdate, { args: [{}], updateId }));

// ---- auth_challenges reads ------------------------------------------------------------------

export async function loadChallenge(db: Database, challengeId: string): Promise<LimitedChallengeRow | undefined> {
  const { rows } = await db.query<LimitedChallengeRow>(
    'SELECT user_id, method, status, expires_at FROM auth_challenges WHERE id = $1',
    [challengeId],
  );
  return rows[0];
}

interface ValidationAttempt {
  outcome: string;
  method: AuthMethod;
  challengeId: string;
  userId?: string;
  ipMasked: string;
  details?: Record<string, unknown>;
}

/** The forensic counter of a challenge's attempts (flagged once one hits it expired), parameters named by the caller. */
const countAttemptSql = (challengeId: string, userId: string, expired: string) =>
  `INSERT INTO challenge_validation_attempts AS a (challenge_id, user_id, validation_attempts, last_attempt_at, challenge_expired)
   VALUES (${challengeId}, ${userId}, 1, now(), ${expired})
   ON CONFLICT (challenge_id) DO UPDATE SET validation_attempts = a.validation_attempts + 1,
     last_attempt_at = now(), challenge_expired = a.challenge_expired OR EXCLUDED.challenge_expired`;

export function validationAttemptEvent(attempt: ValidationAttempt): AuditEvent {
  return {
    type: AuditEventType.validationAttempt,
    outcome: attempt.outcome,
    challengeId: attempt.challengeId,
    userId: attempt.userId,
    method: attempt.method,
    ipMasked: attempt.ipMasked,
    details: attempt.details,
  };
}

/**
 * One answered validation attempt: its audit row and, for a known challenge, the
 * forensic counter (every attempt per challenge, flagged once it hits an expired one), in one
 * statement, so both land or neither does.
 */
export async function recordValidationAttempt(
  writer: Queryable,
  attempt: ValidationAttempt,
): Promise<AuditRow | undefined> {
  const counter = attempt.userId
    ? {
        sql: countAttemptSql('$11', '$12', '$13'),
        values: [attempt.challengeId, attempt.userId, attempt.outcome === 'expired'],
      }
    : undefined;
  return insertAudit(writer, validationAttemptEvent(attempt), counter);
}

/** The counter alone: a refused attempt's audit is counted into its client's window (src/auth/refusals.ts). */
export async function countValidationAttempt(
  writer: Queryable,
  attempt: { challengeId: string; userId: string },
): Promise<void> {
  await writer.query(countAttemptSql('$1', '$2', 'false'), [attempt.challengeId, attempt.userId]);
}
