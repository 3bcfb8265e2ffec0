import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkRulesApi, checkRulesDocument } from '../../src/incidents/alertRules';
import { CHECKLIST, checksToRerun, initialChecklist } from '../../src/shared/checklist';
import { delta, histogramQuantile, parseSamples, totals } from '../../src/incidents/promText';

describe('recovery checklist logic', () => {
  it('holds the four groups, every item once', () => {
    const count = (group: string) => CHECKLIST.filter((i) => i.group === group).length;
    expect(['functional', 'security', 'performance', 'monitoring'].map(count)).toEqual([6, 5, 5, 4]);
    expect(new Set(CHECKLIST.map((i) => i.id)).size).toBe(CHECKLIST.length);
    expect(CHECKLIST.filter((i) => !i.check).map((i) => i.id)).toEqual(['user_notifications', 'grafana_dashboards']);
  });

  it('re-runs what is stale or failed, with the traffic a dependent check needs', () => {
    const now = Date.parse('2025-01-15T12:00:00Z');
    const fresh = new Date(now - 60_000).toISOString();
    const items = initialChecklist().map((i) => ({ ...i, status: 'passed' as const, checkedAt: fresh }));
    expect(checksToRerun(items, now, 15 * 60_000)).toEqual([]);
    const blocklistFailed = items.map((i) => (i.id === 'ip_blocklists' ? { ...i, status: 'failed' as const } : i));
    expect(checksToRerun(blocklistFailed, now, 15 * 60_000)).toEqual(['checkIpBlocklist']);
    const latencyOld = items.map((i) =>
      i.id === 'generation_latency' ? { ...i, checkedAt: new Date(now - 3600_000).toISOString() } : i,
    );
    expect(checksToRerun(latencyOld, now, 15 * 60_000)).toEqual([
      'checkSmsOtpFlow',
      'checkMagicLinkFlow',
      'checkInvalidTokens',
      'checkTokenLeaks',
      'checkRateLimits',
      'checkLatencies',
    ]);
  });

  it('computes p95 from histogram buckets like histogram_quantile, over a delta', () => {
    const before = totals(parseSamples('h_bucket{le="0.1"} 5\nh_bucket{le="0.5"} 5\nh_bucket{le="+Inf"} 5\n'));
    const after = totals(
      parseSamples(
        '# TYPE h histogram\nh_bucket{le="0.1",service="warden"} 95\nh_bucket{le="0.5",service="warden"} 105\nh_bucket{le="+Inf",service="warden"} 105\n',
      ),
    );
    const d = delta(after, before);
    const p95 = histogramQuantile(d, 'h', 0.95)!;
    expect(p95.count).toBe(100);
    // 90 new observations <= 0.1 s, 10 in (0.1, 0.5]: the 95th is halfway into the second bucket
    expect(p95.value).toBeCloseTo(0.3, 5);
    expect(histogramQuantile(d, 'h', 0.5)!.value).toBeCloseTo(0.1 * (50 / 90), 5);
    expect(histogramQuantile(delta(before, before), 'h', 0.95)).toBeUndefined();
  });

  it("checks the ops engineer's alert rules against the catalog, and refuses broken ones", () => {
    const text = readFileSync('deploy/prometheus/rules.yml', 'utf8');
    const names = [...text.matchAll(/\b(warden_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, ''));
    expect(checkRulesDocument(text, new Set(names)).ok).toBe(true);
    expect(checkRulesDocument(text, new Set()).ok).toBe(false);
    const unlabelled =
      'groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up == 0\n        labels: { severity: high }\n';
    expect(checkRulesDocument(unlabelled, new Set())).toMatchObject({
      ok: false,
      detail: expect.stringContaining('severity label not P0-P3'),
    });
    expect(checkRulesDocument('groups: [', new Set()).ok).toBe(false);
    const api = {
      data: {
        groups: [
          {
            rules: [
              {
                name: 'A',
                query: 'up == 0',
                health: 'err',
                lastError: 'bad',
                labels: { severity: 'P1', incident_type: 'other' },
              },
            ],
          },
        ],
      },
    };
    expect(checkRulesApi(api)).toMatchObject({ ok: false, detail: 'A: health err (bad)' });
  });
});
