/**
 * A real Prometheus and Alertmanager (the Debian binaries) on loopback free ports with temp
 * data folders, loaded with the repository's rules and routing. Only the timings are made
 * test-sized: every `for:` becomes 1 s, scrape, evaluation and resending run every second,
 * Alertmanager groups after 1 s on every route. The rule expressions and the routes are the
 * shipped ones; the receivers point at the test's own listeners.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort, spawnManaged, waitFor, type ManagedProcess } from '../../src/dev/process';

export interface PromStack {
  prometheusUrl: string;
  alertmanagerUrl: string;
  /** instant query; the vector's samples */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

export interface PromStackOptions {
  dir: string;
  /** host:port Prometheus scrapes as job warden-api */
  metricsTarget: string;
  /** host:port Prometheus scrapes as job warden-worker (a spawned worker process) */
  workerMetricsTarget?: string;
  webhookUrl: string;
  webhookToken: string;
  /**
   * where the fallback receiver's Slack incoming webhook posts (its URL goes into the file the
   * shipped config names); without it the fallback receiver has no integration and drops pages
   */
  fallbackUrl?: string;
  /** Alertmanager's repeat_interval on every route (default 1h: no repeats within a test) */
  repeatInterval?: string;
  onOutput?: (line: string) => void;
}

interface Route {
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
  routes?: Route[];
}

interface Receiver {
  name: string;
  webhook_configs?: Array<{ url: string; http_config: { authorization: { credentials_file: string } } }>;
  slack_configs?: Array<{ api_url_file: string }>;
}

/** The test-sized timings, on the root route and on every route below it that sets its own. */
function shortenRoute(route: Route, repeatInterval: string, root = true): void {
  if (root || route.group_wait) route.group_wait = '1s';
  if (root || route.group_interval) route.group_interval = '1s';
  if (root || route.repeat_interval) route.repeat_interval = repeatInterval;
  for (const child of route.routes ?? []) shortenRoute(child, repeatInterval, false);
}

export async function startPromStack(options: PromStackOptions): Promise<PromStack> {
  const { dir } = options;
  mkdirSync(path.join(dir, 'prometheus-data'), { recursive: true });
  mkdirSync(path.join(dir, 'alertmanager-data'), { recursive: true });

  const rules = parse(readFileSync('deploy/prometheus/rules.yml', 'utf8')) as {
    groups: Array<{ rules: Array<{ for?: string }> }>;
  };
  for (const group of rules.groups) for (const rule of group.rules) if (rule.for) rule.for = '1s';
  writeFileSync(path.join(dir, 'rules.yml'), stringify(rules));

  const tokenFile = path.join(dir, 'alertmanager-token');
  writeFileSync(tokenFile, options.webhookToken, { mode: 0o600 });
  const fallbackUrlFile = path.join(dir, 'alertmanager-fallback-slack-url');
  if (options.fallbackUrl) writeFileSync(fallbackUrlFile, options.fallbackUrl, { mode: 0o600 });
  const am = parse(readFileSync('deploy/alertmanager/alertmanager.yml', 'utf8')) as {
    route: Route;
    receivers: Receiver[];
  };
  shortenRoute(am.route, options.repeatInterval ?? '1h');
  for (const receiver of am.receivers) {
    for (const webhook of receiver.webhook_configs ?? []) {
      webhook.url = options.webhookUrl;
      webhook.http_config.authorization.credentials_file = tokenFile;
    }
    if (!receiver.slack_configs) continue;
    if (options.fallbackUrl) for (const slack of receiver.slack_configs) slack.api_url_file = fallbackUrlFile;
    else delete receiver.slack_configs;
  }
  writeFileSync(path.join(dir, 'alertmanager.yml'), stringify(am));

  const amPort = await freePort();
  const promPort = await freePort();
  writeFileSync(
    path.join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [path.join(dir, 'rules.yml')],
      alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
      scrape_configs: [
        { job_name: 'warden-api', static_configs: [{ targets: [options.metricsTarget] }] },
        ...(options.workerMetricsTarget
          ? [{ job_name: 'warden-worker', static_configs: [{ targets: [options.workerMetricsTarget] }] }]
          : []),
      ],
    }),
  );

  const processes: ManagedProcess[] = [];
  const stop = async () => {
    for (const p of processes.reverse()) await p.stop(5000);
  };
  try {
    processes.push(
      spawnManaged(
        'prometheus-alertmanager',
        [
          `--config.file=${path.join(dir, 'alertmanager.yml')}`,
          `--storage.path=${path.join(dir, 'alertmanager-data')}`,
          `--web.listen-address=127.0.0.1:${amPort}`,
          // no HA gossip: it would listen on every interface
          '--cluster.listen-address=',
        ],
        { onOutput: options.onOutput },
      ),
    );
    processes.push(
      spawnManaged(
        'prometheus',
        [
          `--config.file=${path.join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(dir, 'prometheus-data')}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
          // an alert that fires before Prometheus has found Alertmanager (an always-firing one
          // like the Watchdog) is sent again after this delay, 1 m by default
          '--rules.alert.resend-delay=1s',
        ],
        { onOutput: options.onOutput },
      ),
    );
    const prometheusUrl = `http://127.0.0.1:${promPort}`;
    const alertmanagerUrl = `http://127.0.0.1:${amPort}`;
    for (const url of [prometheusUrl, alertmanagerUrl]) {
      await waitFor(
        `${url}/-/ready`,
        async () => {
          const res = await fetch(`${url}/-/ready`);
          if (!res.ok) throw new Error(`status ${res.status}`);
        },
        { timeoutMs: 30_000 },
      );
    }
    return {
      prometheusUrl,
      alertmanagerUrl,
      async query(expr) {
        const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
        const body = (await res.json()) as {
          data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
        };
        return body.data.result;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
