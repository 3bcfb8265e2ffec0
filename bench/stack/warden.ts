import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, waitFor } from '../../src/dev/process';
import { findTool } from '../../src/temporal/tools';
import { request } from '../lib/http';
import type { BenchProcess, ProcessSet } from '../lib/processes';

/** The app the flows sign in to, with the API key its backend exchanges codes with. */
export interface BenchApp {
  clientId: string;
  key: string;
  keyId: string;
}

/** Where the Warden under test answers, and how to reach what the benchmark reads directly. */
export interface WardenTarget {
  publicUrl: string;
  adminUrl: string;
  metricsUrl: string;
  sandboxUrl: string;
  adminToken: string;
  /** Warden's database: the benchmark seeds its users there */
  databaseUrl: string;
  /** a database on the same server from which CREATE DATABASE works (the peer's) */
  maintenanceUrl: string;
  /** Temporal frontend and namespace, to read workflow histories (stage breakdown); optional */
  temporalAddress?: string;
  temporalNamespace: string;
  /** true when `npm run bench` started the stack itself */
  embedded: boolean;
  logFiles: string[];
  /** the app key created at the start of the run (bench/run.ts); the flows' exchanges use it */
  app?: BenchApp;
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function waitReady(
  what: string,
  proc: BenchProcess,
  probe: () => Promise<void>,
  timeoutMs: number,
): Promise<void> {
  const exited = proc.exited.then(() => {
    throw new Error(`${what} exited during start`);
  });
  try {
    await Promise.race([exited, waitFor(what, probe, { timeoutMs, intervalMs: 300 })]);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- last lines of ${proc.logFile}:\n${tail(proc.logFile)}`, {
      cause: err,
    });
  } finally {
    exited.catch(() => {});
  }
}

/** The provider sandbox as its own process; Warden's SDKs are pointed at it. */
export async function startSandboxProcess(procs: ProcessSet): Promise<{ url: string; proc: BenchProcess }> {
  const port = await freePort();
  const proc = procs.startTs('sandbox', path.join('bench', 'stack', 'sandbox-main.ts'), {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    BENCH_SANDBOX_PORT: String(port),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(
    'the provider sandbox',
    proc,
    async () => {
      const res = await request(`${url}/sandbox/faults`);
      if (res.status !== 200) throw new Error(`sandbox answered ${res.status}`);
    },
    30_000,
  );
  return { url, proc };
}

/**
 * `npm start`'s stack (src/dev/stack.ts, unchanged) as a child process: its own temp data
 * folder, free ports, a generated admin token, and the providers pointed at the benchmark's
 * sandbox process. Logs at the default level go to a file, as they would in production.
 */
export async function startEmbeddedWarden(
  procs: ProcessSet,
  options: {
    dataDir: string;
    sandboxUrl: string;
    /** its process's name (logs, CPU); default `warden` */
    name?: string;
    /** Postgres of its own (DATABASE_URL) instead of the embedded one, and settings to go with it */
    databaseUrl?: string;
    env?: NodeJS.ProcessEnv;
  },
): Promise<WardenTarget> {
  const toolsDir = path.resolve(process.env.WARDEN_TOOLS_DIR ?? '.tools');
  const cli = findTool('cli', toolsDir);
  if (!cli)
    throw new Error(`the Temporal CLI is not installed: run \`npm run tools\` first (the benchmark downloads nothing)`);
  const ports = {
    WARDEN_PUBLIC_PORT: await freePort(),
    WARDEN_ADMIN_PORT: await freePort(),
    WARDEN_METRICS_PORT: await freePort(),
    // the stack's own in-process sandbox listens here and stays idle: providers use ours
    WARDEN_SANDBOX_PORT: await freePort(),
    WARDEN_EMBEDDED_PG_PORT: await freePort(),
    TEMPORAL_UI_PORT: await freePort(),
  };
  const temporalPort = await freePort();
  const adminToken = randomBytes(24).toString('base64url');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_CLI: cli,
    WARDEN_TOOLS_DIR: toolsDir,
    WARDEN_DATA_DIR: options.dataDir,
    WARDEN_ADMIN_TOKEN: adminToken,
    WARDEN_SANDBOX_URL: options.sandboxUrl,
    TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
    LOG_LEVEL: process.env.BENCH_WARDEN_LOG_LEVEL ?? 'info',
    // the benchmark is the load balancer: its X-Forwarded-For names each user's own address
    WARDEN_TRUSTED_PROXIES: '127.0.0.1',
    // as with the rate limits (raised for the run), the scenarios measure the service, not its
    // abuse budgets: thousands of sign-ins reach few numbers, and codes sent for a timing or
    // load run are never entered, which the SMS pumping detector would block as a bad prefix
    WARDEN_DESTINATION_MAX_PER_HOUR: '1000000',
    WARDEN_DESTINATION_MAX_PER_DAY: '1000000',
    WARDEN_SMS_PUMPING_INTERVAL: 'off',
    // the sweep drives the service past its capacity on purpose, to find it; load shedding
    // (which would answer the excess 503) is measured by `npm run attack` instead
    WARDEN_ADMISSION_CONCURRENCY: process.env.BENCH_WARDEN_ADMISSION ?? 'off',
  };
  for (const [key, value] of Object.entries(ports)) env[key] = String(value);
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl;
  Object.assign(env, options.env);
  const proc = procs.startTs(options.name ?? 'warden', path.join('src', 'dev', 'stack.ts'), env);
  const adminUrl = `http://127.0.0.1:${ports.WARDEN_ADMIN_PORT}`;
  await waitReady(
    'the Warden stack',
    proc,
    async () => {
      const res = await request(`${adminUrl}/readyz`, { headers: { authorization: `Bearer ${adminToken}` } });
      if (res.status !== 200) throw new Error(`readyz answered ${res.status}`);
    },
    180_000,
  );
  const pg = `postgres://warden:warden@127.0.0.1:${ports.WARDEN_EMBEDDED_PG_PORT}`;
  return {
    publicUrl: `http://127.0.0.1:${ports.WARDEN_PUBLIC_PORT}`,
    adminUrl,
    metricsUrl: `http://127.0.0.1:${ports.WARDEN_METRICS_PORT}`,
    sandboxUrl: options.sandboxUrl,
    adminToken,
    databaseUrl: options.databaseUrl ?? `${pg}/warden`,
    maintenanceUrl: options.databaseUrl ? new URL('/postgres', options.databaseUrl).href : `${pg}/postgres`,
    temporalAddress: `127.0.0.1:${temporalPort}`,
    temporalNamespace: 'default',
    embedded: true,
    logFiles: [proc.logFile],
  };
}

/** A Warden that is already running, named by environment variables (see BENCHMARKS.md). */
export function externalWarden(env: NodeJS.ProcessEnv): WardenTarget | undefined {
  const publicUrl = env.BENCH_WARDEN_PUBLIC_URL;
  if (!publicUrl) return undefined;
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new Error(`BENCH_WARDEN_PUBLIC_URL is set, so ${name} must be set too`);
    return value;
  };
  const databaseUrl = need('BENCH_DATABASE_URL');
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  return {
    publicUrl: publicUrl.replace(/\/+$/, ''),
    adminUrl: need('BENCH_WARDEN_ADMIN_URL').replace(/\/+$/, ''),
    metricsUrl: need('BENCH_WARDEN_METRICS_URL').replace(/\/+$/, ''),
    sandboxUrl: need('BENCH_SANDBOX_URL').replace(/\/+$/, ''),
    adminToken: need('WARDEN_ADMIN_TOKEN'),
    databaseUrl,
    maintenanceUrl: env.BENCH_MAINTENANCE_DATABASE_URL ?? maintenance.toString(),
    temporalAddress: env.BENCH_TEMPORAL_ADDRESS,
    temporalNamespace: env.BENCH_TEMPORAL_NAMESPACE ?? 'default',
    embedded: false,
    logFiles: [],
  };
}
