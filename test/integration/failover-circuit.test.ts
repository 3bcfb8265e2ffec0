/**
 * The per-provider circuit breaker, shared through Postgres: consecutive failed calls across
 * messages open Twilio's circuit at the route's threshold (5), SMS then goes straight to Plivo,
 * a half-open probe after the cool-down finds Twilio still down (reopen) and later healthy
 * (close), and Twilio takes the traffic again. Every switch is an audit row, a metric, a log line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initiate, messagesFor } from '../helpers/authClient';
import {
  clearFaults,
  deliveryOutcome,
  metric,
  raiseRateLimits,
  requestsFor,
  resetDelivery,
  sendKey,
  setFault,
} from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('the provider circuit breaker', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await raiseRateLimits(h);
    await resetDelivery(h);
  });
  afterAll(async () => h?.close());

  const users = ['test-user', 'test-user-2', 'test-user-3', 'alice', 'bob', 'phone-only'];
  let next = 0;
  async function sendOtp(): Promise<string> {
    const user = users[next++ % users.length]!;
    const res = await initiate(h, 'otp', user);
    expect(res.statusCode).toBe(202);
    const { challenge_id } = res.json<{ challenge_id: string }>();
    await deliveryOutcome(h, challenge_id);
    return challenge_id;
  }
  const circuit = async (provider: string) =>
    (
      await h.sql<{ state: string; consecutive_failures: number }>(
        'SELECT state, consecutive_failures FROM provider_circuits WHERE provider = $1',
        [provider],
      )
    )[0];
  const transitions = async () =>
    (
      await h.sql<{ outcome: string; reason: string }>(
        `SELECT outcome, reason FROM audit_events WHERE event_type = 'identity.delivery.circuit_changed' AND details->>'provider' = 'twilio' ORDER BY id`,
      )
    ).map((r) => `${r.reason}:${r.outcome}`);
  const setCooldown = async (seconds: number) => {
    const res = await h.admin.inject({
      method: 'PUT',
      url: '/admin/api/v1/delivery/routes/sms',
      headers: h.adminHeaders,
      payload: { circuit_cooldown_seconds: seconds },
    });
    expect(res.statusCode, res.body).toBe(200);
  };
  const gauge = () => metric(h, 'warden_provider_circuit_open', { provider: 'twilio' });

  it('opens after the threshold, routes around the open circuit, probes after the cool-down and closes on recovery', async () => {
    await setCooldown(3600);
    await setFault(h, { provider: 'twilio', mode: 'error', status: 503 });

    // message 1: three failed Twilio calls (3 of 5), then Plivo
    const first = await sendOtp();
    expect(await circuit('twilio')).toEqual({ state: 'closed', consecutive_failures: 3 });
    expect((await messagesFor(h, first))[0]?.provider).toBe('plivo');
    // message 2: the fifth consecutive failure opens the circuit
    await sendOtp();
    expect(await circuit('twilio')).toMatchObject({ state: 'open' });
    expect(await transitions()).toEqual(['opened:open']);
    expect(await gauge()).toBe(1);
    expect(await metric(h, 'warden_delivery_failovers_total', { from: 'twilio', to: 'plivo', scope: 'circuit' })).toBe(
      1,
    );
    expect(
      h.logs.lines.some((l) => l.includes('provider circuit opened: sms traffic moves from twilio to plivo')),
    ).toBe(true);
    const routes = await h.admin.inject({
      method: 'GET',
      url: '/admin/api/v1/delivery/routes/sms',
      headers: h.adminHeaders,
    });
    expect(routes.json()).toMatchObject({
      circuits: expect.arrayContaining([
        expect.objectContaining({ provider: 'twilio', state: 'open', probe_after: expect.any(String) }),
      ]),
    });

    // while open and cooling down, sends go straight to Plivo: Twilio never sees them
    const straight = await sendOtp();
    expect((await requestsFor(h, sendKey(straight))).map((r) => r.provider)).toEqual(['plivo']);
    expect(await deliveryOutcome(h, straight)).toMatchObject({
      delivery_provider: 'plivo',
      delivery_outcome: 'failed_over',
    });

    // after the cool-down one send probes Twilio once; it still fails: open again, Plivo delivers
    await setCooldown(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const probed = await sendOtp();
    expect((await requestsFor(h, sendKey(probed))).map((r) => [r.provider, r.outcome])).toEqual([
      ['twilio', 'faulted'],
      ['plivo', 'accepted'],
    ]);
    expect(await transitions()).toEqual(['opened:open', 'half_opened:half_open', 'reopened:open']);

    // Twilio recovers: the next probe succeeds, the circuit closes and Twilio takes traffic again
    await clearFaults(h);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const recovered = await sendOtp();
    expect((await requestsFor(h, sendKey(recovered))).map((r) => [r.provider, r.outcome])).toEqual([
      ['twilio', 'accepted'],
    ]);
    expect(await circuit('twilio')).toEqual({ state: 'closed', consecutive_failures: 0 });
    expect(await transitions()).toEqual([
      'opened:open',
      'half_opened:half_open',
      'reopened:open',
      'half_opened:half_open',
      'closed:closed',
    ]);
    expect(await gauge()).toBe(0);
    const after = await sendOtp();
    expect(await deliveryOutcome(h, after)).toMatchObject({ delivery_provider: 'twilio', delivery_outcome: 'sent' });
    expect(
      await metric(h, 'warden_provider_circuit_transitions_total', { provider: 'twilio', to_state: 'closed' }),
    ).toBe(1);
  });

  it('lets a responder switch SMS to the backup and back: the breaker never undoes a manual switch', async () => {
    await resetDelivery(h);
    const switched = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/delivery/routes/sms/switch',
      headers: h.adminHeaders,
      payload: { to: 'backup', reason: 'twilio status page: major outage', incident_id: 'INC-2026-01-15-01' },
    });
    expect(switched.statusCode, switched.body).toBe(200);
    expect(switched.json()).toMatchObject({
      mode: 'backup',
      primary_provider: 'twilio',
      backup_provider: 'plivo',
      updated_by: 'admin-api',
      incident_id: 'INC-2026-01-15-01',
    });
    const viaBackup = await sendOtp();
    expect((await requestsFor(h, sendKey(viaBackup))).map((r) => r.provider)).toEqual(['plivo']);
    expect(await metric(h, 'warden_delivery_failovers_total', { from: 'twilio', to: 'plivo', scope: 'manual' })).toBe(
      1,
    );

    const back = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/delivery/routes/sms/switch',
      headers: h.adminHeaders,
      payload: { to: 'primary' },
    });
    expect(back.json()).toMatchObject({ mode: 'auto' });
    const viaPrimary = await sendOtp();
    expect((await requestsFor(h, sendKey(viaPrimary))).map((r) => r.provider)).toEqual(['twilio']);
    const audit = await h.sql(
      `SELECT details->'value'->>'mode' AS mode, incident_id FROM audit_events WHERE event_type = 'identity.delivery.route_changed' AND details->>'channel' = 'sms' ORDER BY id DESC LIMIT 2`,
    );
    expect(audit).toEqual([
      { mode: 'auto', incident_id: null },
      { mode: 'backup', incident_id: 'INC-2026-01-15-01' },
    ]);
  });
});
