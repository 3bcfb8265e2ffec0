import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import httpMetrics from '../../src/api/plugins/httpMetrics';
import runtimePlugin from '../../src/api/plugins/runtime';
import type { Runtime } from '../../src/runtime';
import {
  createMetrics,
  createRegistry,
  registerCircuitMetrics,
  registerDatabaseTopologyMetrics,
  registerIncidentMetrics,
  registerPoolMetrics,
  registerTaskQueueMetrics,
} from '../../src/telemetry/metrics';
import { registerSmsPumpingMetrics } from '../../src/telemetry/smsPumpingMetrics';

/** Prometheus' own series, valid in any expression. */
const BUILTIN = new Set(['up', 'ALERTS', 'ALERTS_FOR_STATE', 'scrape_duration_seconds', 'scrape_samples_scraped']);

/**
 * Every series name a Warden process exposes, taken from the real catalog (and the HTTP
 * plugin's histogram) rather than a hand-kept list: histograms add _bucket, _sum and _count.
 */
export async function catalogSeriesNames(): Promise<Set<string>> {
  const registry = createRegistry();
  createMetrics(registry);
  registerPoolMetrics(registry, () => ({ total: 0, idle: 0, waiting: 0, max: 1 }));
  registerTaskQueueMetrics(registry, async () => []);
  registerIncidentMetrics(registry, async () => []);
  registerCircuitMetrics(registry, async () => []);
  registerSmsPumpingMetrics(registry, async () => ({ countries: [], activeBlocks: 0, evaluatedAt: null }));
  registerDatabaseTopologyMetrics(registry, () => ({
    current: 'catalog',
    role: 'primary',
    readOnly: { forced: false, standby: false },
  }));
  const app = Fastify();
  await app.register(runtimePlugin, { runtime: { registry } as unknown as Runtime });
  await app.register(httpMetrics, { server: 'catalog' });
  await app.ready();
  await app.close();
  const names = new Set<string>(BUILTIN);
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    const type = String(metric.type);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(metric.name + suffix);
  }
  return names;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
  'group',
]);

/**
 * The series names a PromQL expression selects. Label matchers, grouping lists, strings and
 * function calls are stripped first, so what is left are the metric names.
 */
export function seriesNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    // durations like 5m were inside [] and are gone; a name followed by "(" is a function
    if (KEYWORDS.has(name.toLowerCase())) continue;
    if (/^\s*\(/.test(stripped.slice(match.index + name.length))) continue;
    names.add(name);
  }
  return [...names];
}

export function hasBinary(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs PromQL expressions through promtool's parser by wrapping each in a recording rule:
 * `promtool check rules` rejects a file with any expression that does not parse.
 */
export function promtoolParses(exprs: string[]): { ok: boolean; output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-promql-'));
  try {
    const file = path.join(dir, 'exprs.yml');
    const rules = exprs
      .map((expr, i) => `      - record: check:expr_${i}\n        expr: ${JSON.stringify(expr)}`)
      .join('\n');
    writeFileSync(file, `groups:\n  - name: dashboard-expressions\n    rules:\n${rules}\n`);
    try {
      return {
        ok: true,
        output: execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8', stdio: 'pipe' }),
      };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
