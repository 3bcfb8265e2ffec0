/**
 * An open-loop, constant-arrival-rate load generator. Arrival i is due at i * 1000 / rate ms
 * after the start, whether or not earlier requests have been answered: a slow server does not
 * slow the generator down (a closed loop, such as autocannon's connections, would wait, and
 * its latencies would hide the queueing: coordinated omission). Latency is measured from the
 * scheduled time, so a late send (the generator itself falling behind) counts against the
 * result rather than disappearing; the lag is reported on its own as well.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** Number of arrivals in `durationMs` at `ratePerSecond`. */
export function arrivalCount(ratePerSecond: number, durationMs: number): number {
  if (!(ratePerSecond > 0) || !(durationMs > 0)) return 0;
  // the epsilon keeps 10/s over 1000 ms at 10 rather than 9 after float rounding
  return Math.floor((ratePerSecond * durationMs) / 1000 + 1e-9);
}

/** Offset in ms from the start at which arrival `index` is due. */
export function scheduledOffset(index: number, ratePerSecond: number): number {
  return (index * 1000) / ratePerSecond;
}

/**
 * How many arrivals are due by `elapsedMs`, never more than `total`: after a tick at
 * `elapsedMs` every arrival with index below the result must have been fired. A tick that
 * wakes late returns several at once (catch-up), so the mean rate holds.
 */
export function dueBy(elapsedMs: number, ratePerSecond: number, total: number): number {
  if (elapsedMs < 0) return 0;
  return Math.min(total, Math.floor((elapsedMs * ratePerSecond) / 1000 + 1e-9) + 1);
}

export interface Arrival {
  index: number;
  /** epoch ms at which the arrival was due (the start of its latency clock) */
  scheduledAt: number;
  /** ms the generator fired it after it was due */
  lagMs: number;
}

export interface OpenLoopResult {
  fired: number;
  /** how late each arrival was fired, ms */
  lagMs: number[];
  /** from the first arrival until the last one was fired, ms */
  sendWindowMs: number;
  /** from the first arrival until every fired arrival settled, ms */
  elapsedMs: number;
  /** arrivals whose `fire` rejected */
  failures: number;
}

export interface OpenLoopOptions {
  ratePerSecond: number;
  durationMs: number;
  /** runs one arrival; not awaited by the scheduler, only at the end */
  fire: (arrival: Arrival) => Promise<void>;
  /** stop firing early (already fired arrivals still settle) */
  signal?: AbortSignal;
  /** how long to wait for in-flight arrivals after the last one was fired */
  drainTimeoutMs?: number;
}

export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { ratePerSecond, durationMs, fire, signal } = options;
  const total = arrivalCount(ratePerSecond, durationMs);
  const startPerf = performance.now();
  const startEpoch = Date.now();
  const inFlight = new Set<Promise<void>>();
  const lagMs: number[] = [];
  let failures = 0;
  let next = 0;
  while (next < total && !signal?.aborted) {
    const elapsed = performance.now() - startPerf;
    const due = dueBy(elapsed, ratePerSecond, total);
    for (; next < due; next++) {
      const offset = scheduledOffset(next, ratePerSecond);
      const lag = Math.max(0, elapsed - offset);
      lagMs.push(lag);
      const settled: Promise<void> = fire({ index: next, scheduledAt: startEpoch + offset, lagMs: lag })
        .catch(() => {
          failures += 1;
        })
        .finally(() => inFlight.delete(settled));
      inFlight.add(settled);
    }
    if (next >= total) break;
    const wait = scheduledOffset(next, ratePerSecond) - (performance.now() - startPerf);
    // a timer wakes up to ~1 ms late; sleeping 0 still yields to the I/O of in-flight requests
    await sleep(Math.max(0, wait));
  }
  const sendWindowMs = performance.now() - startPerf;
  const drain = Promise.allSettled([...inFlight]);
  const timeout = options.drainTimeoutMs ?? 120_000;
  const drained = await Promise.race([drain.then(() => true), sleep(timeout, false, { ref: false })]);
  if (!drained) failures += inFlight.size;
  return { fired: next, lagMs, sendWindowMs, elapsedMs: performance.now() - startPerf, failures };
}
