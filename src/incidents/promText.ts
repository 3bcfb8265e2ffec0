/**
 * Just enough of the Prometheus text exposition format to judge the latency targets
 * from a /metrics page: series values by name and labels, and histogram quantiles computed
 * the way PromQL's histogram_quantile does (linear interpolation inside the bucket).
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseSamples(text: string, keep: (name: string) => boolean = () => true): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m || !keep(m[1]!)) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    const value = m[3] === '+Inf' ? Infinity : Number(m[3]);
    if (!Number.isNaN(value)) out.push({ name: m[1]!, labels, value });
  }
  return out;
}

export function seriesKey(s: Pick<Sample, 'name' | 'labels'>): string {
  const labels = Object.entries(s.labels)
    .filter(([k]) => k !== 'service' && k !== 'pid')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${s.name}{${labels}}`;
}

/** Sums samples with the same key (several processes' pages scraped together). */
export function totals(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    const key = seriesKey(s);
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/** `now - before` per key, never negative (a restarted process resets its counters). */
export function delta(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(now)) out[key] = Math.max(0, value - (before[key] ?? 0));
  return out;
}

/**
 * The q-quantile of a histogram from cumulative bucket counts, summed over every series of
 * `name` matching `where`. Undefined when the histogram holds no observations.
 */
export function histogramQuantile(
  values: Record<string, number>,
  name: string,
  q: number,
  where: (labels: Record<string, string>) => boolean = () => true,
): { value: number; count: number } | undefined {
  const buckets = new Map<number, number>();
  for (const [key, count] of Object.entries(values)) {
    const parsed = parseKey(key);
    if (parsed.name !== `${name}_bucket` || !where(parsed.labels)) continue;
    const le = parsed.labels.le === '+Inf' ? Infinity : Number(parsed.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + count);
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return { value: prevLe, count: total };
      const inBucket = count - prevCount;
      const value = inBucket > 0 ? prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket : le;
      return { value, count: total };
    }
    prevLe = le;
    prevCount = count;
  }
  return { value: prevLe, count: total };
}

export function parseKey(key: string): { name: string; labels: Record<string, string> } {
  const open = key.indexOf('{');
  const name = key.slice(0, open);
  const labels: Record<string, string> = {};
  for (const part of key.slice(open + 1, -1).split(',')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    labels[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { name, labels };
}
