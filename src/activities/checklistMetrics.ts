/**
 * Checklist items judged from the metrics: the p95 targets (generation < 500 ms,
 * validation < 200 ms, provider calls < 1 s), metrics reporting, and rate-limit metrics moving.
 * Each compares the metrics now with the snapshot taken at the start of the run, so it judges
 * this run's synthetic traffic (and whatever real traffic ran beside it), not the process's
 * whole life, which may include the incident itself.
 */
import type { CheckOutcome } from '../shared/checklist';
import { delta, histogramQuantile, parseKey, parseSamples, totals } from '../incidents/promText';
import type { Runtime } from '../runtime';
import type { CheckInput, MetricsBaseline } from './checklistTypes';

const WATCHED = [
  'warden_auth_generation_duration_seconds_bucket',
  'warden_auth_validation_duration_seconds_bucket',
  'warden_delivery_send_duration_seconds_bucket',
  'warden_auth_tokens_generated_total',
  'warden_auth_validation_attempts_total',
  'warden_ratelimit_exceeded_total',
];

/** Metric families the dashboards and alert rules are built on: each must be exposed. */
const CATALOG = [
  'warden_auth_tokens_generated_total',
  'warden_auth_validation_attempts_total',
  'warden_auth_tokens_invalidated_total',
  'warden_auth_generation_duration_seconds',
  'warden_auth_validation_duration_seconds',
  'warden_ratelimit_exceeded_total',
  'warden_delivery_attempts_total',
  'warden_delivery_send_duration_seconds',
  'warden_db_connections',
];

const ms = (seconds: number) => `${Math.round(seconds * 1000)} ms`;

export function createMetricsChecklistActivities({ registry, config }: Pick<Runtime, 'registry' | 'config'>) {
  const timeoutMs = config.providers.timeoutMs;
  const t = config.incidents.p95TargetsMs;
  const TARGETS = { generation: t.generation / 1000, validation: t.validation / 1000, provider: t.provider / 1000 };

  /** This process's registry plus the other processes' /metrics pages, if configured. */
  async function pages(): Promise<string[]> {
    const own = await registry.metrics();
    const others = await Promise.all(
      config.incidents.checklistMetricsUrls.map(async (url) => {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
        return response.text();
      }),
    );
    return [own, ...others];
  }

  async function current(): Promise<Record<string, number>> {
    const samples = (await pages()).flatMap((text) => parseSamples(text, (name) => WATCHED.includes(name)));
    return totals(samples);
  }

  const sumOf = (
    values: Record<string, number>,
    name: string,
    where: (l: Record<string, string>) => boolean = () => true,
  ) =>
    Object.entries(values).reduce((sum, [key, v]) => {
      const p = parseKey(key);
      return p.name === name && where(p.labels) ? sum + v : sum;
    }, 0);

  return {
    async captureMetricsBaseline(): Promise<MetricsBaseline> {
      return { takenAt: new Date().toISOString(), values: await current() };
    },

    async checkLatencies(input: CheckInput): Promise<CheckOutcome> {
      const d = delta(await current(), input.baseline.values);
      const judge = (id: string, name: string, target: number, what: string) => {
        const p95 = histogramQuantile(d, name, 0.95);
        if (!p95) return { id, status: 'failed' as const, detail: `no ${what} observed during the run` };
        const ok = p95.value < target;
        return {
          id,
          status: ok ? ('passed' as const) : ('failed' as const),
          detail: `p95 ${ms(p95.value)} over ${p95.count} ${what}s (target < ${ms(target)})`,
        };
      };
      return {
        items: [
          judge('generation_latency', 'warden_auth_generation_duration_seconds', TARGETS.generation, 'generation'),
          judge('validation_latency', 'warden_auth_validation_duration_seconds', TARGETS.validation, 'validation'),
        ],
      };
    },

    async checkProviderLatency(input: CheckInput): Promise<CheckOutcome> {
      const d = delta(await current(), input.baseline.values);
      const providers = new Set(
        Object.keys(d)
          .map(parseKey)
          .filter((k) => k.name === 'warden_delivery_send_duration_seconds_bucket' && k.labels.provider)
          .map((k) => k.labels.provider!),
      );
      const results = [...providers]
        .map((provider) => ({
          provider,
          p95: histogramQuantile(d, 'warden_delivery_send_duration_seconds', 0.95, (l) => l.provider === provider),
        }))
        .filter((r): r is { provider: string; p95: { value: number; count: number } } => Boolean(r.p95));
      if (!results.length)
        return {
          items: [{ id: 'provider_latency', status: 'failed', detail: 'no provider call observed during the run' }],
        };
      const slow = results.filter((r) => r.p95.value >= TARGETS.provider);
      const detail = results.map((r) => `${r.provider} p95 ${ms(r.p95.value)} (${r.p95.count})`).join(', ');
      return {
        items: [
          {
            id: 'provider_latency',
            status: slow.length ? 'failed' : 'passed',
            detail: `${detail}; target < ${ms(TARGETS.provider)}`,
          },
        ],
      };
    },

    async checkMetricsReporting(input: CheckInput): Promise<CheckOutcome> {
      const texts = await pages();
      const exposed = new Set(texts.flatMap((t) => [...t.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!)));
      const missing = CATALOG.filter((name) => !exposed.has(name));
      const d = delta(await current(), input.baseline.values);
      const generated = sumOf(d, 'warden_auth_tokens_generated_total');
      const validated = sumOf(d, 'warden_auth_validation_attempts_total');
      const problems = [
        ...(missing.length ? [`not exposed: ${missing.join(', ')}`] : []),
        ...(generated > 0 ? [] : ['warden_auth_tokens_generated_total did not move during the run']),
        ...(validated > 0 ? [] : ['warden_auth_validation_attempts_total did not move during the run']),
      ];
      return {
        items: [
          {
            id: 'metrics_reporting',
            status: problems.length ? 'failed' : 'passed',
            detail: problems.length
              ? problems.join('; ')
              : `${CATALOG.length} catalog metrics exposed; +${generated} tokens generated, +${validated} validations during the run`,
          },
        ],
      };
    },

    async checkRateLimitMetrics(input: CheckInput): Promise<CheckOutcome> {
      const d = delta(await current(), input.baseline.values);
      const user = sumOf(d, 'warden_ratelimit_exceeded_total', (l) => l.scope === 'user');
      const ip = sumOf(d, 'warden_ratelimit_exceeded_total', (l) => l.scope === 'ip');
      const ok = user > 0 && ip > 0;
      return {
        items: [
          {
            id: 'ratelimit_metrics',
            status: ok ? 'passed' : 'failed',
            detail: `warden_ratelimit_exceeded_total moved by user +${user}, ip +${ip} during the run${ok ? '' : ' (expected both after the rate-limit check)'}`,
          },
        ],
      };
    },
  };
}
