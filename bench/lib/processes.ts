import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';

export interface BenchProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** PIDs of processes whose command line contains `marker` (a temp folder only this run uses). */
export function pidsMentioning(marker: string): number[] {
  let out: string;
  try {
    out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const line of out.split('\n')) {
    const match = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!match || !match[2]!.includes(marker) || match[2]!.startsWith('ps ')) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid) pids.push(pid);
  }
  return pids;
}

/**
 * Every process the benchmark starts, so that all of them stop at the end, by PID, in reverse
 * order: SIGTERM first (the stack then stops its own Temporal server and Postgres), SIGKILL
 * after a grace period. Output goes to one log file per process, not through a pipe the
 * benchmark would have to read while it measures.
 */
export class ProcessSet {
  private readonly procs: BenchProcess[] = [];
  private readonly killOnExit = () => {
    for (const p of this.procs) if (alive(p.child)) p.child.kill('SIGKILL');
  };

  constructor(
    private readonly logDir: string,
    /** a folder in the command line of every grandchild (data dir), swept at the end */
    private readonly marker: string,
  ) {
    // if the benchmark dies without stopping them (a crash), the children must not outlive it
    process.on('exit', this.killOnExit);
  }

  /** Runs a TypeScript entry with the project's tsx loader. */
  startTs(name: string, entry: string, env: NodeJS.ProcessEnv): BenchProcess {
    const logFile = path.join(this.logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', entry], {
      stdio: ['ignore', fd, fd],
      env,
      cwd: process.cwd(),
    });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${name}`);
    const exited = alive(child) ? once(child, 'exit').then(() => undefined) : Promise.resolve();
    const proc: BenchProcess = { name, pid: child.pid, child, logFile, exited };
    this.procs.push(proc);
    return proc;
  }

  /** PID of the live process started under `name`, if any. */
  pidOf(name: string): number | undefined {
    const proc = [...this.procs].reverse().find((p) => p.name === name);
    return proc && alive(proc.child) ? proc.pid : undefined;
  }

  /** Stops the live process started under `name` (and waits for it), if any. */
  async stopNamed(name: string): Promise<void> {
    const proc = [...this.procs].reverse().find((p) => p.name === name);
    if (proc) await this.stop(proc);
  }

  async stop(proc: BenchProcess, graceMs = 30_000): Promise<void> {
    if (alive(proc.child)) {
      proc.child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (alive(proc.child)) proc.child.kill('SIGKILL');
      }, graceMs);
      await proc.exited;
      clearTimeout(timer);
    }
  }

  /** Stops everything it started and then any grandchild still holding the run's folder. */
  async stopAll(log: (line: string) => void = () => {}): Promise<void> {
    for (const proc of [...this.procs].reverse()) {
      await this.stop(proc).catch((err: unknown) => log(`stopping ${proc.name} failed: ${String(err)}`));
    }
    // grandchildren (the stack's Temporal server and Postgres) normally exit with the stack;
    // a stack that had to be SIGKILLed leaves them, and they carry our folder in their args
    for (let round = 0; round < 10; round++) {
      const left = pidsMentioning(this.marker);
      if (left.length === 0) break;
      log(`stopping leftover processes ${left.join(', ')}`);
      for (const pid of left) {
        try {
          process.kill(pid, round < 5 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    process.off('exit', this.killOnExit);
  }
}
