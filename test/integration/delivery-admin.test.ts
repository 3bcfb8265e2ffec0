/** Routing and channel switches at runtime through the admin API (and what every worker sees). */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RouteCache } from '../../src/delivery/routes';
import { Database } from '../../src/db/database';
import { initiate, post, secretFor } from '../helpers/authClient';
import { deliveryOutcome, raiseRateLimits, requestsFor, resetDelivery, sendKey } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('delivery routes and channel switches', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());
  afterEach(async () => resetDelivery(h));

  const put = (channel: string, payload: unknown) =>
    h.admin.inject({
      method: 'PUT',
      url: `/admin/api/v1/delivery/routes/${channel}`,
      headers: h.adminHeaders,
      payload: payload as Record<string, unknown>,
    });

  it('shows the default routes with their circuits, and needs the admin token', async () => {
    const res = await h.admin.inject({ method: 'GET', url: '/admin/api/v1/delivery/routes', headers: h.adminHeaders });
    expect(res.statusCode).toBe(200);
    const { routes } = res.json<{ routes: Array<Record<string, unknown>> }>();
    expect(routes).toEqual([
      expect.objectContaining({
        channel: 'sms',
        primary_provider: 'twilio',
        backup_provider: 'plivo',
        failover_threshold: 5,
        enabled: true,
        mode: 'auto',
      }),
      expect.objectContaining({
        channel: 'email',
        primary_provider: 'sendgrid',
        backup_provider: 'ses',
        failover_threshold: 3,
        enabled: true,
        mode: 'auto',
      }),
    ]);
    expect(routes[0]!.circuits).toEqual([
      expect.objectContaining({ provider: 'plivo', state: 'closed' }),
      expect.objectContaining({ provider: 'twilio', state: 'closed' }),
    ]);
    const anonymous = await h.admin.inject({ method: 'GET', url: '/admin/api/v1/delivery/routes/sms' });
    expect(anonymous.statusCode).toBe(401);
  });

  it.each([
    ['an unknown channel', 'fax', { failover_threshold: 2 }, /params/],
    [
      'a provider of the other channel',
      'sms',
      { primary_provider: 'sendgrid' },
      /primary_provider must be one of twilio, plivo/,
    ],
    ['an unknown provider', 'sms', { backup_provider: 'carrier-pigeon' }, /backup_provider/],
    ['the same provider twice', 'sms', { backup_provider: 'twilio' }, /must differ/],
    ['a zero threshold', 'email', { failover_threshold: 0 }, /failover_threshold/],
    ['a fractional threshold', 'email', { failover_threshold: 1.5 }, /failover_threshold/],
    ['an empty body', 'sms', {}, /body/],
    ['an unknown field', 'sms', { primary: 'plivo' }, /body/],
    [
      'backup mode without a backup',
      'sms',
      { backup_provider: null, mode: 'backup' },
      /mode backup needs a backup_provider/,
    ],
  ])('answers 400 JSON for %s and changes nothing', async (_name, channel, payload, message) => {
    const res = await put(channel, payload);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'invalid_request', message: expect.stringMatching(message) });
    const [sms] = await h.sql(
      'SELECT primary_provider, backup_provider, failover_threshold, mode FROM delivery_routes WHERE channel = $1',
      ['sms'],
    );
    expect(sms).toEqual({ primary_provider: 'twilio', backup_provider: 'plivo', failover_threshold: 5, mode: 'auto' });
  });

  it('changes a route at runtime: who and when are recorded, the change is audited and the next send follows it', async () => {
    const res = await put('sms', {
      primary_provider: 'plivo',
      backup_provider: 'twilio',
      failover_threshold: 2,
      reason: 'twilio degraded',
      incident_id: 'INC-2026-01-15-02',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      primary_provider: 'plivo',
      backup_provider: 'twilio',
      failover_threshold: 2,
      updated_by: 'admin-api',
      change_reason: 'twilio degraded',
      incident_id: 'INC-2026-01-15-02',
    });
    expect(Date.now() - Date.parse(res.json<{ updated_at: string }>().updated_at)).toBeLessThan(60_000);
    const [audit] = await h.sql(
      `SELECT reason, incident_id, details FROM audit_events WHERE event_type = 'identity.delivery.route_changed' ORDER BY id DESC LIMIT 1`,
    );
    expect(audit).toEqual({
      reason: 'twilio degraded',
      incident_id: 'INC-2026-01-15-02',
      details: expect.objectContaining({
        channel: 'sms',
        actor: 'admin-api',
        previous: expect.objectContaining({ primary_provider: 'twilio' }),
        value: expect.objectContaining({ primary_provider: 'plivo', failover_threshold: 2 }),
      }),
    });
    expect(h.logs.records('identity.delivery.route_changed').length).toBeGreaterThanOrEqual(1);

    const { challenge_id } = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>();
    await secretFor(h, challenge_id);
    expect((await requestsFor(h, sendKey(challenge_id))).map((r) => r.provider)).toEqual(['plivo']);
    expect(await deliveryOutcome(h, challenge_id)).toMatchObject({
      delivery_provider: 'plivo',
      delivery_outcome: 'sent',
    });
  });

  it('lets another process see a route change within its cache bound (5 s in production)', async () => {
    // a second process's view: its own pool and cache, here with a 300 ms bound
    const other = new Database(
      h.databaseUrl,
      { max: 2, connMaxLifetimeS: 60, statementTimeoutMs: 5000 },
      'warden-other-worker',
    );
    try {
      const cache = new RouteCache(other, 300);
      expect((await cache.get('email')).primary).toBe('sendgrid');
      expect((await put('email', { primary_provider: 'ses', backup_provider: 'sendgrid' })).statusCode).toBe(200);
      // still within the bound: the cached route may be served
      const seen = await (async () => {
        for (let i = 0; i < 50; i += 1) {
          const route = await cache.get('email');
          if (route.primary === 'ses') return route;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        return undefined;
      })();
      expect(seen?.primary).toBe('ses');
    } finally {
      await other.close();
    }
  });

  it('switches a channel off and on at runtime: 503 channel_disabled on initiate and resend, the other channel keeps working', async () => {
    const { challenge_id: live } = (await initiate(h, 'otp', 'test-user-2')).json<{ challenge_id: string }>();
    await secretFor(h, live);
    const off = await put('sms', { enabled: false, reason: 'both SMS providers down' });
    expect(off.statusCode).toBe(200);
    expect(await h.sql(`SELECT value FROM runtime_settings WHERE key = 'auth.sms_otp.enabled'`)).toEqual([
      { value: false },
    ]);

    const refused = await initiate(h, 'otp', 'test-user');
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ error: 'channel_disabled', method: 'sms_otp' });
    const unknownUser = await initiate(h, 'otp', 'nobody-at-all');
    expect(unknownUser.statusCode).toBe(503);
    expect(unknownUser.json()).toEqual(refused.json());
    const resend = await post(h, '/otp/resend', { challenge_id: live });
    expect(resend.statusCode).toBe(503);
    expect(resend.json()).toMatchObject({ error: 'channel_disabled' });

    const email = await initiate(h, 'magic-link', 'test-user');
    expect(email.statusCode).toBe(202);
    await secretFor(h, email.json<{ challenge_id: string }>().challenge_id);

    expect((await put('sms', { enabled: true })).statusCode).toBe(200);
    expect(await h.sql(`SELECT value FROM runtime_settings WHERE key = 'auth.sms_otp.enabled'`)).toEqual([
      { value: true },
    ]);
    expect((await initiate(h, 'otp', 'test-user')).statusCode).toBe(202);
  });

  it('honours the channel switch written directly in runtime_settings by SQL', async () => {
    await h.sql(`UPDATE runtime_settings SET value = 'false' WHERE key = 'auth.magic_link.enabled'`);
    // this process dropped nothing: the change arrives with the 5 s bound
    const refused = await (async () => {
      for (let i = 0; i < 80; i += 1) {
        const res = await initiate(h, 'magic-link', 'test-user-3');
        if (res.statusCode === 503) return res;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return undefined;
    })();
    expect(refused?.json()).toMatchObject({ error: 'channel_disabled', method: 'magic_link' });
    expect((await initiate(h, 'otp', 'test-user-3')).statusCode).toBe(202);
    await h.sql(`UPDATE runtime_settings SET value = 'true' WHERE key = 'auth.magic_link.enabled'`);
  });

  it('answers 503 not_configured for SendGrid and SES events while their keys are not set', async () => {
    const events = await h.public.inject({
      method: 'POST',
      url: '/callbacks/v1/sendgrid/events',
      headers: { 'content-type': 'application/json' },
      payload: '[]',
    });
    expect(events.statusCode).toBe(503);
    expect(events.json()).toMatchObject({ error: 'not_configured' });
    const sns = await h.public.inject({
      method: 'POST',
      url: '/callbacks/v1/ses/0123456789abcdef0123',
      headers: { 'content-type': 'text/plain' },
      payload: '{}',
    });
    expect(sns.statusCode).toBe(503);
  });
});
