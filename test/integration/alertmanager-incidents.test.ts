/** Alertmanager's webhook: token, label mapping, groupKey deduplication, resolved notifications. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp } from '../../src/api/app';
import { alertWorkflowId } from '../../src/incidents/alertmanager';
import {
  addPreventiveActionUpdate,
  incidentStateQuery,
  resolveUpdate,
  type IncidentState,
} from '../../src/shared/incidents';
import { startHarness, type Harness } from '../helpers/harness';

describe('Alertmanager webhook', () => {
  const token = 'am-token-0123456789abcdef';
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_ALERTMANAGER_TOKEN: token } });
  });
  afterAll(async () => h?.close());

  const post = (payload: unknown, auth = `Bearer ${token}`) =>
    h.admin.inject({
      method: 'POST',
      url: '/alertmanager/webhook',
      payload: payload as Record<string, unknown>,
      headers: { authorization: auth },
    });

  function notification(
    groupKey: string,
    alerts: Array<{
      name: string;
      status?: 'firing' | 'resolved';
      labels?: Record<string, string>;
      fingerprint?: string;
    }>,
  ) {
    const items = alerts.map((a) => ({
      status: a.status ?? 'firing',
      labels: { alertname: a.name, ...a.labels },
      annotations: { summary: `${a.name} summary`, description: `${a.name} description` },
      startsAt: new Date(Date.now() - 120_000).toISOString(),
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph',
      fingerprint: a.fingerprint ?? a.name.toLowerCase(),
    }));
    return {
      version: '4',
      groupKey,
      truncatedAlerts: 0,
      status: items.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
      receiver: 'warden-incidents',
      groupLabels: { alertname: alerts[0]!.name },
      commonLabels: items.length === 1 ? items[0]!.labels : { alertname: alerts[0]!.name },
      commonAnnotations: items.length === 1 ? items[0]!.annotations : {},
      externalURL: 'http://alertmanager:9093',
      alerts: items,
    };
  }
  const groupKey = () => `{}/{}:{alertname="X", run="${randomUUID()}"}`;

  async function eventually<T>(probe: () => Promise<T>, accept: (v: T) => boolean, what: string): Promise<T> {
    const deadline = Date.now() + 20_000;
    let last = await probe();
    while (!accept(last)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 1500)}`);
      await new Promise((r) => setTimeout(r, 150));
      last = await probe();
    }
    return last;
  }
  const state = (workflowId: string, runId?: string) =>
    h.runtime.temporal.client.workflow.getHandle(workflowId, runId).query(incidentStateQuery);
  const rowsOf = (workflowId: string) =>
    h.sql<{ id: string; run_id: string; type: string; severity: string }>(
      'SELECT id, run_id, type, severity FROM incidents WHERE workflow_id = $1 ORDER BY detected_at',
      [workflowId],
    );

  it('answers 503 not_configured without a token, 401 with a wrong one, 400 on a malformed payload', async () => {
    const runtime = {
      ...h.runtime,
      config: { ...h.config, incidents: { ...h.config.incidents, alertmanagerToken: undefined } },
    };
    const app = await buildAdminApp(runtime);
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/alertmanager/webhook',
        payload: notification(groupKey(), [{ name: 'A' }]),
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toBe('not_configured');
    } finally {
      await app.close();
    }
    const wrong = await post(notification(groupKey(), [{ name: 'A' }]), 'Bearer nope-nope-nope-nope');
    expect(wrong.statusCode).toBe(401);
    const malformed = await post({ groupKey: 'x', status: 'burning', alerts: [] });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error).toBe('invalid_request');
  });

  it('opens one incident per group: repeats and concurrent HA duplicates land on it', async () => {
    const key = groupKey();
    const body = notification(key, [
      {
        name: 'DeliveryFailureRateHigh',
        labels: { severity: 'P1', incident_type: 'provider_outage', provider: 'twilio', channel: 'sms' },
      },
    ]);
    const first = await post(body);
    expect(first.statusCode).toBe(200);
    const workflowId = alertWorkflowId(key);
    expect(first.json()).toMatchObject({ workflow_id: workflowId, outcome: 'delivered' });
    const runId = first.json<{ run_id: string }>().run_id;

    const repeats = await Promise.all([post(body), post(body), post(body), post(body)]);
    expect(repeats.every((r) => r.statusCode === 200 && r.json().run_id === runId)).toBe(true);
    await post(body);

    const rows = await eventually(
      () => rowsOf(workflowId),
      (r) => r.length === 1 && Boolean(r[0]?.run_id),
      'incident registered',
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ type: 'provider_outage', severity: 'P1', run_id: runId });
    expect(rows[0]!.id).toMatch(/^INC-\d{4}-\d{2}-\d{2}-\d{2,}$/);
    const s = await state(workflowId);
    expect(s.id).toBe(rows[0]!.id);
    expect(s.source).toBe('alertmanager');
    expect(s.affected.providers).toEqual(['twilio']);
    expect(s.title).toBe('DeliveryFailureRateHigh summary');
    // duplicates changed nothing, so they added nothing to the timeline
    expect(s.timeline.filter((e) => e.kind === 'alert')).toHaveLength(0);
    // the INC id is what the API, Slack and the alert use
    const api = await h.admin.inject({
      method: 'GET',
      url: `/admin/api/v1/incidents/${rows[0]!.id}`,
      headers: h.adminHeaders,
    });
    expect(api.json<IncidentState>().workflowId).toBe(workflowId);
  });

  it('puts changes and resolved notifications on the timeline; a resolved group with no incident opens nothing', async () => {
    const key = groupKey();
    const workflowId = alertWorkflowId(key);
    await post(
      notification(key, [
        { name: 'DatabasePoolExhaustion', labels: { severity: 'P1', incident_type: 'db_connectivity' } },
      ]),
    );
    await post(
      notification(key, [
        { name: 'DatabasePoolExhaustion', labels: { severity: 'P1', incident_type: 'db_connectivity' } },
        { name: 'DatabasePoolWaiting', labels: { severity: 'P1', incident_type: 'db_connectivity' } },
      ]),
    );
    const resolved = await post(
      notification(key, [
        { name: 'DatabasePoolExhaustion', status: 'resolved' },
        { name: 'DatabasePoolWaiting', status: 'resolved' },
      ]),
    );
    expect(resolved.json().outcome).toBe('delivered');
    const s = await eventually(
      () => state(workflowId),
      (s) => s.timeline.filter((e) => e.kind === 'alert').length === 2,
      'two alert entries',
    );
    const alerts = s.timeline.filter((e) => e.kind === 'alert').map((e) => e.message);
    expect(alerts[0]).toContain('firing (2 alert(s))');
    expect(alerts[1]).toBe('Alertmanager: DatabasePoolExhaustion, DatabasePoolWaiting resolved');
    // resolution stays a responder's call (the checklist gates it)
    expect(s.status).toBe('investigating');

    const stray = groupKey();
    const ignored = await post(notification(stray, [{ name: 'Gone', status: 'resolved' }]));
    expect(ignored.json()).toMatchObject({ outcome: 'ignored', run_id: null });
    expect(await rowsOf(alertWorkflowId(stray))).toHaveLength(0);
  });

  it('maps alerts without Warden labels by name and severity words; a group firing again after resolution is a new incident', async () => {
    const key = groupKey();
    const workflowId = alertWorkflowId(key);
    const body = notification(key, [{ name: 'TwilioSmsDeliveryErrors', labels: { severity: 'critical' } }]);
    const first = (await post(body)).json<{ run_id: string }>();
    const rows = await eventually(
      () => rowsOf(workflowId),
      (r) => r.length === 1 && Boolean(r[0]?.run_id),
      'registered',
    );
    expect(rows[0]).toMatchObject({ type: 'provider_outage', severity: 'P0' });

    const handle = h.runtime.temporal.client.workflow.getHandle(workflowId, first.run_id);
    await handle.executeUpdate(addPreventiveActionUpdate, {
      args: [{ by: 'sre', description: 'Tune the alert', category: 'monitoring' }],
    });
    await handle.executeUpdate(resolveUpdate, {
      args: [{ by: 'sre', resolution: 'Twilio recovered', force: true, reason: 'drill' }],
    });
    await handle.result();

    const second = (await post(body)).json<{ run_id: string }>();
    expect(second.run_id).not.toBe(first.run_id);
    const both = await eventually(
      () => rowsOf(workflowId),
      (r) => r.length === 2 && r.every((x) => x.run_id),
      'second incident',
    );
    expect(new Set(both.map((r) => r.id)).size).toBe(2);
    // each INC id addresses its own run (both rows carry the alert's startsAt as detected_at,
    // so they are told apart by run, not by order)
    const oldRow = both.find((r) => r.run_id === first.run_id)!;
    const currentRow = both.find((r) => r.run_id === second.run_id)!;
    const old = await h.admin.inject({
      method: 'GET',
      url: `/admin/api/v1/incidents/${oldRow.id}`,
      headers: h.adminHeaders,
    });
    expect(old.json<IncidentState>().status).toBe('resolved');
    const current = await h.admin.inject({
      method: 'GET',
      url: `/admin/api/v1/incidents/${currentRow.id}`,
      headers: h.adminHeaders,
    });
    expect(current.json<IncidentState>().status).toBe('investigating');
  });
});
