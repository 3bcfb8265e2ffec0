/**
 * Paging without Warden: "Warden is down" has to reach a human through something that is not
 * Warden. A real Prometheus scrapes the API (the harness) and a real worker process, a real
 * Alertmanager routes with the shipped alertmanager.yml, and its fallback receiver (a Slack
 * incoming webhook) posts to a listener of this test on 127.0.0.1. The worker is SIGKILLed:
 * WardenWorkerDown pages the fallback receiver, and still goes to Warden's webhook as well. The
 * always-firing Watchdog reaches the fallback receiver, repeatedly, and never Warden.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../../src/dev/process';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { startPromStack, type PromStack } from '../helpers/promStack';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/workerProcess';

/** One message as Alertmanager's Slack integration posts it (one attachment per notification). */
interface Page {
  receivedAt: number;
  path: string;
  title: string;
  text: string;
}

/** A stand-in for Slack's incoming webhook: records every POST and answers as Slack does. */
async function startSlackSink(): Promise<{ url: string; pages: Page[]; close(): Promise<void> }> {
  const pages: Page[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        attachments?: Array<{ title?: string; text?: string }>;
      };
      for (const attachment of body.attachments ?? [])
        pages.push({
          receivedAt: Date.now(),
          path: req.url ?? '',
          title: attachment.title ?? '',
          text: attachment.text ?? '',
        });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    pages,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Go duration as Prometheus and Alertmanager write them here ("1s", "30s", "5m"), in ms. */
function durationMs(value: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(value);
  if (!match) throw new Error(`unexpected duration ${value}`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
}

describe('paging without Warden: Prometheus -> Alertmanager -> the fallback receiver', () => {
  const token = randomBytes(24).toString('base64url');
  let h: Harness;
  let worker: WorkerProcess;
  let workerTarget: string;
  let slack: Awaited<ReturnType<typeof startSlackSink>>;
  let stack: PromStack;
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'warden-paging-'));
    slack = await startSlackSink();
    // the API's servers in this process; the worker is a process of its own, to be killed
    h = await startHarness({ worker: false, listen: true, env: { WARDEN_ALERTMANAGER_TOKEN: token } });
    const workerMetricsPort = await freePort();
    worker = await spawnWorkerProcess(h, { WARDEN_METRICS_PORT: String(workerMetricsPort) });
    workerTarget = `127.0.0.1:${workerMetricsPort}`;
    stack = await startPromStack({
      dir: scratch,
      metricsTarget: new URL(h.servers!.urls.metrics).host,
      workerMetricsTarget: workerTarget,
      webhookUrl: `${h.servers!.urls.admin}/alertmanager/webhook`,
      webhookToken: token,
      fallbackUrl: `${slack.url}/services/fallback`,
      // a dead man's switch hears the Watchdog again and again; a few seconds apart here
      repeatInterval: '3s',
      onOutput: process.env.WARDEN_TEST_LOGS === '1' ? (line) => process.stderr.write(`${line}\n`) : undefined,
    });
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
    await worker?.stop();
    await h?.close();
    await slack?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** The receivers Alertmanager routed an alert to, from its own API. */
  const receiversOf = (alertname: string) =>
    waitFor(
      `Alertmanager to hold ${alertname}`,
      async () => {
        const res = await fetch(
          `${stack.alertmanagerUrl}/api/v2/alerts?filter=${encodeURIComponent(`alertname="${alertname}"`)}`,
        );
        const alerts = (await res.json()) as Array<{ receivers: Array<{ name: string }> }>;
        return alerts[0]?.receivers.map((r) => r.name).sort();
      },
      60_000,
    );
  const pagesFor = (alertname: string) => slack.pages.filter((p) => p.title.includes(alertname));

  it('delivers the Watchdog to the fallback receiver again and again, and never to Warden', async () => {
    const pages = await waitFor(
      'the Watchdog to reach the fallback receiver twice',
      async () => (pagesFor('Watchdog').length >= 2 ? pagesFor('Watchdog') : undefined),
      90_000,
    );
    expect(pages[0]).toMatchObject({ path: '/services/fallback', title: '[FIRING] Watchdog' });
    expect(pages[0]!.text).toContain(
      "Warden's alerting pipeline works: Prometheus evaluates rules and Alertmanager delivers pages",
    );
    expect(pages[0]!.text).toContain('docs/alerts.md#watchdog');
    // an always-firing alert must not open an incident that never resolves
    expect(await receiversOf('Watchdog')).toEqual(['fallback-pager']);
  }, 120_000);

  it('pages the fallback receiver when the worker process dies, and still tells Warden', async () => {
    await waitFor(
      'Prometheus to scrape the worker process',
      async () => ((await stack.query('up{job="warden-worker"} == 1')).length > 0 ? true : undefined),
      30_000,
    );
    expect(pagesFor('WardenWorkerDown')).toEqual([]);

    // the longest the page may take: the rule's `for` and the route's group_wait (the test-sized
    // values startPromStack wrote), after a scrape notices and an evaluation sees the target
    // down, with a generous margin for two shared cores; waitFor fails past it
    const rules = parse(readFileSync(path.join(scratch, 'rules.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert?: string; for?: string }> }>;
    };
    const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === 'WardenWorkerDown')!;
    const am = parse(readFileSync(path.join(scratch, 'alertmanager.yml'), 'utf8')) as {
      route: { group_wait: string; routes: Array<{ matchers: string[]; group_wait?: string }> };
    };
    const pageRoute = am.route.routes.find((r) => r.matchers?.includes('page="fallback"'))!;
    const groupWait = durationMs(pageRoute.group_wait ?? am.route.group_wait);
    const budgetMs = durationMs(rule.for!) + groupWait + 2 * 1000 + 60_000;

    const killedAt = Date.now();
    worker.child.kill('SIGKILL');
    await worker.stop();

    const page = await waitFor(
      `WardenWorkerDown at the fallback receiver within ${budgetMs} ms of the kill`,
      async () => pagesFor('WardenWorkerDown').find((p) => p.title.startsWith('[FIRING]')),
      budgetMs,
    );
    expect(page.receivedAt - killedAt).toBeLessThanOrEqual(budgetMs + 1000);
    expect(page).toMatchObject({ path: '/services/fallback', title: '[FIRING] WardenWorkerDown (P1)' });
    expect(page.text).toContain(`The Warden worker at ${workerTarget} is down`);
    expect(page.text).toContain('docs/alerts.md#wardenworkerdown');

    // `continue: true`: the same alert also goes to Warden's incident webhook
    expect(await receiversOf('WardenWorkerDown')).toEqual(['fallback-pager', 'warden-incidents']);
    const firing = await stack.query('ALERTS{alertname="WardenWorkerDown",alertstate="firing"}');
    expect(firing[0]?.metric).toMatchObject({
      severity: 'P1',
      incident_type: 'other',
      page: 'fallback',
      component: 'worker',
      instance: workerTarget,
    });
  }, 180_000);
});
