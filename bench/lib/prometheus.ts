/**
 * Just enough of the Prometheus text format to read counters and histogram sums/counts from
 * Warden's /metrics before and after a benchmark phase.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescape(value: string): string {
  return value.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(LABEL)) labels[label[1]!] = unescape(label[2]!);
    samples.push({ name: match[1]!, labels, value: parseValue(match[3]!) });
  }
  return samples;
}

function matches(labels: Record<string, string>, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([k, v]) => labels[k] === v);
}

/** Sum of every sample called `name` whose labels include `wanted` (e.g. all statuses of a route). */
export function sumOf(
  samples: readonly Sample[],
  name: string,
  wanted: Record<string, string> = {},
): number | undefined {
  let found = false;
  let total = 0;
  for (const s of samples) {
    if (s.name !== name || !matches(s.labels, wanted)) continue;
    found = true;
    total += s.value;
  }
  return found ? total : undefined;
}

/** A histogram's `_sum` and `_count` over the label sets that include `wanted`. */
export function histogramTotals(
  samples: readonly Sample[],
  name: string,
  wanted: Record<string, string> = {},
): { sum: number; count: number } | undefined {
  const sum = sumOf(samples, `${name}_sum`, wanted);
  const count = sumOf(samples, `${name}_count`, wanted);
  return sum === undefined || count === undefined ? undefined : { sum, count };
}

export interface HistogramDelta {
  name: string;
  labels: Record<string, string>;
  count: number;
  meanMs: number;
}

const labelKey = (labels: Record<string, string>) =>
  Object.entries(labels)
    .filter(([k]) => k !== 'le' && k !== 'service')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/**
 * Every histogram series that observed something between two scrapes, with the mean of what
 * it observed (ms). Generic on purpose: whatever stage timings the service exposes show up.
 */
export function histogramDeltas(before: readonly Sample[], after: readonly Sample[]): HistogramDelta[] {
  const index = (samples: readonly Sample[], suffix: string) => {
    const map = new Map<string, Sample>();
    for (const s of samples)
      if (s.name.endsWith(suffix)) map.set(`${s.name.slice(0, -suffix.length)}|${labelKey(s.labels)}`, s);
    return map;
  };
  const [sumsBefore, countsBefore, sumsAfter, countsAfter] = [
    index(before, '_sum'),
    index(before, '_count'),
    index(after, '_sum'),
    index(after, '_count'),
  ];
  const out: HistogramDelta[] = [];
  for (const [key, countAfter] of countsAfter) {
    const sumAfter = sumsAfter.get(key);
    if (!sumAfter) continue;
    const count = countAfter.value - (countsBefore.get(key)?.value ?? 0);
    if (count <= 0) continue;
    const sum = sumAfter.value - (sumsBefore.get(key)?.value ?? 0);
    const { service: _service, ...labels } = countAfter.labels;
    out.push({ name: key.split('|')[0]!, labels, count, meanMs: Math.round((sum / count) * 1000 * 100) / 100 });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || labelKey(a.labels).localeCompare(labelKey(b.labels)));
}
