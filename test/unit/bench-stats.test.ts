import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runClosedLoop } from '../../bench/lib/closedLoop';
import { coresUsed, parseStat, perRequestTable } from '../../bench/lib/cpu';
import { parsePinning } from '../../bench/lib/pinning';
import { arrivalCount, dueBy, runOpenLoop, scheduledOffset } from '../../bench/lib/openLoop';
import { histogramTotals, parsePrometheus, sumOf } from '../../bench/lib/prometheus';
import {
  fractionOf,
  histogramDeltaMeanMs,
  percentile,
  percentileSorted,
  perSecond,
  ratio,
  summarize,
} from '../../bench/lib/stats';

describe('bench percentiles (nearest rank)', () => {
  it('picks observed samples: p50 of 1..10 is 5, p95 and p99 are 10', () => {
    const values = [7, 3, 10, 1, 9, 2, 8, 4, 6, 5];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 95)).toBe(10);
    expect(percentile(values, 99)).toBe(10);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile(values, 100)).toBe(10);
  });

  it('p95 of 1..100 is 95 and p99 is 99', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 95)).toBe(95);
    expect(percentile(values, 99)).toBe(99);
  });

  it('a single sample is every percentile; no samples give NaN', () => {
    expect(percentile([42], 1)).toBe(42);
    expect(percentile([42], 99)).toBe(42);
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it('at least p% of the samples are <= the p-th percentile, and it is one of them', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 100 }),
        (values, p) => {
          const sorted = [...values].sort((a, b) => a - b);
          const q = percentileSorted(sorted, p);
          expect(values).toContain(q);
          const atOrBelow = sorted.filter((v) => v <= q).length;
          expect(atOrBelow / sorted.length).toBeGreaterThanOrEqual(p / 100);
          // and it is the smallest such sample
          const below = sorted.filter((v) => v < q).length;
          expect(below / sorted.length).toBeLessThan(p / 100);
        },
      ),
    );
  });

  it('summarize reports count, mean and ordered percentiles', () => {
    const s = summarize([10, 20, 30, 40]);
    expect(s).toEqual({ count: 4, min: 10, mean: 25, p50: 20, p95: 40, p99: 40, max: 40 });
    expect(summarize([]).count).toBe(0);
  });

  it('rates, fractions and ratios', () => {
    expect(perSecond(150, 10_000)).toBe(15);
    expect(perSecond(5, 0)).toBe(0);
    expect(fractionOf(21, 30)).toBe(0.7);
    expect(fractionOf(21, undefined)).toBeNull();
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(3, 0)).toBeNull();
    expect(ratio(null, 2)).toBeNull();
  });
});

describe('bench open-loop schedule', () => {
  it('fires rate x duration arrivals, evenly spaced', () => {
    expect(arrivalCount(10, 1000)).toBe(10);
    expect(arrivalCount(7.5, 60_000)).toBe(450);
    expect(arrivalCount(0, 1000)).toBe(0);
    expect(scheduledOffset(0, 20)).toBe(0);
    expect(scheduledOffset(3, 20)).toBe(150);
  });

  it('is due at its scheduled time, not before, and never past the total', () => {
    // at 10/s: arrival 0 at 0 ms, 1 at 100 ms, 2 at 200 ms
    expect(dueBy(-1, 10, 5)).toBe(0);
    expect(dueBy(0, 10, 5)).toBe(1);
    expect(dueBy(99.9, 10, 5)).toBe(1);
    expect(dueBy(100, 10, 5)).toBe(2);
    expect(dueBy(250, 10, 5)).toBe(3);
    expect(dueBy(10_000, 10, 5)).toBe(5);
  });

  it('a late tick catches up: everything scheduled by then is due at once', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 500, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.double({ min: 0, max: 20_000, noNaN: true }),
        (rate, total, elapsed) => {
          const due = dueBy(elapsed, rate, total);
          expect(due).toBeGreaterThanOrEqual(0);
          expect(due).toBeLessThanOrEqual(total);
          // every due arrival was scheduled no later than now; the next one is in the future
          if (due > 0) expect(scheduledOffset(due - 1, rate)).toBeLessThanOrEqual(elapsed + 1e-6);
          if (due < total) expect(scheduledOffset(due, rate)).toBeGreaterThan(elapsed - 1e-6);
        },
      ),
    );
  });
});

describe('bench Prometheus reader', () => {
  const text = [
    '# HELP warden_http_request_duration_seconds HTTP request latency',
    '# TYPE warden_http_request_duration_seconds histogram',
    'warden_http_request_duration_seconds_bucket{le="0.1",server="public",method="POST",route="/a",status="202"} 3',
    'warden_http_request_duration_seconds_sum{server="public",method="POST",route="/a",status="202"} 0.25',
    'warden_http_request_duration_seconds_count{server="public",method="POST",route="/a",status="202"} 5',
    'warden_http_request_duration_seconds_sum{server="public",method="POST",route="/a",status="429"} 0.05',
    'warden_http_request_duration_seconds_count{server="public",method="POST",route="/a",status="429"} 5',
    'warden_auth_tokens_generated_total{method="sms_otp",service="warden"} 7',
    'odd_label{x="a \\"quoted\\" value"} +Inf',
  ].join('\n');

  it('sums histogram totals across label sets that match', () => {
    const samples = parsePrometheus(text);
    expect(histogramTotals(samples, 'warden_http_request_duration_seconds', { route: '/a' })).toEqual({
      sum: 0.3,
      count: 10,
    });
    expect(histogramTotals(samples, 'warden_http_request_duration_seconds', { status: '202' })).toEqual({
      sum: 0.25,
      count: 5,
    });
    expect(histogramTotals(samples, 'warden_http_request_duration_seconds', { route: '/b' })).toBeUndefined();
    expect(sumOf(samples, 'warden_auth_tokens_generated_total', { method: 'sms_otp' })).toBe(7);
    expect(samples.find((s) => s.name === 'odd_label')).toEqual({
      name: 'odd_label',
      labels: { x: 'a "quoted" value' },
      value: Infinity,
    });
  });

  it('turns two scrapes into a mean per observation', () => {
    expect(histogramDeltaMeanMs({ sum: 1, count: 10 }, { sum: 3, count: 30 })).toEqual({ count: 20, meanMs: 100 });
    expect(histogramDeltaMeanMs(undefined, { sum: 0.5, count: 5 })).toEqual({ count: 5, meanMs: 100 });
    expect(histogramDeltaMeanMs({ sum: 1, count: 10 }, { sum: 1, count: 10 })?.count).toBe(0);
    expect(histogramDeltaMeanMs({ sum: 1, count: 10 }, undefined)).toBeNull();
  });
});

describe('bench open-loop generator', () => {
  it('fires every arrival once, in order, each due 1000/rate ms after the previous, without waiting for answers', async () => {
    const seen: Array<{ index: number; scheduledAt: number }> = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const result = await runOpenLoop({
      ratePerSecond: 400,
      durationMs: 50,
      fire: async (a) => {
        seen.push(a);
        // nothing is answered until the last arrival was sent: a closed loop would never get there
        if (a.index === 19) open();
        await gate;
        if (a.index === 3) throw new Error('a failed arrival is counted, not thrown');
      },
    });
    expect(result.fired).toBe(20);
    expect(seen.map((a) => a.index)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.scheduledAt - seen[i - 1]!.scheduledAt).toBeCloseTo(2.5, 6);
    expect(result.failures).toBe(1);
    expect(result.lagMs).toHaveLength(20);
  });
});

describe('bench closed loop', () => {
  it("a fixed amount ends at its last answer, not at autocannon's next 1-second tick", async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const startedAt = performance.now();
      let lastAnswerAt = 0;
      let sent = 0;
      const phase = await runClosedLoop<number>({
        baseUrl: `http://127.0.0.1:${port}`,
        connections: 2,
        amount: 20,
        next: () => ({ item: sent++, method: 'POST', path: '/x', body: '{}' }),
        onAnswer: () => {
          lastAnswerAt = performance.now();
        },
      });
      expect(phase.ok).toBe(20);
      // the phase is the span from the start to the last answer, whatever the machine's speed
      expect(phase.durationS * 1000).toBeGreaterThanOrEqual(lastAnswerAt - startedAt - 10);
      expect(phase.durationS * 1000).toBeLessThanOrEqual(lastAnswerAt - startedAt + 10);
      // so 20 answers well inside a second are more than 20 per second (autocannon's own duration said at most 20)
      expect(phase.throughput).toBeGreaterThan(20);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('bench CPU accounting', () => {
  it('reads utime + stime from a stat line whose command has spaces and parentheses', () => {
    const line = '4242 (node (worker) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1500 250 0 0 20 0 13 0 100 0 0';
    expect(parseStat(line)).toEqual({ pid: 4242, comm: 'node (worker) x', ppid: 1, ticks: 1750 });
    expect(parseStat('garbage')).toBeUndefined();
  });

  it('turns two snapshots into cores used, with interrupts and the rest of the machine apart', () => {
    const before = {
      at: 0,
      ticks: { 'warden JS thread|10': 100, 'postgres|20': 50 },
      machine: { busy: 1000, kernel: 30 },
    };
    const after = {
      at: 2000,
      ticks: { 'warden JS thread|10': 300, 'postgres|20': 90 },
      machine: { busy: 1400, kernel: 70 },
    };
    expect(coresUsed(before, after)).toEqual({
      'warden JS thread': 1,
      postgres: 0.2,
      'kernel (irq, softirq)': 0.2,
      'everything else on the machine': 0.6,
      'machine busy': 2,
    });
  });

  it('counts a process that started in the window whole and leaves out one that ended, instead of subtracting its past', () => {
    // Postgres closed backend 21 (1,000 ticks of past work) and opened 22 during the phase
    const before = { at: 0, ticks: { 'postgres|20': 50, 'postgres|21': 1000 }, machine: { busy: 5000, kernel: 0 } };
    const after = { at: 1000, ticks: { 'postgres|20': 60, 'postgres|22': 30 }, machine: { busy: 5100, kernel: 0 } };
    const cores = coresUsed(before, after);
    expect(cores.postgres).toBe(0.4);
    expect(cores['everything else on the machine']).toBe(0.6);
  });

  it('turns cores used into CPU per request and sets it against the budget the 70% target leaves', () => {
    // 10 requests/s; one bcrypt op costs 56 ms, so a request may cost 80 ms in all, 24 beyond bcrypt
    const cpu = {
      'warden JS thread': 0.2,
      'warden other threads': 0.8,
      'temporal server': 0.3,
      postgres: 0.05,
      'kernel (irq, softirq)': 0.1,
      sandbox: 0.03,
      'bench (load generator)': 0.02,
      'everything else on the machine': 0.1,
      'machine busy': 1.6,
    };
    const [, , row] = perRequestTable([{ label: 'otp verify c=8', throughput: 10, cpu }], 56);
    const cells = row!
      .split('|')
      .map((c) => c.trim())
      .filter(Boolean);
    expect(cells).toEqual(['otp verify c=8', '10.0', '160', '44', '30', '5', '10', '5', '10', '**104**', '24']);
    expect(perRequestTable([{ label: 'no answers', throughput: 0, cpu }], 56)).toEqual([]);
  });
});

describe('bench split topology', () => {
  it('reads the cores given to Warden and leaves the rest of the machine to the others', () => {
    expect(parsePinning('1', 2)).toEqual({ wardenCores: [1], otherCores: [0] });
    expect(parsePinning('1-2, 3', 4)).toEqual({ wardenCores: [1, 2, 3], otherCores: [0] });
  });

  it('refuses a list that names no core, a core the machine lacks, or every core', () => {
    expect(() => parsePinning('', 2)).toThrow(/no core/);
    expect(() => parsePinning('2', 2)).toThrow(/cores 0-1, not 2/);
    expect(() => parsePinning('0,1', 2)).toThrow(/leave at least one core/);
    expect(() => parsePinning('a', 2)).toThrow(/not a core list/);
    expect(() => parsePinning('3-1', 4)).toThrow(/backwards/);
  });
});
