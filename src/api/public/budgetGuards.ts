/**
 * The budgets of src/auth/budgets.ts on the request path: a message asked for (initiate,
 * resend) is counted against its destination before anything is started or sent, and an SMS
 * code is counted against its account's guess budget before it is compared. A refusal is 429
 * with Retry-After, an audit event (identity.ratelimit.exceeded, outcome `destination` or
 * `account`, counted per window like every refusal) and a metric by reason; a refused verify
 * is no guess.
 *
 * What a caller learns (docs/api.md): a user without an address for the channel (unknown,
 * disabled, without a phone) has a budget of their own under the decoy's key, so a refusal
 * comes at the same count and reads the same as for a real account; it never tells whether the
 * account exists or what its address is.
 */
import type { FastifyInstance } from 'fastify';
import { AuditEventType } from '../../auth/audit';
import {
  destinationBudgetFor,
  returnSend,
  settleGuess,
  takeGuess,
  takeSend,
  type BudgetRefusalReason,
} from '../../auth/budgets';
import type { AuthMethod, VerifyResult } from '../../shared/auth';
import { timeStage } from '../../telemetry/stages';
import { ApiError } from '../errors';
import type { ClientContext } from './authGuards';

/** A counted message: given back when the workflow was never asked to send it. */
export interface SendTicket {
  giveBack(): Promise<void>;
}

/** A counted guess, settled by what the comparison said. */
export interface GuessTicket {
  settle(answer: VerifyResult | 'gone'): Promise<void>;
}

interface Refusal {
  reason: BudgetRefusalReason;
  action: 'initiate' | 'resend' | 'verify';
  scope: 'destination' | 'account';
  userId: string;
  method: AuthMethod;
  challengeId?: string;
  retryAfterSeconds: number;
  details: Record<string, unknown>;
  error: { code: string; message: string };
}

async function refuse(app: FastifyInstance, client: ClientContext, r: Refusal): Promise<never> {
  app.warden.metrics.budgetRefusals.inc({ reason: r.reason, action: r.action });
  // counted into the audit trail like every refusal (src/auth/refusals.ts): a row per client,
  // reason and window, keyed by the user as well, whose budget it is
  await app.refusals.record(
    {
      type: AuditEventType.rateLimitExceeded,
      outcome: r.scope,
      reason: r.reason,
      method: r.method,
      userId: r.userId,
      challengeId: r.challengeId,
      ipMasked: client.ipMasked,
      details: { scope: r.scope, action: r.action, ...r.details },
    },
    { perUser: true },
  );
  throw new ApiError(
    429,
    r.error.code,
    `${r.error.message}; try again in ${r.retryAfterSeconds} s`,
    { retry_after_seconds: r.retryAfterSeconds },
    { 'Retry-After': String(r.retryAfterSeconds) },
  );
}

/**
 * Counts one message to the user's address on the method's channel (or the decoy's key), in the
 * trusted device's own budget when `device` is one the user trusts; 429 too_many_messages when
 * the hour's or the day's budget is spent.
 */
export async function enforceSendBudget(
  app: FastifyInstance,
  client: ClientContext,
  input: { action: 'initiate' | 'resend'; userId: string; method: AuthMethod; device?: Buffer; challengeId?: string },
): Promise<SendTicket> {
  const { db, metrics, config } = app.warden;
  const budget = destinationBudgetFor(config.budgets.destination, config.canary, input.userId);
  const decision = await timeStage(metrics, input.action, 'budget', () =>
    takeSend(db, budget, { userId: input.userId, method: input.method, device: input.device }),
  );
  if (decision.allowed)
    return {
      // a failed give-back leaves the message counted: the budget errs on the safe side
      giveBack: () => returnSend(db, decision.sendId).catch(() => {}),
    };
  return refuse(app, client, {
    reason: decision.window === 'hour' ? 'destination_hour' : 'destination_day',
    action: input.action,
    scope: 'destination',
    userId: input.userId,
    method: input.method,
    challengeId: input.challengeId,
    retryAfterSeconds: decision.retryAfterSeconds,
    details: {
      window: decision.window,
      limit: decision.limit,
      window_seconds: decision.windowSeconds,
      trusted_device: input.device !== undefined,
    },
    error: {
      code: 'too_many_messages',
      message: `too many messages were asked for this sign-in's ${input.method === 'sms_otp' ? 'phone' : 'email'}`,
    },
  });
}

/** What a verify's answer makes of its guess: only a comparison is a guess. */
function guessOutcome(answer: VerifyResult | 'gone'): 'right' | 'wrong' | 'none' {
  if (answer === 'gone') return 'none';
  if (answer.outcome === 'verified') return 'right';
  if (answer.outcome === 'invalid') return 'wrong';
  if (answer.outcome === 'locked' && answer.lockedByThisAttempt) return 'wrong';
  return 'none';
}

/**
 * Takes one guess of an SMS code from the account's budget before it is compared (magic-link
 * tokens are 256-bit: no budget makes guessing them any harder). 429 verify_backoff while the
 * account's recent wrong codes hold it back, verify_budget_exhausted once the day's are spent.
 */
export async function takeGuessOrRefuse(
  app: FastifyInstance,
  client: ClientContext,
  input: { method: AuthMethod; userId: string; challengeId: string; device?: Buffer },
): Promise<GuessTicket | undefined> {
  if (input.method !== 'sms_otp') return undefined;
  const { db, metrics, config } = app.warden;
  const budget = config.budgets.guesses;
  const decision = await timeStage(metrics, 'verify', 'budget', () =>
    takeGuess(db, budget, { userId: input.userId, device: input.device }),
  );
  if (decision.allowed)
    return {
      // the answer stands whatever happens here: a guess that cannot be settled stays counted
      settle: (answer) =>
        settleGuess(db, decision.guessId, guessOutcome(answer)).catch((err: unknown) =>
          app.warden.logger.warn({ component: 'budgets', err: (err as Error).message }, 'a guess could not be settled'),
        ),
    };
  const backoff = decision.reason === 'backoff';
  return refuse(app, client, {
    reason: backoff ? 'guess_backoff' : 'guess_budget',
    action: 'verify',
    scope: 'account',
    userId: input.userId,
    method: input.method,
    challengeId: input.challengeId,
    retryAfterSeconds: decision.retryAfterSeconds,
    details: {
      window: backoff ? 'backoff' : 'day',
      ...(backoff ? {} : { limit: budget.perDay }),
      trusted_device: input.device !== undefined,
    },
    error: backoff
      ? { code: 'verify_backoff', message: 'too many wrong codes for this account in a row; slow down' }
      : { code: 'verify_budget_exhausted', message: "this account's wrong codes for the day are used up" },
  });
}
