import type { BcryptBound } from '../lib/bcrypt';
import type { CpuWatcher } from '../lib/cpu';
import type { MachineFacts } from '../lib/machine';
import type { Outbox } from '../lib/outbox';
import type { Pinning } from '../lib/pinning';
import type { ProcessSet } from '../lib/processes';
import type { UserPool } from '../lib/users';
import type { WardenTarget } from '../stack/warden';

export interface BenchOptions {
  quick: boolean;
  /** closed-loop concurrencies of the sweep */
  concurrencies: number[];
  /** length of one closed-loop phase (one method, one concurrency, initiate or verify) */
  phaseSeconds: number;
  /** length of the open-loop SLO run */
  openLoopSeconds: number;
  bcryptSeconds: number;
  /** affected live challenges of each containment run */
  containmentSizes: number[];
  /** length of the retention soak (sign-ins while retention runs with compressed horizons) */
  soakSeconds: number;
  /** initiates on each side (known user, unknown user) of the timing-oracle scenario */
  oracleRequests: number;
  /** the split topology: Warden on these cores, the rest on the others (undefined: all share) */
  pinning?: Pinning;
  /** scenario names to run (all when empty) */
  only: string[];
  skip: string[];
  /** per-run folder for logs (gitignored) */
  outDir: string;
  resultsFile: string;
  markdownFile: string;
}

/** Everything a scenario may use. Scenarios run one after another, never concurrently. */
export interface BenchContext {
  options: BenchOptions;
  machine: MachineFacts;
  warden: WardenTarget;
  outbox: Outbox;
  users: UserPool;
  /** bcrypt ops/s on every core, measured at the start of this run */
  bound: BcryptBound;
  /** results of the scenarios that ran before this one, by name */
  results: Record<string, unknown>;
  procs: ProcessSet;
  /** the run's temp folder (removed at the end): a scenario's own stack keeps its data under it */
  dataDir: string;
  /** CPU per component (snapshot before and after a phase; coresUsed gives the difference) */
  cpu: CpuWatcher;
  log(line: string): void;
}

export interface Skipped {
  skipped: true;
  reason: string;
}

export function isSkipped(value: unknown): value is Skipped {
  return typeof value === 'object' && value !== null && (value as Skipped).skipped === true;
}

/** A pass/fail target, evaluated from numbers, reported in results.json and the table. */
export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  pass: boolean | null;
}

/**
 * One benchmark scenario: one module under bench/scenarios, registered in bench/run.ts. Its
 * result goes to results.json under `name`, and `render` writes its part of BENCHMARKS.md.
 */
export interface Scenario<R = unknown> {
  name: string;
  title: string;
  /** false: runs only when named with --only (its results are merged into results.json) */
  inDefaultRun?: boolean;
  run(ctx: BenchContext): Promise<R | Skipped>;
  render(result: R, all: BenchReport): string;
  targets?(result: R, all: BenchReport): TargetCheck[];
  /** a runbook scenario's rows of the time-to-effect table (one table for every runbook) */
  effects?(result: R): EffectRow[];
}

/** One effect a user or responder notices, timed from its trigger. */
export interface EffectRow {
  runbook: string;
  /** `trigger -> effect` */
  effect: string;
  measured: string;
  /** the target, or `reported` */
  target: string;
}

export interface ScenarioRun {
  date: string;
  commit: string;
  loadAverageAtStart: number;
  boundOpsPerSec: number;
}

/** The whole of bench/results.json. */
export interface BenchReport {
  schema: 1;
  mode: 'full' | 'quick';
  machine: MachineFacts;
  warden: { embedded: boolean; rateLimits: string; pinning?: Pinning };
  bcrypt: { start: BcryptBound; end?: BcryptBound };
  options: Pick<
    BenchOptions,
    'concurrencies' | 'phaseSeconds' | 'openLoopSeconds' | 'bcryptSeconds' | 'containmentSizes'
  >;
  scenarios: Record<string, unknown>;
  /** when each scenario's result was measured (runs with --only merge into the file) */
  scenarioRuns: Record<string, ScenarioRun>;
  targets: TargetCheck[];
  errors: Record<string, string>;
  durationS: number;
}
