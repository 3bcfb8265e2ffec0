import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { catalogSeriesNames, hasBinary, seriesNames } from '../helpers/promql';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const RULES = 'deploy/prometheus/rules.yml';
const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> }).groups.flatMap(
  (g) => g.rules,
);
const alerts = rules.filter((r) => r.alert);
// the dead man's switch: fires always, on no series, and never reaches Warden (alertmanager.yml)
const WATCHDOG = 'Watchdog';
const incidentAlerts = alerts.filter((a) => a.alert !== WATCHDOG);
// alerts about Warden itself, paged through the fallback receiver as well as sent to Warden
const SELF_ALERTS = [
  'WardenApiDown',
  'WardenWorkerDown',
  'TemporalNoWorkers',
  'TemporalUnreachable',
  'PostgresUnreachable',
];
const AM_CONFIG = 'deploy/alertmanager/alertmanager.yml';

interface AmRoute {
  receiver?: string;
  matchers?: string[];
  continue?: boolean;
  routes?: AmRoute[];
}
interface AmConfig {
  route: AmRoute & { receiver: string };
  receivers: Array<{
    name: string;
    webhook_configs?: Array<{
      url: string;
      send_resolved: boolean;
      http_config: { authorization: { credentials_file: string } };
    }>;
    slack_configs?: Array<{ api_url_file?: string; api_url?: string; send_resolved?: boolean }>;
  }>;
}
const am = parse(readFileSync(AM_CONFIG, 'utf8')) as AmConfig;
// CI installs Debian's prometheus and prometheus-alertmanager (.ci/run); a laptop may not have them
const tools = hasBinary('promtool') || process.env.CI === 'true';

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

describe('Prometheus alert rules', () => {
  let catalog: Set<string>;
  beforeAll(async () => {
    catalog = await catalogSeriesNames();
  });

  it('has an alert for every incident indicator and failure mode Warden watches', () => {
    const names = alerts.map((a) => a.alert);
    for (const name of [
      'HighRateLimitExceededRate',
      'HighTokenValidationFailureRate',
      'TokenGenerationLatencyHigh',
      'TokenValidationLatencyHigh',
      'DeliveryFailureRateHigh',
      'ProviderFailover',
      'DatabasePoolExhaustion',
      'TemporalTaskQueueBacklog',
    ]) {
      expect(names, name).toContain(name);
    }
  });

  it('labels every alert with a P0-P3 severity and an incident type the webhook maps', () => {
    for (const alert of incidentAlerts) {
      expect(alert.labels?.severity, alert.alert).toMatch(/^P[0-3]$/);
      expect(['compromised_token', 'provider_outage', 'abuse', 'db_connectivity', 'other'], alert.alert).toContain(
        alert.labels?.incident_type,
      );
      expect(alert.annotations?.summary, alert.alert).toBeTruthy();
    }
  });

  it('links every alert to its section of docs/alerts.md', () => {
    const doc = readFileSync('docs/alerts.md', 'utf8');
    const anchors = new Set(
      [...doc.matchAll(/^#{2,3} (.+)$/gm)].map((m) =>
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const alert of alerts) {
      const url = alert.annotations?.runbook_url ?? '';
      expect(url, alert.alert).toMatch(/^docs\/alerts\.md#/);
      expect(anchors, `${alert.alert} -> ${url}`).toContain(url.split('#')[1]);
    }
  });

  it('refers only to metrics that exist in the catalog (src/telemetry/metrics.ts)', () => {
    for (const rule of rules) {
      if (rule.alert === WATCHDOG) continue;
      const names = seriesNames(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const name of names) expect(catalog, `${rule.alert ?? rule.record} uses ${name}`).toContain(name);
    }
  });

  it('finds the series names of an expression (and not its functions, labels or keywords)', () => {
    expect(
      seriesNames(
        'histogram_quantile(0.95, sum by (le, method) (rate(warden_auth_generation_duration_seconds_bucket{method="otp"}[5m]))) > 0.5',
      ),
    ).toEqual(['warden_auth_generation_duration_seconds_bucket']);
    expect(seriesNames('a_total / ignoring(state) b{state="max"} and on (x) up == 0').sort()).toEqual([
      'a_total',
      'b',
      'up',
    ]);
  });

  it.runIf(tools)('passes `promtool check rules`', () => {
    expect(run('promtool', ['check', 'rules', RULES])).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it.runIf(tools)('fires on the right series: `promtool test rules` (deploy/prometheus/rules.test.yml)', () => {
    expect(run('promtool', ['test', 'rules', 'deploy/prometheus/rules.test.yml'])).toContain('SUCCESS');
  });

  it.runIf(tools)('tests every alert in rules.test.yml', () => {
    const tests = parse(readFileSync('deploy/prometheus/rules.test.yml', 'utf8')) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const firing = new Set(
      tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)),
    );
    for (const alert of alerts) expect(firing, `no firing test for ${alert.alert}`).toContain(alert.alert);
  });

  it.runIf(tools)('ships a Prometheus config and an Alertmanager config their own tools accept', () => {
    expect(run('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml'])).toContain('SUCCESS');
    expect(run('amtool', ['check-config', AM_CONFIG])).toContain('SUCCESS');
  });

  it('routes every alert to the Warden webhook with a bearer token read from a file', () => {
    const receiver = am.receivers.find((r) => r.name === am.route.receiver)!;
    expect(receiver.webhook_configs![0]).toMatchObject({
      url: expect.stringMatching(/\/alertmanager\/webhook$/),
      send_resolved: true,
      http_config: { authorization: { credentials_file: '/run/secrets/alertmanager-token' } },
    });
    // the last route takes everything the routes above it let through (`continue`)
    expect(am.route.routes!.at(-1)).toEqual({ receiver: am.route.receiver });
  });
});

describe('paging without Warden', () => {
  const fallback = am.receivers.find((r) => r.name === 'fallback-pager');

  it('has an alert, labelled page=fallback, for every way Warden itself fails', () => {
    for (const name of SELF_ALERTS) {
      const alert = alerts.find((a) => a.alert === name);
      expect(alert, name).toBeDefined();
      expect(alert!.labels, name).toMatchObject({ page: 'fallback', component: expect.any(String) });
    }
    expect(alerts.filter((a) => a.labels?.page === 'fallback').map((a) => a.alert)).toEqual(
      expect.arrayContaining(SELF_ALERTS),
    );
    // the delivery canary fails whatever broke the sign-in, Warden included: it pages the fallback too
    const canaries = alerts.filter((a) => /canary/i.test(a.alert!));
    expect(canaries.map((a) => a.alert)).toContain('CanaryFailing');
    for (const canary of canaries) expect(canary.labels?.page, canary.alert).toBe('fallback');
  });

  it('keeps an always-firing Watchdog, on no series and with no `for`', () => {
    const watchdog = alerts.find((a) => a.alert === WATCHDOG);
    expect(watchdog?.expr.trim()).toBe('vector(1)');
    expect(watchdog?.for).toBeUndefined();
    expect(watchdog?.annotations?.summary).toBeTruthy();
  });

  it('pages through Slack straight from Alertmanager, the webhook URL read from a secret file', () => {
    expect(fallback, 'a fallback-pager receiver').toBeDefined();
    // nothing of it goes through Warden
    expect(fallback!.webhook_configs).toBeUndefined();
    expect(JSON.stringify(fallback)).not.toContain('warden-api');
    expect(fallback!.slack_configs).toEqual([
      expect.objectContaining({ api_url_file: '/run/secrets/alertmanager-fallback-slack-url', send_resolved: true }),
    ]);
    expect(fallback!.slack_configs![0]!.api_url).toBeUndefined();
  });

  it.runIf(tools)('routes with the shipped config (`amtool config routes test`)', () => {
    const receivers = (labels: Record<string, string>) =>
      run('amtool', [
        'config',
        'routes',
        'test',
        `--config.file=${AM_CONFIG}`,
        ...Object.entries(labels).map(([k, v]) => `${k}=${v}`),
      ]).trim();
    // the Watchdog only to the fallback receiver: it would be an incident that never resolves
    expect(receivers({ alertname: WATCHDOG })).toBe('fallback-pager');
    for (const alert of incidentAlerts) {
      const labels = { alertname: alert.alert!, ...alert.labels };
      const expected = alert.labels?.page === 'fallback' ? 'fallback-pager,warden-incidents' : 'warden-incidents';
      expect(receivers(labels), alert.alert).toBe(expected);
    }
  });
});
