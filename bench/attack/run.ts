/**
 * `npm run attack`: each attack of the suite against an embedded stack of its own (the provider
 * sandbox and `npm start`'s stack as child processes, bench/stack/warden.ts), on loopback, one
 * after another. Writes bench/attack.json and the generated block of SECURITY.md, prints a line
 * per attack and the target table. A benchmark, not a test: the CI form of each attack is
 * test/integration/attacks.test.ts.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { measureBcryptBound } from '../lib/bcrypt';
import { agent } from '../lib/http';
import { loadAverage, machineFacts } from '../lib/machine';
import { Outbox } from '../lib/outbox';
import { ProcessSet } from '../lib/processes';
import { startEmbeddedWarden, startSandboxProcess } from '../stack/warden';
import { attackPlan, PLAN_NAMES, STACK_SETTINGS, stackEnv, type Step } from './plan';
import { renderBlock, renderTable, writeSecurityMarkdown, type AttackReport } from './report';
import type { AttackRow, AttackTarget } from './types';

const USAGE = `npm run attack [-- options]
  --quick                  small sizes (a few minutes): fewer simulated days, a shorter flood
  --only a,b / --skip a,b  attacks by name: ${PLAN_NAMES.join(', ')}
  --flood-factor N         the flood's rate as a multiple of the measured bcrypt capacity (default 5)
  --set NAME=VALUE         a setting of the stack beyond the run's own (repeatable), e.g.
                           --set WARDEN_ADMISSION_CONCURRENCY=1: reported with the results
  --results FILE           where the JSON goes (default bench/attack.json)
  --markdown FILE          whose generated block to rewrite (default SECURITY.md)`;

const BCRYPT_COST = 10;

function log(line: string): void {
  process.stdout.write(`[attack ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      skip: { type: 'string' },
      'flood-factor': { type: 'string' },
      set: { type: 'string', multiple: true },
      results: { type: 'string' },
      markdown: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const list = (text: string | undefined) =>
    (text ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const only = list(values.only);
  const skip = list(values.skip);
  for (const name of [...only, ...skip]) if (!PLAN_NAMES.includes(name)) throw new Error(`no attack named ${name}`);
  const extra: Record<string, string> = {};
  for (const pair of values.set ?? []) {
    const match = /^(WARDEN_[A-Z0-9_]+)=(.*)$/.exec(pair);
    if (!match) throw new Error(`--set takes WARDEN_NAME=value, not ${pair}`);
    extra[match[1]!] = match[2]!;
  }
  const floodFactor = Number(values['flood-factor'] ?? 5);
  if (!(floodFactor > 0)) throw new Error(`not a positive number: ${values['flood-factor']}`);
  return {
    quick: values.quick ?? false,
    floodFactor,
    settings: { ...STACK_SETTINGS, ...extra },
    only,
    skip,
    results: path.resolve(values.results ?? path.join('bench', 'attack.json')),
    markdown: path.resolve(values.markdown ?? 'SECURITY.md'),
    outDir: path.resolve('bench', 'out', `attack-${new Date().toISOString().replace(/[:.]/g, '-')}`),
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const machine = machineFacts();
  mkdirSync(options.outDir, { recursive: true });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'warden-attack-'));
  // as root, embedded Postgres runs initdb as its own OS user, which must reach the folder
  chmodSync(dataDir, 0o755);
  const procs = new ProcessSet(options.outDir, dataDir);
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping everything the attack run started`);
    void procs.stopAll(log).finally(() => {
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const attacks: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  const rows: AttackRow[] = [];
  let report: AttackReport | undefined;
  let pool: pg.Pool | undefined;
  try {
    log(
      `starting the provider sandbox and the embedded stack (logs in ${path.relative(process.cwd(), options.outDir)})`,
    );
    const sandbox = await startSandboxProcess(procs);
    const warden = await startEmbeddedWarden(procs, {
      dataDir,
      sandboxUrl: sandbox.url,
      env: { ...stackEnv(), ...options.settings },
    });
    const db = new pg.Pool({ connectionString: warden.databaseUrl, max: 2 });
    pool = db;
    const target: AttackTarget = {
      publicUrl: warden.publicUrl,
      adminUrl: warden.adminUrl,
      adminToken: warden.adminToken,
      sandboxUrl: warden.sandboxUrl,
      metricsUrl: warden.metricsUrl,
      sql: async (text, values) => (await db.query(text, values)).rows,
    };
    log('stack ready; measuring bcrypt on the idle stack');
    const bcrypt = await measureBcryptBound(BCRYPT_COST, options.quick ? 2 : 5);
    log(
      `bcrypt: ${bcrypt.opsPerSec} ops/s at cost ${bcrypt.cost} (${bcrypt.threads} threads); one op ${bcrypt.singleOpMs} ms`,
    );

    const plan = attackPlan({
      quick: options.quick,
      bcryptOpsPerSec: bcrypt.opsPerSec,
      floodFactor: options.floodFactor,
      settings: options.settings,
    }).filter((s) => (options.only.length === 0 || options.only.includes(s.name)) && !options.skip.includes(s.name));
    const outbox = new Outbox(sandbox.url);
    for (const step of plan) await runStep(step, target, outbox, { attacks, errors, rows });
    machine.loadAverageAtEnd = loadAverage();
    report = {
      schema: 1,
      mode: options.quick ? 'quick' : 'full',
      machine,
      bcrypt,
      settings: options.settings,
      sizes: Object.fromEntries(plan.map((s) => [s.name, s.options])),
      attacks,
      rows,
      errors,
      durationS: 0,
    };
  } finally {
    await pool?.end().catch(() => {});
    log('stopping everything the attack run started');
    await procs.stopAll(log);
    agent.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }
  report.durationS = Math.round((Date.now() - started) / 1000);
  mkdirSync(path.dirname(options.results), { recursive: true });
  writeFileSync(options.results, `${JSON.stringify(report, null, 2)}\n`);
  writeSecurityMarkdown(options.markdown, renderBlock(report));
  log(`wrote ${path.relative(process.cwd(), options.results)} and ${path.relative(process.cwd(), options.markdown)}`);
  process.stdout.write(`\n${renderTable(rows)}\n`);
  return Object.keys(errors).length > 0 || rows.some((r) => r.pass === false) ? 1 : 0;
}

async function runStep(
  step: Step,
  target: AttackTarget,
  outbox: Outbox,
  into: { attacks: Record<string, unknown>; errors: Record<string, string>; rows: AttackRow[] },
): Promise<void> {
  log(`== ${step.title}`);
  // each attack reads only its own messages, and the outbox stays cheap to read
  await outbox.clear();
  try {
    const done = await step.run(target, log);
    into.attacks[step.name] = done.result;
    into.rows.push(done.row);
    log(done.line);
  } catch (err) {
    into.errors[step.name] = err instanceof Error ? err.message : String(err);
    into.rows.push({
      attack: step.title,
      reported: '',
      measured: `failed: ${into.errors[step.name]}`,
      target: '',
      pass: null,
    });
    log(`${step.name} failed: ${into.errors[step.name]}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`attack run failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
