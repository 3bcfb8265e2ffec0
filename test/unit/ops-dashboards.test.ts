import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { catalogSeriesNames, hasBinary, promtoolParses, seriesNames } from '../helpers/promql';

interface Target {
  expr?: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  annotations?: { list: Array<{ expr?: string }> };
}

const DIR = 'deploy/grafana/dashboards';
const dashboards = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((file) => ({ file, dashboard: JSON.parse(readFileSync(path.join(DIR, file), 'utf8')) as Dashboard }));

function panelsOf(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression in a dashboard, with Grafana's range variables made concrete. */
function expressions(d: Dashboard): Array<{ where: string; expr: string }> {
  const exprs = [
    ...panelsOf(d).flatMap((p) =>
      (p.targets ?? []).map((t) => ({ where: `${d.uid}: ${p.title}`, expr: t.expr ?? '' })),
    ),
    ...(d.annotations?.list ?? []).filter((a) => a.expr).map((a) => ({ where: `${d.uid}: annotation`, expr: a.expr! })),
  ];
  return exprs.map(({ where, expr }) => ({
    where,
    expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '6h').replaceAll('$__interval', '1m'),
  }));
}

const byUid = (uid: string) => dashboards.find((d) => d.dashboard.uid === uid)?.dashboard;

describe('Grafana dashboards', () => {
  let catalog: Set<string>;
  beforeAll(async () => {
    catalog = await catalogSeriesNames();
  });

  it('covers auth flows, delivery by provider, rate limiting and incidents', () => {
    for (const uid of ['warden-auth', 'warden-delivery', 'warden-ratelimit', 'warden-incidents'])
      expect(byUid(uid), uid).toBeDefined();
    const incidents = panelsOf(byUid('warden-incidents')!).map((p) => p.title.toLowerCase());
    expect(incidents.some((t) => t.includes('open') && t.includes('severity'))).toBe(true);
    expect(incidents.some((t) => t.includes('time to acknowledge'))).toBe(true);
    expect(incidents.some((t) => t.includes('time to resolve'))).toBe(true);
    const delivery = expressions(byUid('warden-delivery')!).map((e) => e.expr);
    expect(delivery.some((e) => /by \([^)]*provider/.test(e))).toBe(true);
  });

  it('has unique dashboard uids and panel ids, and every query panel uses the provisioned datasource', () => {
    expect(new Set(dashboards.map((d) => d.dashboard.uid)).size).toBe(dashboards.length);
    const datasource = parse(readFileSync('deploy/grafana/provisioning/datasources/prometheus.yml', 'utf8')) as {
      datasources: Array<{ uid: string; url: string }>;
    };
    const uid = datasource.datasources[0]!.uid;
    for (const { dashboard } of dashboards) {
      const panels = panelsOf(dashboard);
      expect(new Set(panels.map((p) => p.id)).size, dashboard.uid).toBe(panels.length);
      for (const panel of panels.filter((p) => p.type !== 'row')) {
        expect(panel.targets?.length, `${dashboard.uid}: ${panel.title}`).toBeGreaterThan(0);
        for (const target of panel.targets!) expect(target.datasource?.uid).toBe(uid);
      }
    }
  });

  it('queries only metrics that exist in the catalog (src/telemetry/metrics.ts)', () => {
    const unknown: string[] = [];
    let checked = 0;
    for (const { dashboard } of dashboards) {
      for (const { where, expr } of expressions(dashboard)) {
        const names = seriesNames(expr);
        expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
        checked += names.length;
        for (const name of names) {
          // process_* and nodejs_* come from prom-client's default metrics, which the catalog registers too
          if (!catalog.has(name)) unknown.push(`${where}: ${name}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(30);
    expect(unknown).toEqual([]);
  });

  it('would catch a misspelt metric', () => {
    expect(seriesNames('sum(rate(warden_delivery_failure_total[5m]))').every((n) => catalog.has(n))).toBe(false);
  });

  it.runIf(hasBinary('promtool') || process.env.CI === 'true')('has PromQL that Prometheus parses (promtool)', () => {
    const all = dashboards.flatMap(({ dashboard }) => expressions(dashboard).map((e) => e.expr));
    const result = promtoolParses(all);
    expect(result.output).toContain(`SUCCESS: ${all.length} rules found`);
    expect(result.ok).toBe(true);
    expect(promtoolParses(['sum(rate(warden_delivery_attempts_total[5m])']).ok).toBe(false);
  });

  it('is provisioned from the folder docker-compose mounts', () => {
    const provider = parse(readFileSync('deploy/grafana/provisioning/dashboards/warden.yml', 'utf8')) as {
      providers: Array<{ options: { path: string } }>;
    };
    const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as {
      services: Record<string, { volumes?: string[] }>;
    };
    const volumes = compose.services.grafana?.volumes ?? [];
    expect(volumes).toContain(`./deploy/grafana/dashboards:${provider.providers[0]!.options.path}:ro`);
    expect(volumes).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
  });
});
