/** Helpers for the auth tests: drive the public API through `inject`, read secrets from the sandbox outbox. */
import type { Harness } from './harness';

export interface OutboxMessage {
  id: string;
  provider: string;
  channel: 'sms' | 'email';
  to: string;
  subject: string | null;
  body: string;
  idempotency_key: string | null;
}

const BASE = '/browser/api/v1/identity/auth';

export interface CallOptions {
  ip?: string;
  headers?: Record<string, string>;
}

export async function post(h: Harness, path: string, payload: unknown, options: CallOptions = {}) {
  return h.public.inject({
    method: 'POST',
    url: `${BASE}${path}`,
    payload: payload as Record<string, unknown>,
    headers: options.headers,
    remoteAddress: options.ip ?? '127.0.0.1',
  });
}

/**
 * The device cookie each challenge was started with: Warden sets it at initiate, and only its
 * holder reads the challenge's state or receives its authorization code.
 */
export const deviceOf = new Map<string, string>();

export async function initiate(h: Harness, method: 'otp' | 'magic-link', userId: string, options: CallOptions = {}) {
  const res = await post(h, `/${method}/initiate`, { user_id: userId }, options);
  const device = res.cookies.find((c) => c.name === 'warden_device');
  if (res.statusCode === 202 && device) deviceOf.set(res.json<{ challenge_id: string }>().challenge_id, device.value);
  return res;
}

export async function messages(h: Harness, to?: string): Promise<OutboxMessage[]> {
  const res = await fetch(`${h.sandbox.url}/sandbox/messages${to ? `?to=${encodeURIComponent(to)}` : ''}`);
  return ((await res.json()) as { messages: OutboxMessage[] }).messages;
}

/** The messages sent for one challenge (their idempotency keys are `challenge-<id>/send-<n>`). */
export async function messagesFor(h: Harness, challengeId: string, to?: string): Promise<OutboxMessage[]> {
  return (await messages(h, to)).filter((m) => m.idempotency_key?.startsWith(`challenge-${challengeId}/`));
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Waits for the `count`-th message of a challenge and extracts its code or token. `to` (the
 * recipient) narrows the outbox query when a test sends many messages.
 */
export async function secretFor(
  h: Harness,
  challengeId: string,
  count = 1,
  to?: string,
  timeoutMs = 15_000,
): Promise<string> {
  return waitFor(
    `message ${count} of challenge ${challengeId}`,
    async () => {
      const sent = await messagesFor(h, challengeId, to);
      const message = sent.find((m) => m.idempotency_key === `challenge-${challengeId}/send-${count}`);
      if (!message) return undefined;
      const match =
        message.channel === 'sms'
          ? /\b(\d{6})\b/.exec(message.body)
          : /[?&]token=([A-Za-z0-9_-]{43})/.exec(message.body);
      if (!match?.[1]) throw new Error(`message of challenge ${challengeId} carries no secret`);
      return match[1];
    },
    timeoutMs,
  );
}

export async function challengeRow(h: Harness, challengeId: string) {
  const rows = await h.sql<{
    status: string;
    attempts: number;
    sends: number;
    sealed_secret: Buffer | null;
    secret_hash: string;
    key_id: string;
    end_reason: string | null;
    delivery_outcome: string | null;
    delivery_status: string | null;
  }>(
    'SELECT status, attempts, sends, sealed_secret, secret_hash, key_id, end_reason, delivery_outcome, delivery_status FROM auth_challenges WHERE id = $1',
    [challengeId],
  );
  return rows[0];
}

export async function waitForStatus(h: Harness, challengeId: string, status: string, timeoutMs = 15_000) {
  return waitFor(
    `challenge ${challengeId} to be ${status}`,
    async () => {
      const row = await challengeRow(h, challengeId);
      return row?.status === status ? row : undefined;
    },
    timeoutMs,
  );
}

export async function putSettings(h: Harness, settings: Record<string, number>) {
  const res = await h.admin.inject({
    method: 'PUT',
    url: '/admin/api/v1/auth/settings',
    headers: h.adminHeaders,
    payload: settings,
  });
  if (res.statusCode !== 200) throw new Error(`PUT auth/settings answered ${res.statusCode}: ${res.body}`);
  return res.json();
}

export async function putRateLimits(h: Harness, limits: unknown) {
  const res = await h.admin.inject({
    method: 'PUT',
    url: '/admin/api/v1/ratelimits',
    headers: h.adminHeaders,
    payload: limits as Record<string, unknown>,
  });
  if (res.statusCode !== 200) throw new Error(`PUT ratelimits answered ${res.statusCode}: ${res.body}`);
  return res.json();
}
