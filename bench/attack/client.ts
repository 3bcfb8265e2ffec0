/**
 * The attacker's side of the wire: public API calls as a client at a given address (in
 * X-Forwarded-For, the target trusting 127.0.0.1 as its proxy), the admin calls that set an
 * attack up, the simulated clients' addresses, and answers counted by status and error code.
 */
import { randomInt } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectStatus, request, type HttpResponse } from '../lib/http';
import { extractOtp, Outbox } from '../lib/outbox';
import { firstSendKey } from '../lib/wardenApi';
import type { Answers, AttackTarget } from './types';

export const AUTH = '/browser/api/v1/identity/auth';

/** The fields of the public API's answers an attack reads. */
export interface ApiBody {
  error?: string;
  challenge_id?: string;
  remaining_attempts?: number;
  retry_after_seconds?: number;
  status?: string;
}

export type ApiResponse = HttpResponse<ApiBody>;

export interface Client {
  ip: string;
  /** `name=value` pairs sent as the Cookie header */
  cookies?: string[];
}

/** Requests shed by admission control (503 `overloaded`) and retried after their Retry-After. */
export interface ShedCount {
  shed: number;
}

/**
 * A POST to the public auth API as `client`. A request shed by admission control is retried
 * after a short pause (up to `retries` times): an attack other than the flood measures its own
 * defence, not the load shedding, and a shed request changed nothing. `shed` counts those.
 */
export async function publicPost(
  target: AttackTarget,
  path: string,
  json: Record<string, unknown>,
  client: Client,
  shed?: ShedCount,
  retries = 20,
): Promise<ApiResponse> {
  const headers: Record<string, string> = { 'x-forwarded-for': client.ip };
  if (client.cookies?.length) headers.cookie = client.cookies.join('; ');
  for (let attempt = 0; ; attempt++) {
    const res = await request<ApiBody>(`${target.publicUrl}${AUTH}${path}`, { method: 'POST', headers, json });
    if (res.status !== 503 || res.body?.error !== 'overloaded' || attempt >= retries) return res;
    if (shed) shed.shed += 1;
    await sleep(100 + randomInt(200));
  }
}

/** `<status> <error>` of an answer, the key of an answer count. */
export function answerKey(res: ApiResponse): string {
  return `${res.status} ${typeof res.body === 'object' ? (res.body?.error ?? '') : ''}`.trim();
}

export function countAnswer(answers: Answers, res: ApiResponse): void {
  const key = answerKey(res);
  answers[key] = (answers[key] ?? 0) + 1;
}

/**
 * The refusals of a round that time lifts, by kind (`verify_backoff`, `rate_limited`, ...): the
 * soonest each lifts. A request for the same account gets through only once every kind it met
 * has lifted, so the round after waits for the latest of them (`next`): sending sooner would only
 * spend the account's per-user limit on requests the other refusals turn away.
 */
export class Waits {
  private readonly byKind = new Map<string, number>();

  note(res: ApiResponse): void {
    const kind = res.body?.error ?? String(res.status);
    const seconds = retryAfterSeconds(res);
    this.byKind.set(kind, Math.min(this.byKind.get(kind) ?? Infinity, seconds));
  }

  has(kind: string): boolean {
    return this.byKind.has(kind);
  }

  get kinds(): string[] {
    return [...this.byKind.keys()].sort();
  }

  get size(): number {
    return this.byKind.size;
  }

  /** seconds until every kind met has lifted */
  next(): number {
    return Math.max(...this.byKind.values());
  }
}

/** The Retry-After of a refusal, in seconds (the header, else the body's field; 1 when neither says). */
export function retryAfterSeconds(res: ApiResponse): number {
  const header = Number(res.headers['retry-after']);
  if (Number.isFinite(header) && header > 0) return header;
  const body = res.body?.retry_after_seconds;
  return typeof body === 'number' && body > 0 ? body : 1;
}

/** `name=value` of a cookie the answer set, if it set one. */
export function cookieOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const lines = headers['set-cookie'] ?? [];
  for (const line of lines) {
    const pair = line.split(';', 1)[0]!.trim();
    if (pair.startsWith(`${name}=`) && pair.length > name.length + 1) return pair;
  }
  return undefined;
}

const adminHeaders = (target: AttackTarget) => ({ authorization: `Bearer ${target.adminToken}` });

export function adminGet<T>(target: AttackTarget, path: string): Promise<HttpResponse<T>> {
  return expectStatus<T>(200, `${target.adminUrl}/admin/api/v1${path}`, { headers: adminHeaders(target) });
}

export function adminPut(target: AttackTarget, path: string, json: unknown): Promise<HttpResponse> {
  return expectStatus([200, 204], `${target.adminUrl}/admin/api/v1${path}`, {
    method: 'PUT',
    headers: adminHeaders(target),
    json,
  });
}

/** A user with a phone, created through the admin API as an app's backend would sign one up. */
export async function createUser(target: AttackTarget, sub: string, phone: string): Promise<void> {
  await expectStatus(201, `${target.adminUrl}/admin/api/v1/users`, {
    method: 'POST',
    headers: adminHeaders(target),
    json: { sub, phone },
  });
}

export interface RateLimits {
  per_user: { window_seconds: number; max_attempts: number };
  per_ip: { window_seconds: number; max_attempts: number };
}

export async function rateLimits(target: AttackTarget): Promise<RateLimits> {
  return (await adminGet<RateLimits>(target, '/ratelimits')).body;
}

/**
 * The `n`-th address of the benchmarking range 198.18.0.0/15 (RFC 2544): each attack takes its
 * own stretch of it, so no attack's per-IP counts spill into another's.
 */
export function benchAddress(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 17) throw new RangeError(`address ${n} is outside 198.18.0.0/15`);
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

/** The SMS code Warden sent for a challenge's first message, read from the sandbox's outbox. */
export async function codeSentFor(target: AttackTarget, phone: string, challengeId: string): Promise<string> {
  const message = await new Outbox(target.sandboxUrl).waitFor(
    phone,
    (m) => m.idempotency_key === firstSendKey(challengeId),
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const code = extractOtp(message.body);
  if (!code) throw new Error(`the message of challenge ${challengeId} holds no code`);
  return code;
}
