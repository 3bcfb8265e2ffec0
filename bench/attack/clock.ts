/**
 * A simulated clock for attacks that last days. The budgets and rate limits count rows of their
 * own tables over rolling windows that end at the database's `now()` (a day of wrong codes, an
 * hour and a day of messages, five minutes of attempts), so moving every such row back by s
 * seconds is, to every one of those decisions, the same as s seconds passing. An attacker who
 * is refused everywhere waits for the Retry-After Warden answered; the attack advances the clock
 * by that instead of sleeping, and a day of attack takes seconds.
 *
 * The SMS pumping evaluation's ledger moves with it (messages sent, challenges started), so that
 * a day of one number's messages squeezed into a minute does not look like a prefix pumped in
 * that minute. What it does not move: timers inside workflows (a challenge's expiry, a resend's
 * cooldown) and the refusal audit's windows, which run on real time. Attacks that use the clock
 * do not depend on them. Real time passes as well: simulated time is real time plus the jumps.
 */
import type { AttackTarget } from './types';

/** Every table a budget, a limit or the SMS pumping evaluation counts over a rolling window, with the time it counts by. */
export const WINDOWED_TABLES = [
  { table: 'account_guesses', column: 'guessed_at' },
  { table: 'destination_sends', column: 'sent_at' },
  { table: 'rate_limit_attempts', column: 'attempted_at' },
  { table: 'delivery_attempts', column: 'last_attempt_at' },
  { table: 'auth_challenges', column: 'created_at' },
] as const;

export class SimulatedClock {
  private readonly startMs = Date.now();
  private readonly jumps: Array<{ atMs: number; seconds: number }> = [];

  constructor(private readonly target: AttackTarget) {}

  /** simulated seconds since the clock was made: real time plus the jumps */
  get elapsedSeconds(): number {
    return this.simulatedAt(Date.now());
  }

  /** how many times the clock was moved */
  get jumpCount(): number {
    return this.jumps.length;
  }

  /** the simulated seconds (since the clock was made) of a real moment, in epoch ms */
  simulatedAt(epochMs: number): number {
    let seconds = (epochMs - this.startMs) / 1000;
    for (const jump of this.jumps) if (jump.atMs <= epochMs) seconds += jump.seconds;
    return seconds;
  }

  /** `seconds` pass for every rolling window at once. */
  async advance(seconds: number): Promise<void> {
    if (!(seconds > 0)) return;
    for (const { table, column } of WINDOWED_TABLES)
      await this.target.sql(`UPDATE ${table} SET ${column} = ${column} - make_interval(secs => $1)`, [seconds]);
    this.jumps.push({ atMs: Date.now(), seconds });
  }
}
