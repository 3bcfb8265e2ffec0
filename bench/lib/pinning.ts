/**
 * The split topology (`--warden-cores`): Warden's process (API and worker) on some cores, and
 * everything it talks to (Temporal server, Postgres, the provider sandbox, the load generator)
 * on the others, the way a production deployment gives the Temporal cluster and the database
 * machines of their own. The bcrypt bound is then measured on Warden's cores only, so
 * "fraction of the bound" compares Warden with what hashing alone could do on the cores it has.
 * Pinning uses `taskset` (util-linux) on every thread of each process; children forked later
 * (Postgres backends, per connection) inherit their parent's cores.
 */
import { execFileSync } from 'node:child_process';
import { descendantsOf } from './cpu';

export interface Pinning {
  wardenCores: number[];
  otherCores: number[];
}

/** "1" or "2,3" or "1-3": the cores Warden gets; every other core of the machine goes to the rest. */
export function parsePinning(text: string, machineCores: number): Pinning {
  const cores = new Set<number>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!range) throw new Error(`--warden-cores: not a core list: ${text}`);
    const from = Number(range[1]);
    const to = range[2] === undefined ? from : Number(range[2]);
    if (to < from) throw new Error(`--warden-cores: backwards range ${part}`);
    for (let c = from; c <= to; c++) cores.add(c);
  }
  const wardenCores = [...cores].sort((a, b) => a - b);
  if (wardenCores.length === 0) throw new Error('--warden-cores: no core named');
  const outside = wardenCores.filter((c) => c >= machineCores);
  if (outside.length)
    throw new Error(`--warden-cores: this machine has cores 0-${machineCores - 1}, not ${outside.join(', ')}`);
  const otherCores = Array.from({ length: machineCores }, (_, c) => c).filter((c) => !cores.has(c));
  if (otherCores.length === 0)
    throw new Error('--warden-cores: leave at least one core for the Temporal server, Postgres and the load generator');
  return { wardenCores, otherCores };
}

export function coreList(cores: readonly number[]): string {
  return cores.join(',');
}

/** Pins every thread of `pid` to `cores`. */
export function pin(pid: number, cores: readonly number[]): void {
  execFileSync('taskset', ['-a', '-p', '-c', coreList(cores), String(pid)], { stdio: 'ignore' });
}

/**
 * Applies the split to a started stack: Warden's process to its cores; its children (Temporal
 * server, Postgres and its backends), the sandbox and this process (autocannon and the open-loop
 * generator run here) to the others. Returns what was pinned where, for the log.
 */
export function pinStack(pinning: Pinning, pids: { warden: number; sandbox?: number }): string {
  pin(pids.warden, pinning.wardenCores);
  const others = [
    ...descendantsOf(pids.warden).map((p) => p.pid),
    ...(pids.sandbox ? [pids.sandbox] : []),
    process.pid,
  ];
  for (const pid of others) {
    try {
      pin(pid, pinning.otherCores);
    } catch {
      // a short-lived child (a Postgres backend closing) may be gone already
    }
  }
  return `warden ${pids.warden} on cores ${coreList(pinning.wardenCores)}; ${others.length} other processes (Temporal server, Postgres, sandbox, load generator) on ${coreList(pinning.otherCores)}`;
}
