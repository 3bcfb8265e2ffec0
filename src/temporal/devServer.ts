import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { google } from '@temporalio/proto';
import { searchAttributeFlags } from '../shared/searchAttributes';
import { ensureSearchAttributes } from './searchAttributes';
import { spawnManaged, waitFor, type ManagedProcess } from '../dev/process';
import { StartupError, firstLine, isDiskFull } from '../dev/startupError';

export interface DevServerOptions {
  cli: string;
  host?: string;
  port: number;
  /** omit for a headless server (tests) */
  uiPort?: number;
  /** SQLite file that keeps workflows across restarts; omit for in-memory */
  dbFile?: string;
  codecEndpoint?: string;
  namespace?: string;
  /**
   * how long the namespace keeps closed workflows; omitted: the dev server's own default (a day).
   * Every challenge is a workflow: this bounds what the SQLite file holds.
   */
  retentionSeconds?: number;
  onOutput?: (line: string) => void;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Go's garbage collector runs each time the heap has grown by GOGC percent (default 100). The
 * dev server allocates for every request, and under the benchmark's load collecting at 100 cost
 * it about a tenth of its CPU (BENCHMARKS.md); at 400 it collects a quarter as often, and the
 * soft limit makes it collect harder before its heap nears 1 GiB. Either can be set in the
 * environment instead.
 */
export function goRuntimeEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, GOGC: env.GOGC ?? '400', GOMEMLIMIT: env.GOMEMLIMIT ?? '1GiB' };
}

/** Why the server stopped while starting, from its last lines of output, with the fix. */
function exitedDuringStart(options: DevServerOptions, output: string[], status: number | string | null): Error {
  const cause = [...output].reverse().find((line) => /error|fatal|panic/i.test(line)) ?? output.at(-1);
  if (isDiskFull({ message: cause })) return new StartupError('no space left on device', 'free some disk space');
  return new StartupError(
    `the Temporal dev server stopped while starting (${status}): ${firstLine(cause ?? 'no output')}`,
    options.dbFile
      ? `LOG_LEVEL=debug shows its output; if ${options.dbFile} is damaged or from another Temporal version, remove it`
      : 'LOG_LEVEL=debug shows its output',
  );
}

/**
 * The dev server has no flag for it: the namespace's retention is set through the API once the
 * server answers, on every start (what `temporal operator namespace update --retention` does). Only
 * the retention changes; the rest of the namespace's configuration is left as it is.
 */
async function setNamespaceRetention(address: string, namespace: string, seconds: number): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 5000 });
  try {
    await connection.workflowService.updateNamespace({
      namespace,
      config: { workflowExecutionRetentionTtl: google.protobuf.Duration.fromObject({ seconds }) },
    });
  } finally {
    await connection.close();
  }
}

/**
 * The start flags register search attributes only when the SQLite file is new: a file from an
 * earlier version keeps the ones it was created with, and a workflow that sets one it lacks is
 * refused. So the ones Warden has gained since are added once the server answers.
 */
async function addMissingSearchAttributes(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 5000 });
  try {
    await ensureSearchAttributes(connection, namespace);
  } finally {
    await connection.close();
  }
}

/** Starts `temporal server start-dev` with the project's search attributes and waits until it answers. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const args = ['server', 'start-dev', '--ip', host, '--port', String(options.port), '--log-level', 'warn'];
  if (options.uiPort !== undefined) {
    args.push('--ui-port', String(options.uiPort), '--ui-disable-news-fetch');
    if (options.codecEndpoint) args.push('--ui-codec-endpoint', options.codecEndpoint);
  } else {
    args.push('--headless');
  }
  if (options.dbFile) {
    mkdirSync(path.dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
    // SQLite's default rollback journal syncs every commit several times; with a write-ahead
    // log and synchronous=NORMAL a commit is one append, still safe against a crash of the
    // server process (a power cut may lose the last commits: this is the dev server; production
    // runs Temporal on Postgres)
    args.push('--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal');
  }
  if (options.namespace && options.namespace !== 'default') args.push('--namespace', options.namespace);
  args.push(...searchAttributeFlags());

  const output: string[] = [];
  const proc = spawnManaged(options.cli, args, {
    env: goRuntimeEnv(process.env),
    onOutput: (line) => {
      output.push(line);
      if (output.length > 50) output.shift();
      options.onOutput?.(line);
    },
  });
  const address = `${host}:${options.port}`;
  const exitedEarly = new Promise<never>((_, reject) =>
    proc.child.once('exit', (code, signal) => reject(exitedDuringStart(options, output, code ?? signal))),
  );
  try {
    await Promise.race([
      exitedEarly,
      waitFor('the Temporal dev server', async () => {
        const connection = await Connection.connect({ address, connectTimeout: 1000 });
        try {
          await connection.workflowService.getSystemInfo({});
        } finally {
          await connection.close();
        }
      }),
    ]);
    if (options.retentionSeconds !== undefined) {
      await setNamespaceRetention(address, options.namespace ?? 'default', options.retentionSeconds);
    }
    await addMissingSearchAttributes(address, options.namespace ?? 'default');
  } catch (err) {
    await proc.stop(2000);
    throw err;
  }
  exitedEarly.catch(() => {});
  return {
    address,
    uiUrl: options.uiPort !== undefined ? `http://${host}:${options.uiPort}` : undefined,
    process: proc,
    stop: () => proc.stop(),
  };
}
