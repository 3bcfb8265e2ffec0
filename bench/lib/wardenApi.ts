import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchApp, WardenTarget } from '../stack/warden';
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
  /** the app's backend exchanges the sign-in's one-time code for a signed token here */
  token: '/oauth/token',
} as const;

/** Where the flow's message goes: SMS to the phone, email to the address. */
export function recipientOf(method: FlowMethod, user: BenchUser): string {
  return method === 'otp' ? user.phone : user.email;
}

/**
 * A PKCE pair (RFC 7636, S256), fresh for every flow: the app's backend keeps the verifier and
 * sends it with the exchange; the initiate carries the challenge.
 */
export interface Pkce {
  verifier: string;
  challenge: string;
}

export function newPkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The app a flow signs in to and the flow's code challenge; without it, a bare initiate (default app, no PKCE). */
export interface FlowBinding {
  clientId: string;
  pkce: Pkce;
}

export function initiateJson(user: BenchUser, binding?: FlowBinding): Record<string, string> {
  if (!binding) return { user_id: user.sub };
  return {
    user_id: user.sub,
    client_id: binding.clientId,
    code_challenge: binding.pkce.challenge,
    code_challenge_method: 'S256',
  };
}

/** The device cookie Warden sets at initiate (src/auth/bindings.ts), as a `Cookie` header value. */
export const DEVICE_COOKIE = 'warden_device';

/**
 * `warden_device=<secret>` from an initiate's answer headers (node's, or autocannon's name ->
 * value map); undefined when the answer set none.
 */
export function deviceCookieOf(headers: IncomingHttpHeaders | Record<string, unknown>): string | undefined {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== 'set-cookie') continue;
    for (const line of Array.isArray(value) ? value : [value]) {
      const pair = String(line).split(';', 1)[0]!.trim();
      if (pair.startsWith(`${DEVICE_COOKIE}=`) && pair.length > DEVICE_COOKIE.length + 1) return pair;
    }
  }
  return undefined;
}

/**
 * Each user's requests come from the user's own address, as they would through a load
 * balancer (the embedded stack trusts 127.0.0.1 as its proxy). A stack that does not trust the
 * benchmark's host ignores the header and counts every request against 127.0.0.1.
 */
export function clientHeaders(user: BenchUser, deviceCookie?: string): Record<string, string> {
  return { 'x-forwarded-for': user.ip, ...(deviceCookie ? { cookie: deviceCookie } : {}) };
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

/** The one-time authorization code a verify answered (the binding's holder gets it), if any. */
export function codeOf(body: unknown): string | undefined {
  const parsed = typeof body === 'string' ? safeJson(body) : body;
  const code = (parsed as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.length > 0 ? code : undefined;
}

/** The exchange an app's backend makes: `POST /oauth/token` with its key (Basic) and the flow's verifier. */
export function exchangeRequest(
  app: BenchApp,
  code: string,
  verifier: string,
): { path: string; json: Record<string, string>; headers: Record<string, string> } {
  const basic = Buffer.from(`${encodeURIComponent(app.clientId)}:${encodeURIComponent(app.key)}`).toString('base64');
  return {
    path: ROUTES.token,
    json: { grant_type: 'authorization_code', code, code_verifier: verifier },
    headers: { authorization: `Basic ${basic}` },
  };
}

const BASE64URL_PART = /^[A-Za-z0-9_-]+$/;

/** Whether a value has a JWT's shape: three dot-separated base64url parts (header, claims, signature). */
export function isJwt(token: unknown): token is string {
  if (typeof token !== 'string') return false;
  const parts = token.split('.');
  return parts.length === 3 && parts.every((p) => BASE64URL_PART.test(p));
}

/**
 * What an exchange's answer means to the benchmark: `ok` for a 200 whose `id_token` is a JWT,
 * else a failure label (`400 expired`, `200 not a JWT`, ...).
 */
export function exchangeOutcome(status: number, body: unknown): 'ok' | string {
  const parsed = (typeof body === 'string' ? safeJson(body) : body) as
    { id_token?: unknown; error?: unknown; reason?: unknown } | undefined;
  if (status === 200) return isJwt(parsed?.id_token) ? 'ok' : '200 not a JWT';
  const why =
    typeof parsed?.reason === 'string' ? parsed.reason : typeof parsed?.error === 'string' ? parsed.error : '';
  return `${status}${why ? ` ${why}` : ''}`;
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

/** The app the benchmark's flows sign in to: the embedded stack's default (`npm start`'s development app). */
export const BENCH_CLIENT_ID = process.env.BENCH_CLIENT_ID ?? 'warden-dev';

/**
 * An API key for the app, created once at the start of a run through the admin API
 * (`POST /admin/api/v1/apps/<client_id>/keys`): the key is in that answer and nowhere else.
 */
export async function createBenchAppKey(target: WardenTarget, clientId = BENCH_CLIENT_ID): Promise<BenchApp> {
  const res = await expectStatus<{ key: string; info: { id: string } }>(
    201,
    `${target.adminUrl}/admin/api/v1/apps/${encodeURIComponent(clientId)}/keys`,
    {
      method: 'POST',
      headers: adminHeaders(target),
      json: { label: `npm run bench ${new Date().toISOString()}` },
    },
  );
  return { clientId, key: res.body.key, keyId: res.body.info.id };
}

/** Revokes the run's key (a running stack keeps its keys; the embedded one is thrown away). */
export async function revokeBenchAppKey(target: WardenTarget, app: BenchApp): Promise<void> {
  await expectStatus(
    200,
    `${target.adminUrl}/admin/api/v1/apps/${encodeURIComponent(app.clientId)}/keys/${app.keyId}/revoke`,
    { method: 'POST', headers: adminHeaders(target) },
  );
}

/** The run's app key; the flows that end in the exchange cannot run without it. */
export function benchApp(target: WardenTarget): BenchApp {
  if (!target.app) throw new Error('no app key for the token exchange (creating one at the start of the run failed)');
  return target.app;
}

export async function scrapeMetrics(target: WardenTarget): Promise<Sample[]> {
  const res = await request<string>(`${target.metricsUrl}/metrics`, { headers: { accept: 'text/plain' } });
  return res.status === 200 ? parsePrometheus(String(res.body)) : [];
}
