/**
 * CPU time per component, from /proc, so a phase can say which process was busy: Warden's
 * JavaScript thread (API, workflow code and activities share one event loop in the embedded
 * stack), its other threads (libuv pool with bcrypt, Temporal's core SDK, GC), the Temporal
 * server, Postgres, the sandbox, the peer, the load generator, and everything else on the
 * machine (other users of a shared machine show up there). Linux only; elsewhere it is empty.
 */
import { readdirSync, readFileSync } from 'node:fs';

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
  return {
    pid: Number(line.slice(0, open).trim()),
    comm: line.slice(open + 1, close),
    ppid: Number(rest[1]),
    ticks: utime + stime,
  };
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every process below `root` in the process tree (children, their children, ...). */
export function descendantsOf(root: number, procs: readonly Stat[] = allProcesses()): Stat[] {
  const children = new Map<number, Stat[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: Stat[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
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

/** Busy ticks of the machine (all CPUs) from the first line of /proc/stat, and the kernel's share in interrupts. */
function machineTicks(): { busy: number; kernel: number } {
  const line = read('/proc/stat')?.split('\n')[0];
  if (!line) return { busy: 0, kernel: 0 };
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const kernel = (irq ?? 0) + (softirq ?? 0);
  return { busy: (user ?? 0) + (nice ?? 0) + (system ?? 0) + kernel + (steal ?? 0), kernel };
}

/**
 * Ticks per process (keyed `component|pid`, so a process that starts or ends between two
 * snapshots is told apart from one that kept running), plus the machine's busy and interrupt
 * ticks. Interrupt time (loopback networking's softirq, mostly) belongs to no process.
 */
export type CpuSnapshot = { at: number; ticks: Record<string, number>; machine: { busy: number; kernel: number } };

const KERNEL = 'kernel (irq, softirq)';
const OTHERS = 'everything else on the machine';
const MACHINE = 'machine busy';

export class CpuWatcher {
  constructor(private readonly roles: () => { warden?: number; sandbox?: number; peer?: number }) {}

  snapshot(): CpuSnapshot {
    const procs = allProcesses();
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const descendants = (root: number) => descendantsOf(root, procs);
    const ticks: Record<string, number> = {};
    const { warden, sandbox, peer } = this.roles();
    if (warden && byPid.has(warden)) {
      const total = byPid.get(warden)!.ticks;
      const main = parseStat(read(`/proc/${warden}/task/${warden}/stat`) ?? '')?.ticks ?? 0;
      ticks[`warden JS thread|${warden}`] = main;
      ticks[`warden other threads|${warden}`] = total - main;
      for (const d of descendants(warden)) {
        const component =
          d.comm === 'temporal' ? 'temporal server' : d.comm.startsWith('postgres') ? 'postgres' : 'stack, other';
        ticks[`${component}|${d.pid}`] = d.ticks;
      }
    }
    for (const [name, pid] of [
      ['sandbox', sandbox],
      ['peer (better-auth)', peer],
      ['bench (load generator)', process.pid],
    ] as const) {
      const p = pid !== undefined ? byPid.get(pid) : undefined;
      if (p) ticks[`${name}|${p.pid}`] = p.ticks;
    }
    return { at: Date.now(), ticks, machine: machineTicks() };
  }
}

/**
 * Cores each component used between two snapshots (1.0 = one core fully busy). A process seen
 * in both counts its difference, one that started in between counts whole; one that ended in
 * between is left out (its last moments are lost; before, its whole past was subtracted,
 * which made a phase with Postgres connections closing show Postgres as nothing and the rest
 * of the machine as busy). Interrupt time is its own column; what no component and no
 * interrupt explains is "everything else on the machine" (other users of a shared machine).
 */
export function coresUsed(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  const seconds = (after.at - before.at) / 1000;
  if (seconds <= 0) return {};
  const byComponent: Record<string, number> = {};
  for (const [key, t] of Object.entries(after.ticks)) {
    const component = key.slice(0, key.lastIndexOf('|'));
    const delta = t - (before.ticks[key] ?? 0);
    if (delta >= 0) byComponent[component] = (byComponent[component] ?? 0) + delta;
  }
  const cores = (t: number) => Math.round((t / TICKS_PER_SECOND / seconds) * 100) / 100;
  const out: Record<string, number> = {};
  let accounted = 0;
  for (const [component, t] of Object.entries(byComponent)) {
    out[component] = cores(t);
    accounted += t;
  }
  const busy = after.machine.busy - before.machine.busy;
  const kernel = after.machine.kernel - before.machine.kernel;
  out[KERNEL] = cores(Math.max(0, kernel));
  out[OTHERS] = cores(Math.max(0, busy - kernel - accounted));
  out[MACHINE] = cores(busy);
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
  'stack, other',
  KERNEL,
  OTHERS,
  MACHINE,
];

/** A markdown table of cores used, one row per phase; columns nobody used are left out. */
export function cpuTable(rows: Array<{ label: string; cpu?: Record<string, number> }>): string[] {
  const present = COLUMNS.filter((c) => rows.some((r) => (r.cpu?.[c] ?? 0) > 0));
  if (present.length === 0) return [];
  return [
    `| phase | ${present.join(' | ')} |`,
    `|---|${present.map(() => '--:').join('|')}|`,
    ...rows.map(
      (r) =>
        `| ${r.label} | ${present.map((c) => (r.cpu?.[c] === undefined ? '–' : r.cpu[c]!.toFixed(2))).join(' | ')} |`,
    ),
  ];
}

/**
 * The same phases as CPU milliseconds per answered request, next to the budget the 70% target
 * leaves. One bcrypt operation costs `opMs` of CPU (the bound's cores divided by its rate);
 * at 70% of the bound a request may cost opMs / 0.7 in all, so everything but the bcrypt
 * operation (HTTP, Postgres, the workflow, the Temporal server, the kernel's networking, the
 * benchmark's own sandbox and load generator) must fit in opMs / 0.7 - opMs.
 */
export function perRequestTable(
  rows: Array<{ label: string; throughput: number; cpu?: Record<string, number> }>,
  opMs: number,
): string[] {
  const ms = (cores: number | undefined, rate: number) => ((cores ?? 0) * 1000) / rate;
  const cell = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
  const budget = opMs / 0.7 - opMs;
  const out = [
    '| phase | req/s | machine CPU per request | Warden beyond its bcrypt op | Temporal server | Postgres | kernel (irq, softirq) | sandbox + load generator | everything else | beyond bcrypt, all | budget at 70% |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    if (!r.cpu || !(r.throughput > 0)) continue;
    const c = r.cpu;
    const total = ms(c[MACHINE], r.throughput);
    const warden =
      ms((c['warden JS thread'] ?? 0) + (c['warden other threads'] ?? 0) + (c['stack, other'] ?? 0), r.throughput) -
      opMs;
    out.push(
      `| ${r.label} | ${r.throughput.toFixed(1)} | ${cell(total)} | ${cell(warden)} | ${cell(ms(c['temporal server'], r.throughput))} | ${cell(ms(c.postgres, r.throughput))} | ` +
        `${cell(ms(c[KERNEL], r.throughput))} | ${cell(ms((c.sandbox ?? 0) + (c['bench (load generator)'] ?? 0), r.throughput))} | ${cell(ms(c[OTHERS], r.throughput))} | ` +
        `**${cell(total - opMs)}** | ${cell(budget)} |`,
    );
  }
  return out.length > 2 ? out : [];
}
