/**
 * Admission control in front of the bcrypt work. Every initiate hashes a new secret and every
 * verify compares one (inside the challenge workflow's activities), on as many cores as the
 * machine has: past that, more work in flight only makes every request wait longer. A gate lets
 * `concurrency` requests in at a time, keeps at most `queue` more waiting for at most
 * `queueWaitMs`, and turns the rest away at once, before they cost a database write, a hash or a
 * workflow, so the requests let in keep their latency.
 *
 * Without configured values the limits come from the machine: with `cores` CPUs and one hash
 * taking `bcryptMs`, the machine answers `concurrency` requests in flight within `sloMs` when
 * `concurrency * bcryptMs / cores` stays within the SLO. Initiates and verifies each get half of
 * that, so a flood of one cannot take the other's place (a user finishing a sign-in is not shed
 * because others are starting theirs).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcrypt';
import type { AdmissionConfig } from '../config/overload';

export interface AdmissionLimits {
  concurrency: number;
  queue: number;
  queueWaitMs: number;
}

export type AdmissionAction = 'initiate' | 'verify';
export type ShedReason = 'queue_full' | 'queue_timeout';

export type Admission = { admitted: true; waitedMs: number; release(): void } | { admitted: false; reason: ShedReason };

interface Waiter {
  since: number;
  timer: NodeJS.Timeout;
  admit(): void;
}

/** What a gate reports as it changes (the metrics' gauges). */
export interface GateObserver {
  inFlight(delta: number): void;
  queued(delta: number): void;
}

/** One pool of slots with its short FIFO queue. */
export class AdmissionGate {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    readonly limits: AdmissionLimits,
    private readonly observer?: GateObserver,
  ) {}

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  acquire(): Promise<Admission> {
    if (this.running < this.limits.concurrency && this.waiting.length === 0) {
      this.take();
      return Promise.resolve(this.ticket(0));
    }
    if (this.waiting.length >= this.limits.queue || this.limits.queueWaitMs === 0)
      return Promise.resolve({ admitted: false, reason: 'queue_full' });
    return new Promise((resolve) => {
      const since = performance.now();
      const waiter: Waiter = {
        since,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          this.observer?.queued(-1);
          resolve({ admitted: false, reason: 'queue_timeout' });
        }, this.limits.queueWaitMs),
        admit: () => resolve(this.ticket(performance.now() - since)),
      };
      this.waiting.push(waiter);
      this.observer?.queued(1);
    });
  }

  private take(): void {
    this.running += 1;
    this.observer?.inFlight(1);
  }

  private ticket(waitedMs: number): Admission {
    let released = false;
    return {
      admitted: true,
      waitedMs,
      release: () => {
        if (released) return;
        released = true;
        this.running -= 1;
        this.observer?.inFlight(-1);
        this.next();
      },
    };
  }

  private next(): void {
    while (this.running < this.limits.concurrency && this.waiting.length > 0) {
      const waiter = this.waiting.shift()!;
      clearTimeout(waiter.timer);
      this.observer?.queued(-1);
      this.take();
      waiter.admit();
    }
  }
}

export interface MachineFacts {
  cores: number;
  bcryptMs: number;
}

/** The limits of each gate: configured values win, the rest follow from the machine. */
export function admissionLimits(config: AdmissionConfig, machine: MachineFacts): AdmissionLimits {
  const derived = Math.floor((machine.cores * config.sloMs) / (2 * Math.max(1, machine.bcryptMs)));
  const concurrency = config.concurrency ?? Math.max(1, derived);
  return {
    concurrency,
    queue: config.queue ?? concurrency,
    queueWaitMs: config.queueWaitMs ?? Math.round(config.sloMs / 4),
  };
}

/** The fastest of a few hashes at `cost` (the fastest is the machine's, the others carry its noise). */
export async function measureBcryptMs(cost: number, rounds = 3): Promise<number> {
  await bcrypt.hash('warden-admission-warm-up', cost);
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < rounds; i += 1) {
    const started = performance.now();
    await bcrypt.hash(`warden-admission-${i}`, cost);
    best = Math.min(best, performance.now() - started);
  }
  return Math.max(1, Math.round(best));
}

export function cpuCores(): number {
  return os.availableParallelism();
}
