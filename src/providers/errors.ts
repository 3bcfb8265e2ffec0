import { DeliveryErrorType } from '../shared/delivery';
import type { ExternalService } from './types';

export type ProviderErrorKind = 'permanent' | 'transient';

export interface ProviderErrorInit {
  provider: ExternalService;
  /** a short, already sanitized sentence: never a request body, header or credential */
  reason: string;
  status?: number;
  providerCode?: string | number;
  retryAfterMs?: number;
}

/**
 * A failed call to an outside service, built fresh from a handful of safe facts. The SDK's
 * own error is never kept (no `cause`): axios errors carry `config.data`, plivo's carry the
 * request body as `moreInfo`, and the body holds the OTP or the magic link.
 */
export abstract class ProviderError extends Error {
  abstract readonly kind: ProviderErrorKind;
  readonly provider: ExternalService;
  readonly status?: number;
  readonly providerCode?: string | number;
  readonly retryAfterMs?: number;

  constructor(init: ProviderErrorInit) {
    const details = [
      init.status !== undefined ? `HTTP ${init.status}` : undefined,
      init.providerCode !== undefined ? `code ${init.providerCode}` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    super(`${init.provider}: ${init.reason}${details ? ` (${details})` : ''}`);
    this.provider = init.provider;
    if (init.status !== undefined) this.status = init.status;
    if (init.providerCode !== undefined) this.providerCode = init.providerCode;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
  }

  /** Stable type name, the same as `name`: what Temporal's nonRetryableErrorTypes matches. */
  get type(): string {
    return this.name;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      kind: this.kind,
      provider: this.provider,
      status: this.status,
      providerCode: this.providerCode,
      retryAfterMs: this.retryAfterMs,
      message: this.message,
    };
  }
}

/** Retrying cannot help: invalid recipient, rejected request, bad credentials. */
export class ProviderPermanentError extends ProviderError {
  readonly kind = 'permanent' as const;
}

/** Retrying (later, or elsewhere) can help: 5xx, 429, 408, timeouts, connection failures. */
export class ProviderTransientError extends ProviderError {
  readonly kind = 'transient' as const;
}

// On the prototype rather than as instance fields, so that the stack trace captured inside
// super() already starts with the right name.
Object.defineProperty(ProviderPermanentError.prototype, 'name', { value: DeliveryErrorType.permanent });
Object.defineProperty(ProviderTransientError.prototype, 'name', { value: DeliveryErrorType.transient });

export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408 || status < 400;
}

/** Classifies an HTTP failure by status alone. */
export function httpError(init: ProviderErrorInit & { status: number }): ProviderError {
  return isTransientStatus(init.status) ? new ProviderTransientError(init) : new ProviderPermanentError(init);
}

/** Retry-After is either delta-seconds or an HTTP date; answers milliseconds, or undefined. */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const NETWORK_CODES =
  /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ECONNABORTED|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR_\w+)\b/;

/**
 * A failure with no HTTP answer (timeout, refused connection, reset) or one we cannot read.
 * Only the error's name or code is looked at, never its message, which may quote the request.
 * Unknown failures count as transient: failing over is safer than dropping a login code.
 */
export function networkError(provider: ExternalService, err: unknown): ProviderTransientError {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const name = err instanceof Error ? err.name : typeof err;
  // plivo rejects network failures with the axios stack as a plain string
  const text = typeof err === 'string' ? err : typeof code === 'string' ? code : '';
  const timedOut = /timeout|ETIMEDOUT|ECONNABORTED/i.test(text) || /Timeout|Abort/.test(name);
  const networkCode = NETWORK_CODES.exec(text)?.[1];
  return new ProviderTransientError({
    provider,
    reason: timedOut ? 'request timed out' : networkCode ? `connection failed` : `request failed (${name})`,
    providerCode: timedOut ? 'TIMEOUT' : networkCode,
  });
}

/**
 * Makes a provider's error text safe to keep: one line, at most 160 characters, and with
 * anything from the outgoing message that could be a secret (or the recipient) masked.
 * Providers rarely echo content, but "rarely" is not a guarantee worth an OTP.
 */
export function sanitizeReason(raw: unknown, sensitive: readonly (string | undefined)[]): string {
  let text = typeof raw === 'string' ? raw : '';
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  const needles = new Set<string>();
  for (const value of sensitive) {
    if (!value) continue;
    needles.add(value);
    for (const word of value.split(/\s+/)) {
      const token = word.replace(/^[^\w]+|[^\w/=]+$/g, '');
      if (/\d/.test(token) || token.length >= 16) needles.add(token);
    }
  }
  for (const needle of [...needles].sort((a, b) => b.length - a.length)) {
    if (needle.length >= 3) text = text.split(needle).join('[redacted]');
  }
  if (text.length > 160) text = `${text.slice(0, 157)}...`;
  return text || 'request rejected';
}
