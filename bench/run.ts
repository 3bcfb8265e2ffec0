import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureBcryptBound } from './lib/bcrypt';
import { CpuWatcher } from './lib/cpu';
import { agent } from './lib/http';
import { loadAverage, machineFacts } from './lib/machine';
import { Outbox } from './lib/outbox';
import { parsePinning, pinStack } from './lib/pinning';
import { ProcessSet } from './lib/processes';
import { seedBenchUsers, UserPool } from './lib/users';
import { createBenchAppKey, raiseRateLimits, restoreRateLimits, revokeBenchAppKey } from './lib/wardenApi';
import { evaluateTargets, mergeReports, readReport, renderResults, writeMarkdown } from './report';
import { SCENARIOS } from './scenarios';
import { isSkipped, type BenchContext, type BenchOptions, type BenchReport } from './scenarios/types';
import { externalWarden, startEmbeddedWarden, startSandboxProcess, type WardenTarget } from './stack/warden';

const USAGE = `npm run bench [-- options]
  --quick                  smoke run: c=1,8, short phases (about 2 minutes)
  --only a,b / --skip a,b  scenarios by name: ${SCENARIOS.map((s) => s.name).join(', ')}
  --concurrency 1,8,32,64  closed-loop concurrencies
  --phase-seconds N        length of each closed-loop phase
  --open-loop-seconds N    length of the open-loop SLO run
  --containment-sizes a,b  affected challenges of each containment run (default 1000,10000,100000)
  --soak-seconds N         length of the retention soak (retentionSoak, run with --only; default 300, quick 90)
  --oracle-requests N      initiates per side of the timing oracle (timingOracle, run with --only; default 1000, quick 100)
  --warden-cores LIST      split topology: Warden (API + worker) pinned to these cores (e.g. 1),
                           Temporal server, Postgres, sandbox and load generator to the others;
                           the bcrypt bound is measured on Warden's cores. Writes
                           bench/results-split.json and the split block of BENCHMARKS.md
  --results FILE           where results.json goes (default bench/results.json)
  --markdown FILE          whose generated block to rewrite (default BENCHMARKS.md)
A running stack instead of the embedded one: set BENCH_WARDEN_PUBLIC_URL, BENCH_WARDEN_ADMIN_URL,
BENCH_WARDEN_METRICS_URL, BENCH_SANDBOX_URL, BENCH_DATABASE_URL and WARDEN_ADMIN_TOKEN.
BENCH_CLIENT_ID names the app the flows sign in to (default warden-dev); the run creates one key
for it at the start and exchanges every flow's code with it.`;

const BCRYPT_COST = 10; // the auth code's configured cost (docs/api.md)

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      skip: { type: 'string' },
      concurrency: { type: 'string' },
      'phase-seconds': { type: 'string' },
      'open-loop-seconds': { type: 'string' },
      'containment-sizes': { type: 'string' },
      'soak-seconds': { type: 'string' },
      'oracle-requests': { type: 'string' },
      'warden-cores': { type: 'string' },
      results: { type: 'string' },
      markdown: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const list = (text: string | undefined) =>
    text
      ? text
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  const num = (text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${text}`);
    return n;
  };
  const names = new Set(SCENARIOS.map((s) => s.name));
  for (const name of [...list(values.only), ...list(values.skip)])
    if (!names.has(name)) throw new Error(`no scenario named ${name}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const pinning =
    values['warden-cores'] === undefined ? undefined : parsePinning(values['warden-cores'], os.availableParallelism());
  const defaultResults = quick ? 'out/results-quick.json' : pinning ? 'results-split.json' : 'results.json';
  return {
    quick,
    concurrencies: values.concurrency
      ? list(values.concurrency).map((c) => num(c, 1))
      : quick
        ? [1, 8]
        : [1, 8, 32, 64],
    phaseSeconds: num(values['phase-seconds'], quick ? 3 : 10),
    openLoopSeconds: num(values['open-loop-seconds'], quick ? 10 : 60),
    bcryptSeconds: quick ? 2 : 5,
    containmentSizes: values['containment-sizes']
      ? list(values['containment-sizes']).map((v) => num(v, 0))
      : quick
        ? [200]
        : [1_000, 10_000, 100_000],
    soakSeconds: num(values['soak-seconds'], quick ? 90 : 300),
    oracleRequests: Math.ceil(num(values['oracle-requests'], quick ? 100 : 1000)),
    ...(pinning ? { pinning } : {}),
    only: list(values.only),
    skip: list(values.skip),
    outDir: path.resolve('bench', 'out', stamp),
    resultsFile: path.resolve(values.results ?? path.join('bench', defaultResults)),
    markdownFile: path.resolve(
      values.markdown ?? (quick ? path.join('bench', 'out', 'BENCHMARKS-quick.md') : 'BENCHMARKS.md'),
    ),
  };
}

function log(line: string): void {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const machine = machineFacts();
  mkdirSync(options.outDir, { recursive: true });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-'));
  // as root, embedded Postgres runs initdb as its own OS user, which must reach the folder
  chmodSync(dataDir, 0o755);
  const procs = new ProcessSet(options.outDir, dataDir);
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping everything the benchmark started`);
    void procs.stopAll(log).finally(() => {
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const scenarios = SCENARIOS.filter(
    (s) =>
      (options.only.length > 0 ? options.only.includes(s.name) : (s.inDefaultRun ?? true)) &&
      !options.skip.includes(s.name),
  );
  const results: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  let target: WardenTarget | undefined;
  let previousLimits: unknown;
  let rateLimits: string;
  let report: BenchReport | undefined;
  try {
    target = externalWarden(process.env);
    if (target) {
      log(`using the running Warden at ${target.publicUrl}`);
    } else {
      log(
        `starting the provider sandbox and the embedded stack (logs in ${path.relative(process.cwd(), options.outDir)})`,
      );
      const sandbox = await startSandboxProcess(procs);
      target = await startEmbeddedWarden(procs, { dataDir, sandboxUrl: sandbox.url });
      log('stack ready');
      if (options.pinning)
        log(
          `split topology: ${pinStack(options.pinning, { warden: procs.pidOf('warden')!, sandbox: sandbox.proc.pid })}`,
        );
    }
    if (options.pinning && target.embedded === false)
      throw new Error('--warden-cores needs the embedded stack (a running stack pins its own processes)');
    // enough users that no two flows in flight share one, and every containment run has its own
    const userCount = 50_000;
    await seedBenchUsers(target.databaseUrl, userCount);
    try {
      previousLimits = await raiseRateLimits(target);
      rateLimits = 'raised to 1,000,000 per user and per IP per 5 min for the run';
    } catch (err) {
      rateLimits = `NOT raised (${err instanceof Error ? err.message : String(err)}): the defaults applied`;
    }
    // once per run: every flow ends in the exchange of its code with this app's key
    try {
      target.app = await createBenchAppKey(target);
      log(`app key created for ${target.app.clientId} (the flows exchange their codes with it)`);
    } catch (err) {
      log(`could not create an app key: ${err instanceof Error ? err.message : String(err)}`);
    }
    log(`rate limits ${rateLimits}; measuring the bcrypt bound on an idle stack`);
    const bound = await measureBcryptBound(BCRYPT_COST, options.bcryptSeconds, options.pinning?.wardenCores);
    log(
      `bcrypt bound: ${bound.opsPerSec} ops/s at cost ${bound.cost} (${bound.threads} threads); one op ${bound.singleOpMs} ms`,
    );

    const ctx: BenchContext = {
      options,
      machine,
      warden: target,
      outbox: new Outbox(target.sandboxUrl),
      users: new UserPool(userCount),
      bound,
      results,
      procs,
      dataDir,
      cpu: new CpuWatcher(() => ({
        warden: procs.pidOf('warden'),
        sandbox: procs.pidOf('sandbox'),
        peer: procs.pidOf('peer'),
      })),
      log,
    };
    for (const scenario of scenarios) {
      if (interrupted) break;
      log(`== ${scenario.title}`);
      try {
        results[scenario.name] = await scenario.run(ctx);
        if (isSkipped(results[scenario.name])) log(`skipped: ${(results[scenario.name] as { reason: string }).reason}`);
      } catch (err) {
        errors[scenario.name] = err instanceof Error ? err.message : String(err);
        log(`${scenario.name} failed: ${errors[scenario.name]}`);
      }
    }
    const end = await measureBcryptBound(BCRYPT_COST, options.bcryptSeconds, options.pinning?.wardenCores);
    machine.loadAverageAtEnd = loadAverage();
    report = {
      schema: 1,
      mode: options.quick ? 'quick' : 'full',
      machine,
      warden: { embedded: target.embedded, rateLimits, ...(options.pinning ? { pinning: options.pinning } : {}) },
      bcrypt: { start: bound, end },
      options: {
        concurrencies: options.concurrencies,
        phaseSeconds: options.phaseSeconds,
        openLoopSeconds: options.openLoopSeconds,
        bcryptSeconds: options.bcryptSeconds,
        containmentSizes: options.containmentSizes,
      },
      scenarios: results,
      scenarioRuns: Object.fromEntries(
        [...Object.keys(results), ...Object.keys(errors)].map((name) => [
          name,
          {
            date: machine.date,
            commit: machine.commit,
            loadAverageAtStart: machine.loadAverageAtStart,
            boundOpsPerSec: bound.opsPerSec,
          },
        ]),
      ),
      targets: [],
      errors,
      durationS: 0,
    };
  } finally {
    if (target && !target.embedded && target.app) {
      const app = target.app;
      await revokeBenchAppKey(target, app).catch((err: unknown) =>
        log(`could not revoke the run's app key ${app.keyId}: ${String(err)}`),
      );
    }
    if (target && !target.embedded && previousLimits !== undefined) {
      await restoreRateLimits(target, previousLimits).catch((err: unknown) =>
        log(`could not restore the rate limits: ${String(err)}`),
      );
    }
    log('stopping everything the benchmark started');
    await procs.stopAll(log);
    agent.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }
  if (!report) return 1;
  report.durationS = Math.round((Date.now() - started) / 1000);
  // a full run of named scenarios updates their part of the existing results file
  const final =
    options.only.length > 0 && !options.quick ? mergeReports(readReport(options.resultsFile), report) : report;
  final.targets = evaluateTargets(final, SCENARIOS);
  mkdirSync(path.dirname(options.resultsFile), { recursive: true });
  writeFileSync(options.resultsFile, `${JSON.stringify(final, null, 2)}\n`);
  writeMarkdown(options.markdownFile, renderResults(final, SCENARIOS), options.pinning ? 'split' : undefined);
  log(
    `wrote ${path.relative(process.cwd(), options.resultsFile)} and ${path.relative(process.cwd(), options.markdownFile)}`,
  );
  for (const t of final.targets)
    log(`target ${t.name}: ${t.measured} (${t.target}) -> ${t.pass === null ? 'n/a' : t.pass ? 'pass' : 'FAIL'}`);
  return Object.keys(errors).length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
