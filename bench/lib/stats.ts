/**
 * Latency statistics for the benchmark. Percentiles use the nearest-rank definition: the
 * p-th percentile is the smallest sample such that at least p% of the samples are <= it. It
 * always returns a value that was observed (no interpolation between two requests), which is
 * what a latency SLO ("95% of requests answer within X") means.
 */
export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array; `p` in [0, 100]. NaN for no samples. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within [0, 100], got ${p}`);
  if (sorted.length === 0) return Number.NaN;
  if (p === 0) return sorted[0]!;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function percentile(values: readonly number[], p: number): number {
  return percentileSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

const round = (value: number, digits: number) => {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

/** count, min, mean, p50, p95, p99, max; values rounded to `digits` decimals (ms: 0.1 ms). */
export function summarize(values: readonly number[], digits = 1): Summary {
  if (values.length === 0) {
    return {
      count: 0,
      min: Number.NaN,
      mean: Number.NaN,
      p50: Number.NaN,
      p95: Number.NaN,
      p99: Number.NaN,
      max: Number.NaN,
    };
  }
  const sorted = [...values].sort((a, b) => a - b);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: round(sorted[0]!, digits),
    mean: round(sum / sorted.length, digits),
    p50: round(percentileSorted(sorted, 50), digits),
    p95: round(percentileSorted(sorted, 95), digits),
    p99: round(percentileSorted(sorted, 99), digits),
    max: round(sorted[sorted.length - 1]!, digits),
  };
}

/** Events per second over `ms` milliseconds (0 when no time passed). */
export function perSecond(count: number, ms: number): number {
  return ms > 0 ? round((count * 1000) / ms, 2) : 0;
}

/** `value / bound` as a fraction rounded to 3 decimals; null when the bound is unknown. */
export function fractionOf(value: number, bound: number | undefined): number | null {
  if (!bound || !Number.isFinite(bound) || bound <= 0 || !Number.isFinite(value)) return null;
  return round(value / bound, 3);
}

/** a / b rounded to 2 decimals, null when either side is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return round(a / b, 2);
}

/**
 * Mean per-observation duration between two scrapes of a Prometheus histogram (its `_sum` and
 * `_count` deltas), in milliseconds. The mean is exact; quantiles from buckets would not be.
 */
export function histogramDeltaMeanMs(
  before: { sum: number; count: number } | undefined,
  after: { sum: number; count: number } | undefined,
): { count: number; meanMs: number } | null {
  if (!after) return null;
  const count = after.count - (before?.count ?? 0);
  const sum = after.sum - (before?.sum ?? 0);
  if (count <= 0) return { count: 0, meanMs: Number.NaN };
  return { count, meanMs: round((sum / count) * 1000, 2) };
}

/** A clock's reading for a table: `12.3 s`, or `not reached` (null). */
export function seconds(v: number | null): string {
  return v === null ? 'not reached' : `${v} s`;
}
