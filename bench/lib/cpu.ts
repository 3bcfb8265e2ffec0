import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time per component, from /proc, so a phase can say which process was busy: Warden's
 * JavaScript thread (API, workflow code and activities share one event loop in the embedded
 * stack), its other threads (libuv pool with bcrypt, Temporal's core SDK, GC), the Temporal
 * server, Postgres, the sandbox, the peer, the load generator, and everything else on the
 * machine (other users of a shared machine show up there). Linux only; elsewhere it is empty.
 */
const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture the bench runs on

interface Stat {
  pid: number;
  comm: string;
  ppid: number;
  ticks: number;
}

/** utime + stime of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line. */
export function parseStat(line: string): Stat | undefined {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = line.slice(close + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { pid: Number(line.slice(0, open).trim()), comm: line.slice(open + 1, close), ppid: Number(rest[1]), ticks: utime + stime };
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function allProcesses(): Stat[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: Stat[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const s = read(`/proc/${e}/stat`);
    const parsed = s && parseStat(s);
    if (parsed) out.push(parsed);
  }
  return out;
}

/** Total busy ticks of the machine (all CPUs), from the first line of /proc/stat. */
function machineBusyTicks(): number {
  const line = read('/proc/stat')?.split('\n')[0];
  if (!line) return 0;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
}

export type CpuSnapshot = { at: number; ticks: Record<string, number> };

export class CpuWatcher {
  constructor(private readonly roles: () => { warden?: number; sandbox?: number; peer?: number }) {}

  snapshot(): CpuSnapshot {
    const procs = allProcesses();
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const children = new Map<number, Stat[]>();
    for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
    const descendants = (root: number): Stat[] => {
      const out: Stat[] = [];
      const stack = [...(children.get(root) ?? [])];
      while (stack.length) {
        const p = stack.pop()!;
        out.push(p);
        stack.push(...(children.get(p.pid) ?? []));
      }
      return out;
    };
    const ticks: Record<string, number> = {};
    const add = (name: string, n: number) => (ticks[name] = (ticks[name] ?? 0) + n);
    const ours = new Set<number>();
    const { warden, sandbox, peer } = this.roles();
    if (warden && byPid.has(warden)) {
      const total = byPid.get(warden)!.ticks;
      const main = parseStat(read(`/proc/${warden}/task/${warden}/stat`) ?? '')?.ticks ?? 0;
      add('warden JS thread', main);
      add('warden other threads', total - main);
      ours.add(warden);
      for (const d of descendants(warden)) {
        add(d.comm === 'temporal' ? 'temporal server' : d.comm.startsWith('postgres') ? 'postgres' : 'stack, other', d.ticks);
        ours.add(d.pid);
      }
    }
    for (const [name, pid] of [['sandbox', sandbox], ['peer (better-auth)', peer], ['bench (load generator)', process.pid]] as const) {
      const p = pid !== undefined ? byPid.get(pid) : undefined;
      if (!p) continue;
      add(name, p.ticks);
      ours.add(p.pid);
    }
    let accounted = 0;
    for (const pid of ours) accounted += byPid.get(pid)?.ticks ?? 0;
    ticks['machine busy'] = machineBusyTicks();
    ticks['__ours'] = accounted;
    return { at: Date.now(), ticks };
  }
}

/** Cores each component used between two snapshots (1.0 = one core fully busy). */
export function coresUsed(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  const seconds = (after.at - before.at) / 1000;
  if (seconds <= 0) return {};
  const out: Record<string, number> = {};
  for (const [name, t] of Object.entries(after.ticks)) {
    if (name.startsWith('__')) continue;
    const delta = t - (before.ticks[name] ?? 0);
    if (delta >= 0) out[name] = Math.round((delta / TICKS_PER_SECOND / seconds) * 100) / 100;
  }
  // processes that started or ended within the window make this approximate; never below 0
  const others = (after.ticks['machine busy']! - before.ticks['machine busy']!) - (after.ticks['__ours']! - (before.ticks['__ours'] ?? 0));
  out['everything else on the machine'] = Math.max(0, Math.round((others / TICKS_PER_SECOND / seconds) * 100) / 100);
  return out;
}

const COLUMNS = [
  'warden JS thread',
  'warden other threads',
  'temporal server',
  'postgres',
  'sandbox',
  'peer (better-auth)',
  'bench (load generator)',
  'everything else on the machine',
  'machine busy',
];

/** A markdown table of cores used, one row per phase; columns nobody used are left out. */
export function cpuTable(rows: Array<{ label: string; cpu?: Record<string, number> }>): string[] {
  const present = COLUMNS.filter((c) => rows.some((r) => (r.cpu?.[c] ?? 0) > 0));
  if (present.length === 0) return [];
  return [
    `| phase | ${present.join(' | ')} |`,
    `|---|${present.map(() => '--:').join('|')}|`,
    ...rows.map((r) => `| ${r.label} | ${present.map((c) => (r.cpu?.[c] === undefined ? '–' : r.cpu[c]!.toFixed(2))).join(' | ')} |`),
  ];
}
