/**
 * The recovery checklist's "Prometheus alerts firing correctly (test with synthetic incident)"
 * and automated runbook execution, with two synthetic incidents against a live Warden: Twilio
 * failing every send (sandbox fault) and a burst of rate-limit violations. The shipped rules
 * fire in a real Prometheus, a real Alertmanager routes them with the bearer token from a file
 * to POST /alertmanager/webhook, and an incident workflow of the alert's type runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initiate, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { startPromStack, type PromStack } from '../helpers/promStack';

describe('alerts end to end: Prometheus -> Alertmanager -> Warden incident', () => {
  const token = randomBytes(24).toString('base64url');
  let h: Harness;
  let stack: PromStack;
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'warden-alerts-'));
    h = await startHarness({ listen: true, env: { WARDEN_ALERTMANAGER_TOKEN: token } });
    stack = await startPromStack({
      dir: scratch,
      metricsTarget: new URL(h.servers!.urls.metrics).host,
      webhookUrl: `${h.servers!.urls.admin}/alertmanager/webhook`,
      webhookToken: token,
      onOutput: process.env.WARDEN_TEST_LOGS === '1' ? (line) => process.stderr.write(`${line}\n`) : undefined,
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await h?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const incidentWorkflow = (type: string) =>
    waitFor(
      `the ${type} incident workflow`,
      async () => {
        const query = `TaskQueue = '${h.config.temporal.taskQueue}' AND IncidentType = '${type}'`;
        for await (const wf of h.runtime.temporal.client.workflow.list({ query })) return wf;
        return undefined;
      },
      60_000,
    );
  const webhookCount = (metrics: string, name: string) =>
    [...metrics.matchAll(new RegExp(`^${name}\\{integration="webhook"[^}]*\\} (\\d+)`, 'gm'))].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );

  it('opens a provider-outage incident when Twilio fails every send (sandbox fault)', async () => {
    // the failure counters exist at zero from the start: once Prometheus holds a zero sample,
    // the outage's failures are an increase that rate() sees (after the breaker opens, Twilio
    // gets no more traffic, so there is no second chance to see one)
    await waitFor(
      'Prometheus to scrape the zero failure counter',
      async () =>
        (await stack.query('warden_delivery_failures_total{provider="twilio",error_class="transient"} == 0')).length > 0
          ? true
          : undefined,
      30_000,
    );
    const fault = await fetch(`${h.sandbox.url}/sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'twilio', mode: 'error', status: 503 }),
    });
    expect(fault.status).toBe(200);
    try {
      // a few users and client addresses, far below every rate limit
      const users = ['test-user-2', 'test-user-3', 'alice', 'bob'];
      const send = async (round: number) => {
        for (const [i, user] of users.entries()) {
          expect((await initiate(h, 'otp', user, { ip: `192.0.2.${round * 10 + i}` })).statusCode).toBe(202);
        }
      };
      await send(0);
      await send(1);

      const firing = await waitFor(
        'DeliveryFailureRateHigh to fire for twilio',
        async () => (await stack.query('ALERTS{alertname="DeliveryFailureRateHigh",alertstate="firing"}'))[0],
        60_000,
      );
      expect(firing.metric).toMatchObject({
        severity: 'P1',
        incident_type: 'provider_outage',
        channel: 'sms',
        provider: 'twilio',
      });

      const incident = await incidentWorkflow('provider_outage');
      expect((await h.runtime.temporal.client.workflow.getHandle(incident.workflowId).describe()).status.name).toBe(
        'RUNNING',
      );
    } finally {
      await fetch(`${h.sandbox.url}/sandbox/faults?provider=twilio`, { method: 'DELETE' });
    }
  }, 240_000);

  it('opens an abuse incident workflow from sustained rate-limit violations', async () => {
    // over the per-user limit (10 per 5 min): the refusals counter exists, and Prometheus has
    // scraped it, before the burst, so rate() sees the whole burst as an increase
    const statuses: number[] = [];
    for (let i = 0; i < 11; i += 1) statuses.push((await initiate(h, 'otp', 'test-user')).statusCode);
    expect(statuses.filter((s) => s === 429)).toHaveLength(1);
    await waitFor(
      'Prometheus to scrape the refusals counter',
      async () => ((await stack.query('warden_ratelimit_exceeded_total{scope="user"}')).length > 0 ? true : undefined),
      30_000,
    );

    // 200 refusals in a few seconds: well over the rule's 0.5/s averaged over 5 minutes
    for (let i = 0; i < 200; i += 1) expect((await initiate(h, 'otp', 'test-user')).statusCode).toBe(429);

    const firing = await waitFor(
      'HighRateLimitExceededRate to fire',
      async () => {
        const alerts = await stack.query('ALERTS{alertname="HighRateLimitExceededRate",alertstate="firing"}');
        return alerts[0];
      },
      60_000,
    );
    expect(firing.metric).toMatchObject({ severity: 'P1', incident_type: 'abuse', scope: 'user' });

    // Alertmanager delivered it, and Warden runs the incident: a workflow tagged with the
    // alert's type and severity
    const incident = await incidentWorkflow('abuse');
    const severity = incident.typedSearchAttributes.getAll().find((p) => p.key.name === 'Severity')?.value;
    expect(severity).toBe('P1');
    const description = await h.runtime.temporal.client.workflow.getHandle(incident.workflowId).describe();
    expect(description.status.name).toBe('RUNNING');

    // the token file and the webhook contract were right the first time: no failed delivery
    // (a 4xx, e.g. a 401 for a wrong token, counts as failed and is not retried)
    const metrics = await (await fetch(`${stack.alertmanagerUrl}/metrics`)).text();
    expect(webhookCount(metrics, 'alertmanager_notifications_failed_total')).toBe(0);
  }, 240_000);
});
