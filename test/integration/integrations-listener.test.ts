/**
 * WARDEN_INTEGRATIONS_PORT gives Slack and Alertmanager a listener of their own: they answer
 * there, signed and authorized requests do their work, and the admin port no longer serves
 * them (so it need not face the internet).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { slackHeaders } from '../helpers/signing';

const ALERT_TOKEN = 'am-token-integrations-listener-01';

describe('integrations on their own listener', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      listen: true,
      env: { WARDEN_INTEGRATIONS_PORT: '0', WARDEN_ALERTMANAGER_TOKEN: ALERT_TOKEN },
    });
  });
  afterAll(async () => h?.close());

  const post = (base: string, path: string, body: string, type: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type, ...headers }, body });
  const slackCommand = (text: string) =>
    new URLSearchParams({
      command: '/incident',
      text,
      user_id: 'U0LISTENER',
      user_name: 'listener',
      team_id: 'T0SANDBOX',
      channel_id: 'C0INCIDENTS',
    }).toString();
  const alert = (groupKey: string) =>
    JSON.stringify({
      version: '4',
      groupKey,
      status: 'firing',
      commonLabels: { alertname: 'DeliveryFailureRateHigh', severity: 'P3', incident_type: 'other' },
      commonAnnotations: { summary: 'integrations listener drill' },
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'DeliveryFailureRateHigh', severity: 'P3', incident_type: 'other' },
          startsAt: new Date().toISOString(),
          fingerprint: 'listener-drill',
        },
      ],
    });
  const incidentRows = (source: string) =>
    h.sql<{ id: string; title: string }>('SELECT id, title FROM incidents WHERE source = $1', [source]);

  it('serves a signed Slack command and an authorized Alertmanager webhook on the integrations port', async () => {
    const base = h.servers!.urls.integrations!;
    const form = slackCommand('p3 other integrations listener drill');
    const slack = await post(
      base,
      '/slack/commands',
      form,
      'application/x-www-form-urlencoded',
      slackHeaders(h.config.providers.slack.signingSecret!, form),
    );
    expect(slack.status).toBe(200);
    expect(await slack.json()).toMatchObject({
      response_type: 'ephemeral',
      text: expect.stringMatching(/^Open(ed|ing) /),
    });
    const opened = await waitFor('the Slack incident', async () => (await incidentRows('slack'))[0]);
    expect(opened.title).toBe('integrations listener drill');

    const groupKey = `{}:{alertname="DeliveryFailureRateHigh", run="${Date.now()}"}`;
    const alerts = await post(base, '/alertmanager/webhook', alert(groupKey), 'application/json', {
      authorization: `Bearer ${ALERT_TOKEN}`,
    });
    expect(alerts.status).toBe(200);
    expect(await alerts.json()).toMatchObject({ outcome: 'delivered', workflow_id: expect.stringMatching(/^alert-/) });
    const fromAlert = await waitFor('the alert incident', async () => (await incidentRows('alertmanager'))[0]);
    expect(fromAlert.title).toBe('integrations listener drill');
  });

  it('refuses unsigned and unauthorized requests there with 401', async () => {
    const base = h.servers!.urls.integrations!;
    const slack = await post(
      base,
      '/slack/commands',
      'command=%2Fincident&text=help',
      'application/x-www-form-urlencoded',
    );
    expect(slack.status).toBe(401);
    expect(await slack.json()).toMatchObject({ error: 'invalid_signature' });
    const anonymous = await post(base, '/alertmanager/webhook', '{}', 'application/json');
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: 'unauthorized' });
    const wrong = await post(base, '/alertmanager/webhook', alert('{}:{x="y"}'), 'application/json', {
      authorization: 'Bearer not-the-alertmanager-token',
    });
    expect(wrong.status).toBe(401);
  });

  it('does not serve them on the admin port, even signed and authorized; the admin API stays there', async () => {
    const urls = h.servers!.urls;
    expect(urls.integrations).toBeDefined();
    expect(urls.integrations).not.toBe(urls.admin);
    const before = (await h.sql('SELECT id FROM incidents')).length;

    const form = slackCommand('p3 other on the wrong port');
    const slack = await post(
      urls.admin,
      '/slack/commands',
      form,
      'application/x-www-form-urlencoded',
      slackHeaders(h.config.providers.slack.signingSecret!, form),
    );
    expect(slack.status).toBe(404);
    const alerts = await post(urls.admin, '/alertmanager/webhook', alert('{}:{wrong="port"}'), 'application/json', {
      authorization: `Bearer ${ALERT_TOKEN}`,
    });
    expect(alerts.status).toBe(404);
    await new Promise((r) => setTimeout(r, 500));
    expect(await h.sql('SELECT id FROM incidents')).toHaveLength(before);

    const me = await fetch(`${urls.admin}/admin/api/v1/whoami`, { headers: h.adminHeaders });
    expect(me.status).toBe(200);
    expect((await fetch(`${urls.integrations!}/admin/api/v1/whoami`, { headers: h.adminHeaders })).status).toBe(404);
  });
});
