import { setTimeout as sleep } from 'node:timers/promises';
import type { WardenTarget } from '../stack/warden';
import { expectStatus, request } from './http';
import { extractMagicLink, extractOtp, type OutboxMessage } from './outbox';
import { parsePrometheus, type Sample } from './prometheus';
import type { BenchUser } from './users';

/** The two auth flows under test, as the public API names them. */
export type FlowMethod = 'otp' | 'magic_link';
export const FLOW_METHODS: readonly FlowMethod[] = ['otp', 'magic_link'];

const BASE = '/browser/api/v1/identity/auth';
export const ROUTES = {
  otp: { initiate: `${BASE}/otp/initiate`, verify: `${BASE}/otp/verify` },
  magic_link: { initiate: `${BASE}/magic-link/initiate`, verify: `${BASE}/magic-link/verify` },
  challenge: (id: string) => `${BASE}/challenges/${id}`,
} as const;

/** Where the flow's message goes: SMS to the phone, email to the address. */
export function recipientOf(method: FlowMethod, user: BenchUser): string {
  return method === 'otp' ? user.phone : user.email;
}

export function initiateJson(user: BenchUser): { user_id: string } {
  return { user_id: user.sub };
}

/**
 * Each user's requests come from the user's own address, as they would through a load
 * balancer (the embedded stack trusts 127.0.0.1 as its proxy). A stack that does not trust the
 * benchmark's host ignores the header and counts every request against 127.0.0.1.
 */
export function clientHeaders(user: BenchUser): Record<string, string> {
  return { 'x-forwarded-for': user.ip };
}

/** The idempotency key of a challenge's first send: `challenge-<id>/send-1` (src/shared/auth.ts). */
export function firstSendKey(challengeId: string): string {
  return `challenge-${challengeId}/send-1`;
}

/** What the user got, as the verify request needs it; undefined if the message holds none. */
export interface Credential {
  challengeId: string;
  secret: string;
}

export function credentialFrom(
  method: FlowMethod,
  challengeId: string,
  message: OutboxMessage,
): Credential | undefined {
  if (method === 'otp') {
    const otp = extractOtp(message.body);
    return otp ? { challengeId, secret: otp } : undefined;
  }
  const link = extractMagicLink(message.body);
  return link && link.challenge === challengeId ? { challengeId, secret: link.token } : undefined;
}

/** The verify request a client makes with the code (OTP) or the link's token (magic link). */
export function verifyRequest(
  method: FlowMethod,
  credential: Credential,
): { path: string; json: Record<string, string> } {
  if (method === 'otp') {
    return { path: ROUTES.otp.verify, json: { challenge_id: credential.challengeId, otp: credential.secret } };
  }
  return { path: ROUTES.magic_link.verify, json: { challenge: credential.challengeId, token: credential.secret } };
}

export function challengeIdOf(body: unknown): string | undefined {
  const parsed = typeof body === 'string' ? safeJson(body) : body;
  const id = (parsed as { challenge_id?: unknown } | undefined)?.challenge_id;
  return typeof id === 'string' ? id : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const adminHeaders = (target: WardenTarget) => ({ authorization: `Bearer ${target.adminToken}` });

/**
 * Raises the per-user and per-IP limits for the run (a stack that does not trust the
 * benchmark as its proxy sees every request from 127.0.0.1), so the benchmark measures the
 * service rather than its limiter; the limiter still runs and counts every request. Returns
 * the previous settings so they can be put back.
 */
export async function raiseRateLimits(target: WardenTarget): Promise<unknown> {
  const url = `${target.adminUrl}/admin/api/v1/ratelimits`;
  const before = await expectStatus(200, url, { headers: adminHeaders(target) });
  await expectStatus([200, 204], url, {
    method: 'PUT',
    headers: adminHeaders(target),
    json: {
      per_user: { window_seconds: 300, max_attempts: 1_000_000 },
      per_ip: { window_seconds: 300, max_attempts: 1_000_000 },
    },
  });
  // the process that took the change applies it at once, others within 5 s
  if (!target.embedded) await sleep(6000);
  return before.body;
}

export async function restoreRateLimits(target: WardenTarget, previous: unknown): Promise<void> {
  const settings = (previous as { settings?: unknown })?.settings ?? previous;
  await expectStatus([200, 204], `${target.adminUrl}/admin/api/v1/ratelimits`, {
    method: 'PUT',
    headers: adminHeaders(target),
    json: settings,
  });
}

export async function scrapeMetrics(target: WardenTarget): Promise<Sample[]> {
  const res = await request<string>(`${target.metricsUrl}/metrics`, { headers: { accept: 'text/plain' } });
  return res.status === 200 ? parsePrometheus(String(res.body)) : [];
}
