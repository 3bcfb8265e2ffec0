import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';

export interface ManagedProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** The stop signal, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns a child that is ours to stop: we only ever signal the PID we started. */
export function spawnManaged(
  command: string,
  args: string[],
  options: SpawnOptions & {
    onOutput?: (line: string) => void;
    /** asks it to stop (default SIGTERM); a child that has one is also sent it, not SIGKILL, when we exit first */
    stopSignal?: NodeJS.Signals;
  } = {},
): ManagedProcess {
  const { onOutput, stopSignal, ...spawnOptions } = options;
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const forward = (chunk: Buffer) => {
    if (!onOutput) return;
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) onOutput(line);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  const exited = child.exitCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined);
  // if we die without stopping it (a crash), the child must not outlive us
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(stopSignal ?? 'SIGKILL');
  };
  process.on('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  return {
    pid: child.pid,
    child,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(stopSignal ?? 'SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A TCP port that was free a moment ago (the OS picks it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** Why `port` cannot be listened on at `host` (EADDRINUSE, EACCES, ...), or undefined when it can. */
export async function portProblem(host: string, port: number): Promise<string | undefined> {
  const server = net.createServer();
  try {
    server.listen(port, host);
    await once(server, 'listening');
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  } finally {
    server.close();
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  { timeoutMs = 60_000, intervalMs = 200 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await probe();
    } catch (err) {
      last = err;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}: ${last instanceof Error ? last.message : String(last)}`,
  );
}
