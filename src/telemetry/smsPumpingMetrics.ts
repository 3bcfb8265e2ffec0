/**
 * SMS conversion per country and the prefix blocks in force, read from Postgres at scrape time
 * (what the last SMS pumping evaluation recorded, migrations/0201): one worker counts, every
 * process reports the same values, and none reports a stale one. Labels are calling codes, a
 * bounded set; prefixes never become labels.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Database } from '../db/database';

export interface SmsPumpingSample {
  countries: Array<{ country: string; messages: number; settled: number; verified: number }>;
  activeBlocks: number;
  /** unix seconds of the last evaluation; null before the first */
  evaluatedAt: number | null;
}

// a scrape must never hang on a slow database: Prometheus' own scrape timeout is 10 s
const PROBE_TIMEOUT_MS = 2000;

export function smsPumpingProbe(db: Database): () => Promise<SmsPumpingSample> {
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('SMS conversion query timed out')), PROBE_TIMEOUT_MS);
    });
    const query = db.query<{
      kind: string;
      country: string | null;
      messages: number;
      settled: number;
      verified: number;
    }>(
      `SELECT 'country' AS kind, country, messages::float8, settled, verified FROM sms_country_conversion
       UNION ALL SELECT 'blocks', NULL, count(*)::float8, 0, 0 FROM sms_prefix_blocks WHERE until > now()
       UNION ALL SELECT 'evaluated', NULL, extract(epoch FROM evaluated_at)::float8, 0, 0 FROM sms_pumping_evaluations`,
    );
    const { rows } = await Promise.race([query, timeout]).finally(() => clearTimeout(timer));
    return {
      countries: rows
        .filter((r) => r.kind === 'country')
        .map((r) => ({ country: r.country!, messages: r.messages, settled: r.settled, verified: r.verified })),
      activeBlocks: rows.find((r) => r.kind === 'blocks')?.messages ?? 0,
      evaluatedAt: rows.find((r) => r.kind === 'evaluated')?.messages ?? null,
    };
  };
}

/** One probe call per scrape, however many gauges read it. */
function memo<T>(probe: () => Promise<T>, ttlMs = 1000): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!last || Date.now() - last.at > ttlMs) {
      const value = probe();
      last = { at: Date.now(), value };
      value.catch(() => {
        last = undefined;
      });
    }
    return last.value;
  };
}

export function registerSmsPumpingMetrics(registry: Registry, probe: () => Promise<SmsPumpingSample>) {
  const sample = memo(probe);
  const registers = [registry];
  // a failed probe drops the series for that scrape instead of reporting stale numbers
  const read = () => sample().catch(() => undefined);
  return {
    messages: new Gauge({
      name: 'warden_sms_country_messages',
      help: "SMS a provider took per country (E.164 calling code) over the SMS pumping evaluation's longest window, at its last run",
      labelNames: ['country'] as const,
      registers,
      async collect() {
        this.reset();
        for (const c of (await read())?.countries ?? []) this.set({ country: c.country }, c.messages);
      },
    }),
    conversion: new Gauge({
      name: 'warden_sms_country_conversion_ratio',
      help: 'Verified share of the challenges with a known outcome whose SMS went to the country, over the same window (absent while none is known)',
      labelNames: ['country'] as const,
      registers,
      async collect() {
        this.reset();
        for (const c of (await read())?.countries ?? [])
          if (c.settled > 0) this.set({ country: c.country }, c.verified / c.settled);
      },
    }),
    blocks: new Gauge({
      name: 'warden_sms_prefix_blocks_active',
      help: 'Number prefixes SMS are refused to for SMS pumping, now (docs/delivery.md#sms-pumping)',
      registers,
      async collect() {
        this.reset();
        const s = await read();
        if (s) this.set(s.activeBlocks);
      },
    }),
    evaluated: new Gauge({
      name: 'warden_sms_pumping_last_evaluation_timestamp_seconds',
      help: 'Unix time of the last SMS pumping evaluation (absent before the first, or with WARDEN_SMS_PUMPING_INTERVAL=off)',
      registers,
      async collect() {
        this.reset();
        const s = await read();
        if (s?.evaluatedAt != null) this.set(s.evaluatedAt);
      },
    }),
  };
}
