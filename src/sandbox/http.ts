import type { FastifyReply, FastifyRequest } from 'fastify';
import { ACCEPTING_MODES, type Fault, type RequestOutcome, type SandboxProvider, type SandboxState } from './state';

/** Form bodies parse repeated keys into arrays; providers read the first value. */
export type FormBody = Record<string, string | string[] | undefined>;

export function asForm(body: unknown): FormBody {
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as FormBody) : {};
}

export function field(body: FormBody, name: string): string | undefined {
  const value = body[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && first !== '' ? first : undefined;
}

export function basicAuth(request: FastifyRequest): { user: string; password: string } | undefined {
  const header = request.headers.authorization;
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') && header.length > 7 ? header.slice(7) : undefined;
}

/** A query parameter of a URL we were handed (callback URLs carry the idempotency key). */
export function urlParam(url: string | undefined, name: string): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).searchParams.get(name) ?? undefined;
  } catch {
    return undefined;
  }
}

export function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0] ?? request.url;
}

export function record(
  state: SandboxState,
  provider: SandboxProvider,
  request: FastifyRequest,
  outcome: RequestOutcome,
  status: number,
  idempotencyKey: string | null,
  fault: Fault | null = acceptedFault(request) ?? null,
): void {
  state.recordRequest({
    provider,
    method: request.method,
    path: pathOf(request),
    outcome,
    status,
    fault: fault?.mode ?? null,
    idempotency_key: idempotencyKey,
  });
}

/** How one provider words a failure: its status, content type and body. */
export interface ProviderFailure {
  status: number;
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface FaultShapes {
  /** the provider's answer to an outage or throttling with this HTTP status */
  error(status: number): ProviderFailure;
  /** the provider's own "invalid recipient" answer */
  permanent(): ProviderFailure;
}

export function sendFailure(reply: FastifyReply, failure: ProviderFailure): FastifyReply {
  for (const [name, value] of Object.entries(failure.headers ?? {})) reply.header(name, value);
  return reply
    .code(failure.status)
    .type(failure.contentType ?? 'application/json; charset=utf-8')
    .send(typeof failure.body === 'string' ? failure.body : JSON.stringify(failure.body));
}

/**
 * Applies the provider's active fault, if any, before the request is looked at: an outage
 * does not care what was sent. Resolves true when the fault answered (or swallowed) the
 * request, false when it should be served normally. (Not the reply itself: a FastifyReply is
 * thenable, so an async function cannot hand one back.) A fault records nothing in the
 * outbox; it does show in the request log.
 */
export async function applyFault(
  state: SandboxState,
  provider: SandboxProvider,
  request: FastifyRequest,
  reply: FastifyReply,
  shapes: FaultShapes,
  idempotencyKey: string | null,
): Promise<boolean> {
  const fault = state.takeFault(provider);
  if (!fault) return false;
  if (ACCEPTING_MODES.includes(fault.mode)) {
    // the request is served normally; the route reads the fault back (answerLate, acceptedFault)
    accepting.set(request, fault);
    return false;
  }

  if (fault.mode === 'timeout') {
    record(state, provider, request, 'faulted', 0, idempotencyKey, fault);
    const clientGone = new Promise<void>((resolve) => reply.raw.once('close', () => resolve()));
    await state.hold(clientGone);
    // A provider that never answered: drop the connection rather than reply late.
    reply.hijack();
    reply.raw.destroy();
    return true;
  }

  const failure = fault.mode === 'permanent' ? shapes.permanent() : shapes.error(fault.status);
  if (failure.status === 429 && fault.retryAfter !== undefined) {
    failure.headers = { ...failure.headers, 'Retry-After': String(fault.retryAfter) };
  }
  record(state, provider, request, 'faulted', failure.status, idempotencyKey, fault);
  sendFailure(reply, failure);
  return true;
}

const accepting = new WeakMap<FastifyRequest, Fault>();

/** The `delay` or `undelivered` fault this request was served under, if any. */
export function acceptedFault(request: FastifyRequest): Fault | undefined {
  return accepting.get(request);
}

/** Under a `delay` fault: the message is recorded already; the answer waits (or the client leaves). */
export async function answerLate(state: SandboxState, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const fault = accepting.get(request);
  if (fault?.mode !== 'delay') return;
  const clientGone = new Promise<void>((resolve) => reply.raw.once('close', () => resolve()));
  await state.hold(clientGone, fault.delayMs ?? 2000);
}

/**
 * Whether and when an accepted message's status callback or event goes out: never under a
 * `no_receipt` fault, after the fault's `delayMs` under `late_receipt`, else at the usual pace.
 */
export function receiptTiming(request: FastifyRequest): { send: false } | { send: true; delayMs?: number } {
  const fault = accepting.get(request);
  if (fault?.mode === 'no_receipt') return { send: false };
  if (fault?.mode === 'late_receipt') return { send: true, delayMs: fault.delayMs ?? 2000 };
  return { send: true };
}

/** Under an `undelivered` fault the provider accepts the message but the recipient never gets it. */
export function undelivered(request: FastifyRequest): boolean {
  return accepting.get(request)?.mode === 'undelivered';
}

/** Loose shape checks shared by the SMS and email routes. */
export const E164 = /^\+[1-9]\d{6,14}$/;
export const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
