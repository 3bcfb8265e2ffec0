/**
 * The attack suite's shared shapes. An attack is one module under bench/attack/ with a `run`
 * that takes a target and sizes and returns plain numbers; the runner (`npm run attack`,
 * bench/attack/run.ts) points it at the embedded stack, and test/integration/attacks.test.ts
 * points the same code at the test harness at a small size. Every request is HTTP on loopback;
 * simulated clients are named in X-Forwarded-For (the target trusts 127.0.0.1 as its proxy).
 */

/** What an attack talks to: Warden's public and admin APIs, the provider sandbox and Warden's database. */
export interface AttackTarget {
  publicUrl: string;
  adminUrl: string;
  adminToken: string;
  sandboxUrl: string;
  /** Warden's /metrics (the admission limits the stack chose) */
  metricsUrl: string;
  /** a query on Warden's database: the simulated clock and the audit counts read it */
  sql<R extends Record<string, unknown> = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
}

/** One row of the target table (SECURITY.md, the end of a run). */
export interface AttackRow {
  attack: string;
  reported: string;
  measured: string;
  target: string;
  /** null: nothing to judge (the attack failed to run) */
  pass: boolean | null;
}

/** A count of answers by `<status> <error>` (`401 invalid_otp`, `429 verify_backoff`, ...). */
export type Answers = Record<string, number>;

export type Log = (line: string) => void;

/** One attack module: run it, then turn its result into a line and a row. */
export interface Attack<O, R> {
  name: string;
  /** the table's first column */
  title: string;
  run(target: AttackTarget, options: O, log: Log): Promise<R>;
  row(result: R): AttackRow;
  /** one line for the console */
  line(result: R): string;
}
