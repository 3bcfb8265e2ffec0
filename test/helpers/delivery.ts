/** Helpers for the delivery tests: sandbox faults and request log, delivery rows, metrics. */
import { expect } from 'vitest';
import { deviceOf, waitFor } from './authClient';
import type { Harness } from './harness';

export interface SandboxRequest {
  seq: number;
  provider: string;
  method: string;
  path: string;
  outcome: string;
  status: number;
  fault: string | null;
  idempotency_key: string | null;
  created_at: string;
}

async function control<T>(h: Harness, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${h.sandbox.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

export const setFault = (h: Harness, fault: Record<string, unknown>) => control(h, 'POST', '/sandbox/faults', fault);
export const clearFaults = (h: Harness) => control(h, 'DELETE', '/sandbox/faults');

/** Oldest first, only the requests that carried this send's idempotency key. */
export async function requestsFor(h: Harness, key: string): Promise<SandboxRequest[]> {
  const { requests } = await control<{ requests: SandboxRequest[] }>(h, 'GET', '/sandbox/requests');
  return requests.filter((r) => r.idempotency_key === key).reverse();
}

export const sendKey = (challengeId: string, n = 1) => `challenge-${challengeId}/send-${n}`;

export interface DeliveryRow {
  status: string;
  delivery_status: string | null;
  delivery_provider: string | null;
  delivery_outcome: string | null;
  delivery_error_class: string | null;
  delivery_report: string | null;
  sends: number;
}

/** Waits until the challenge's `sendNumber`-th send has an outcome on the row. */
export async function deliveryOutcome(
  h: Harness,
  challengeId: string,
  sendNumber = 1,
  timeoutMs = 20_000,
): Promise<DeliveryRow> {
  return waitFor(
    `delivery outcome of send ${sendNumber} of ${challengeId}`,
    async () => {
      const [row] = await h.sql<DeliveryRow>(
        'SELECT status, delivery_status, delivery_provider, delivery_outcome, delivery_error_class, delivery_report, sends FROM auth_challenges WHERE id = $1',
        [challengeId],
      );
      return row?.delivery_outcome && row.sends >= sendNumber ? row : undefined;
    },
    timeoutMs,
  );
}

/** Routes and circuits back to the default configuration (tests share one database per file). */
export async function resetDelivery(h: Harness): Promise<void> {
  await clearFaults(h);
  await h.sql(
    `UPDATE provider_circuits SET state = 'closed', consecutive_failures = 0, opened_at = NULL, probe_lease_until = NULL, probe_key = NULL, throttled_until = NULL`,
  );
  for (const [channel, body] of [
    [
      'sms',
      {
        primary_provider: 'twilio',
        backup_provider: 'plivo',
        failover_threshold: 5,
        enabled: true,
        mode: 'auto',
        circuit_cooldown_seconds: 30,
      },
    ],
    [
      'email',
      {
        primary_provider: 'sendgrid',
        backup_provider: 'ses',
        failover_threshold: 3,
        enabled: true,
        mode: 'auto',
        circuit_cooldown_seconds: 30,
      },
    ],
  ] as const) {
    const res = await h.admin.inject({
      method: 'PUT',
      url: `/admin/api/v1/delivery/routes/${channel}`,
      headers: h.adminHeaders,
      payload: body,
    });
    expect(res.statusCode, res.body).toBe(200);
  }
}

/** The value of one series in this process's registry (0 when absent). */
export async function metric(h: Harness, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await h.runtime.registry.metrics();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (matches) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export async function publicState(h: Harness, challengeId: string) {
  const res = await h.public.inject({
    method: 'GET',
    url: `/browser/api/v1/identity/auth/challenges/${challengeId}`,
    cookies: { warden_device: deviceOf.get(challengeId) ?? '' },
    remoteAddress: '127.0.0.1',
  });
  return { statusCode: res.statusCode, body: res.json<Record<string, unknown>>() };
}

export async function raiseRateLimits(h: Harness): Promise<void> {
  const res = await h.admin.inject({
    method: 'PUT',
    url: '/admin/api/v1/ratelimits',
    headers: h.adminHeaders,
    payload: { per_user: { max_attempts: 10_000 }, per_ip: { max_attempts: 10_000 } },
  });
  expect(res.statusCode).toBe(200);
}
