/**
 * WARDEN_INTEGRATIONS_PORT gives Slack and Alertmanager a listener of their own: they answer
 * there, and the admin port no longer serves them (so it need not face the internet).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness';

describe('integrations on their own listener', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, listen: true, env: { WARDEN_INTEGRATIONS_PORT: '0' } });
  });
  afterAll(async () => h?.close());

  const post = (base: string, path: string, body: string, type: string) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type }, body });

  it('serves Slack and Alertmanager on the integrations port, and not on the admin port', async () => {
    const urls = h.servers!.urls;
    expect(urls.integrations).toBeDefined();
    expect(urls.integrations).not.toBe(urls.admin);

    const slack = await post(
      urls.integrations!,
      '/slack/commands',
      'command=%2Fincident&text=help',
      'application/x-www-form-urlencoded',
    );
    expect(slack.status).toBe(401);
    expect(await slack.json()).toMatchObject({ error: 'invalid_signature' });
    const alerts = await post(urls.integrations!, '/alertmanager/webhook', '{}', 'application/json');
    expect([401, 503]).toContain(alerts.status);

    for (const path of ['/slack/commands', '/alertmanager/webhook']) {
      const res = await post(urls.admin, path, '{}', 'application/json');
      expect(res.status, path).toBe(404);
    }
    // and the admin API stays where it was
    const me = await fetch(`${urls.admin}/admin/api/v1/whoami`, { headers: h.adminHeaders });
    expect(me.status).toBe(200);
    expect((await fetch(`${urls.integrations!}/admin/api/v1/whoami`, { headers: h.adminHeaders })).status).toBe(404);
  });
});
