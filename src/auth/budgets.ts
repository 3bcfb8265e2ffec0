/**
 * Budgets beyond the per-user and per-IP rate limits (docs/security.md), kept in Postgres so
 * every process shares them:
 *
 * - the destination budget: messages per phone number or email address per rolling hour and
 *   day, whoever asks (migrations/0170_destination_budget.sql);
 * - the account guess budget: wrong SMS codes per account across all its challenges and
 *   addresses, a backoff after a few and a small daily budget (migrations/0171_account_guess_budget.sql).
 *
 * Both keep a separate budget per device the account has signed in from (src/auth/trustedDevices.ts):
 * strangers share one, so whoever spends it cannot lock the owner's own browser out. The
 * decisions are made in one statement each, under an advisory lock per bucket, so a burst
 * cannot overshoot; the schedule and the arithmetic behind the defaults are the pure
 * functions below.
 */
import type { Database } from '../db/database';
import type { AuthMethod } from '../shared/auth';

export const HOUR_SECONDS = 3600;
export const DAY_SECONDS = 86_400;

/** Digits of an SMS code: a guess is right with probability 1 / 10^OTP_SPACE_DIGITS. */
export const OTP_SPACE_DIGITS = 6;

export interface DestinationBudget {
  perHour: number;
  perDay: number;
}

export interface GuessBudget {
  /** wrong codes per rolling day per bucket */
  perDay: number;
  /** wrong codes in a row before the backoff starts */
  freeFailures: number;
  /** the first delay, doubled for each further wrong code up to maxSeconds */
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
}

/** The refusals these budgets make, as the metric's `reason` label says them. */
export type BudgetRefusalReason =
  'destination_hour' | 'destination_day' | 'country_not_allowed' | 'guess_backoff' | 'guess_budget';

// ---- the arithmetic -----------------------------------------------------------------------

/**
 * The backoff's delays: `[base, 2 base, 4 base, ..., max]`, the k-th applying after the
 * (freeFailures + k - 1)-th wrong code in a row, the last one repeating.
 */
export function backoffSteps(budget: Pick<GuessBudget, 'backoffBaseSeconds' | 'backoffMaxSeconds'>): number[] {
  const steps: number[] = [];
  for (let delay = budget.backoffBaseSeconds; ; delay *= 2) {
    if (delay >= budget.backoffMaxSeconds) return [...steps, budget.backoffMaxSeconds];
    steps.push(delay);
  }
}

/** Seconds a verify must wait after `wrongInARow` wrong codes (0: none). */
export function backoffDelaySeconds(budget: GuessBudget, wrongInARow: number): number {
  if (wrongInARow < budget.freeFailures) return 0;
  const steps = backoffSteps(budget);
  return steps[Math.min(wrongInARow - budget.freeFailures, steps.length - 1)]!;
}

/**
 * An upper bound on the chance that a stranger guesses one code of an account in `days` of
 * continuous trying: each wrong-or-right guess is one of 10^6 equally likely codes, and the
 * strangers' bucket admits at most `perDay` guesses a day, whatever the number of challenges
 * (each allows several tries: they all come out of the same budget) or addresses. A union bound.
 */
export function guessSuccessBound(perDay: number, days: number, digits = OTP_SPACE_DIGITS): number {
  return Math.min(1, (perDay * days) / 10 ** digits);
}

/** The largest daily budget that keeps a year of guessing under `target` (1%: 27 a day). */
export function largestSafeDailyBudget(target = 0.01, digits = OTP_SPACE_DIGITS): number {
  return Math.floor((target * 10 ** digits) / 365);
}

/**
 * Wrong codes that can be spent before the backoff's delays alone fill a day: how many the
 * backoff admits in 24 h when no daily budget stops it. Shows what the daily budget adds.
 */
export function guessesAdmittedByBackoff(budget: GuessBudget, seconds = DAY_SECONDS): number {
  let elapsed = 0;
  let n = 0;
  while (n < 1_000_000) {
    elapsed += backoffDelaySeconds(budget, n);
    if (elapsed > seconds) return n;
    n += 1;
  }
  return n;
}

// ---- the destination budget ---------------------------------------------------------------

/**
 * The delivery canary (docs/canary.md) signs its user in on a schedule, every few minutes, to
 * the operator's own number and mailbox: its user's budget is the normal one plus what that
 * schedule sends (one message per run to each of the two addresses), so the canary never trips
 * it and a stranger still gets no more than the normal budget beyond it.
 */
export function destinationBudgetFor(
  budget: DestinationBudget,
  canary: { user: string; intervalSeconds: number } | undefined,
  userId: string,
): DestinationBudget {
  if (!canary || canary.user !== userId) return budget;
  const runsPerHour = Math.ceil(HOUR_SECONDS / canary.intervalSeconds);
  return { perHour: budget.perHour + runsPerHour, perDay: budget.perDay + runsPerHour * 24 };
}

export type SendDecision =
  | { allowed: true; sendId: string }
  | { allowed: false; window: 'hour' | 'day'; retryAfterSeconds: number; limit: number; windowSeconds: number };

/**
 * Checks and records one message to the user's address on the method's channel (or to the
 * decoy's key, for a user without one: the same answer either way). `device`: the SHA-256 of a
 * device the account has signed in from, whose messages have their own budget.
 */
export async function takeSend(
  db: Database,
  budget: DestinationBudget,
  input: { userId: string; method: AuthMethod; device?: Buffer },
): Promise<SendDecision> {
  const { rows } = await db.write<{
    allowed: boolean;
    send_id: string | null;
    scope: 'hour' | 'day' | null;
    retry_after: number | null;
  }>('SELECT allowed, send_id, scope, retry_after FROM warden_destination_budget_check($1, $2, $3, $4, $5, $6, $7)', [
    input.userId,
    input.method,
    input.device ?? null,
    HOUR_SECONDS,
    budget.perHour,
    DAY_SECONDS,
    budget.perDay,
  ]);
  maybeCleanup(db);
  const row = rows[0]!;
  if (row.allowed) return { allowed: true, sendId: row.send_id! };
  const hour = row.scope === 'hour';
  return {
    allowed: false,
    window: hour ? 'hour' : 'day',
    retryAfterSeconds: row.retry_after ?? 1,
    limit: hour ? budget.perHour : budget.perDay,
    windowSeconds: hour ? HOUR_SECONDS : DAY_SECONDS,
  };
}

/** A message that was counted but never asked of the workflow (it could not be reached, or refused it). */
export async function returnSend(db: Database, sendId: string): Promise<void> {
  await db.write('DELETE FROM destination_sends WHERE id = $1', [sendId]);
}

// ---- the account guess budget -------------------------------------------------------------

export type GuessDecision =
  { allowed: true; guessId: string } | { allowed: false; reason: 'backoff' | 'budget'; retryAfterSeconds: number };

/** Takes one guess from the account's bucket (the device's when trusted, else the shared one). */
export async function takeGuess(
  db: Database,
  budget: GuessBudget,
  input: { userId: string; device?: Buffer },
): Promise<GuessDecision> {
  const { rows } = await db.write<{
    allowed: boolean;
    guess_id: string | null;
    scope: 'backoff' | 'budget' | null;
    retry_after: number | null;
  }>('SELECT allowed, guess_id, scope, retry_after FROM warden_guess_reserve($1, $2, $3, $4, $5, $6::int[])', [
    input.userId,
    input.device ?? null,
    DAY_SECONDS,
    budget.perDay,
    budget.freeFailures,
    backoffSteps(budget),
  ]);
  maybeCleanup(db);
  const row = rows[0]!;
  if (row.allowed) return { allowed: true, guessId: row.guess_id! };
  return {
    allowed: false,
    reason: row.scope === 'backoff' ? 'backoff' : 'budget',
    retryAfterSeconds: row.retry_after ?? 1,
  };
}

/**
 * What the comparison said: `right` frees the guess (and ends the backoff), `wrong` keeps it,
 * `none` gives it back (the challenge had ended: no code was compared). A guess never settled
 * (the request failed while the workflow may have compared it) stays counted.
 */
export async function settleGuess(db: Database, guessId: string, outcome: 'right' | 'wrong' | 'none'): Promise<void> {
  if (outcome === 'none') await db.write('DELETE FROM account_guesses WHERE id = $1', [guessId]);
  else await db.write('UPDATE account_guesses SET outcome = $2 WHERE id = $1', [guessId, outcome]);
}

/** Forget accounts' guesses (a responder's recovery for a false positive, like the rate limits'). */
export async function clearGuesses(db: Database, userIds: readonly string[]): Promise<number> {
  const result = await db.write('DELETE FROM account_guesses WHERE user_id = ANY($1::text[])', [userIds]);
  return result.rowCount ?? 0;
}

// ---- upkeep -------------------------------------------------------------------------------

/** Rows kept past the longest window: a day, and a day's margin for forensics. */
const KEEP = '2 days';
const CLEANUP_EVERY_MS = 60_000;
const CLEANUP_BATCH = 5000;
let lastCleanup = 0;

/** Rows older than any window are dead weight; at most once a minute per process, a batch per table. */
function maybeCleanup(db: Database): void {
  const now = Date.now();
  if (now - lastCleanup < CLEANUP_EVERY_MS || db.readOnly) return;
  lastCleanup = now;
  const trim = (table: string, time: string) =>
    db
      .write(
        `DELETE FROM ${table} WHERE ctid = ANY (ARRAY (
           SELECT ctid FROM ${table} WHERE ${time} < now() - $1::interval ORDER BY ${time} LIMIT $2))`,
        [KEEP, CLEANUP_BATCH],
      )
      .catch(() => {});
  void trim('destination_sends', 'sent_at');
  void trim('account_guesses', 'guessed_at');
}
