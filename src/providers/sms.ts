import { performance } from 'node:perf_hooks';
import type { Client as PlivoClient } from 'plivo';
import twilio from 'twilio';
import type { Logger } from '../telemetry/logger';
import { withDeadline } from './deadline';
import { httpError, networkError, parseRetryAfter, ProviderError, sanitizeReason } from './errors';
import { withKeyParam } from './idempotency';
import { inTwilioCall, type TwilioCall } from './twilio-http';
import type { OutgoingSms, SendResult, SmsProvider } from './types';

export interface SmsAdapterOptions {
  from: string;
  timeoutMs: number;
  logger: Logger;
}

/** What a failed send may say about the message: nothing from the body, not even the recipient. */
function sensitive(msg: OutgoingSms): string[] {
  return [msg.body, msg.to];
}

function logFailure(logger: Logger, err: ProviderError, latencyMs: number): void {
  logger.warn(
    { provider: err.provider, kind: err.kind, status: err.status, providerCode: err.providerCode, latencyMs },
    'sms send failed',
  );
}

export class TwilioSms implements SmsProvider {
  readonly name = 'twilio' as const;

  constructor(
    private readonly client: twilio.Twilio,
    private readonly options: SmsAdapterOptions,
  ) {}

  /**
   * The idempotency key travels as the I-Twilio-Idempotency-Token header and, when a status
   * callback URL is given, as its `idempotency_key` query parameter (echoed on every callback).
   */
  async send(msg: OutgoingSms): Promise<SendResult> {
    const started = performance.now();
    const call: TwilioCall = { idempotencyKey: msg.idempotencyKey };
    try {
      const message = await withDeadline('twilio', this.options.timeoutMs, () =>
        inTwilioCall(call, () =>
          this.client.messages.create({
            to: msg.to,
            from: this.options.from,
            body: msg.body,
            ...(msg.statusCallbackUrl
              ? { statusCallback: withKeyParam(msg.statusCallbackUrl, msg.idempotencyKey) }
              : {}),
          }),
        ),
      );
      return {
        provider: this.name,
        providerMessageId: message.sid,
        latencyMs: Math.round(performance.now() - started),
      };
    } catch (err) {
      const error = this.translate(err, msg, call);
      logFailure(this.options.logger, error, Math.round(performance.now() - started));
      throw error;
    }
  }

  private translate(err: unknown, msg: OutgoingSms, call: TwilioCall): ProviderError {
    if (err instanceof ProviderError) return err;
    if (err instanceof twilio.RestException) {
      return httpError({
        provider: this.name,
        status: err.status,
        providerCode: err.code,
        reason: sanitizeReason(err.message, sensitive(msg)),
        retryAfterMs: parseRetryAfter(call.retryAfter),
      });
    }
    return networkError(this.name, err);
  }
}

/** plivo-node's failures: a PlivoRestError (with status), an Error wrapping an axios error, or a bare string. */
function plivoStatus(err: unknown): number | undefined {
  const status = typeof err === 'object' && err !== null ? (err as { status?: unknown }).status : undefined;
  if (typeof status === 'number') return status;
  // statuses plivo has no class for arrive as `new Error(axiosError)`: "...status code 503"
  const match = err instanceof Error ? /status code (\d{3})\b/.exec(err.message) : null;
  return match?.[1] ? Number(match[1]) : undefined;
}

export class PlivoSms implements SmsProvider {
  readonly name = 'plivo' as const;

  constructor(
    private readonly client: PlivoClient,
    private readonly options: SmsAdapterOptions & { defaultCallbackUrl?: string },
  ) {}

  /**
   * Plivo has no idempotency field or custom header; the key is the `idempotency_key` query
   * parameter of the delivery report `url`. Without a caller-provided URL, the sandbox's own
   * callback sink is used in sandbox mode, and no key is sent to real Plivo.
   */
  async send(msg: OutgoingSms): Promise<SendResult> {
    const started = performance.now();
    const callbackUrl = msg.statusCallbackUrl ?? this.options.defaultCallbackUrl;
    try {
      const response = await withDeadline('plivo', this.options.timeoutMs, () =>
        this.client.messages.create(
          this.options.from,
          msg.to,
          msg.body,
          callbackUrl ? { url: withKeyParam(callbackUrl, msg.idempotencyKey), method: 'POST' } : {},
        ),
      );
      const uuid: unknown = Array.isArray(response.messageUuid) ? response.messageUuid[0] : response.messageUuid;
      if (typeof uuid !== 'string') {
        throw httpError({ provider: this.name, status: 502, reason: 'accepted without a message uuid' });
      }
      return { provider: this.name, providerMessageId: uuid, latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      const error = this.translate(err, msg);
      logFailure(this.options.logger, error, Math.round(performance.now() - started));
      throw error;
    }
  }

  private translate(err: unknown, msg: OutgoingSms): ProviderError {
    if (err instanceof ProviderError) return err;
    const status = plivoStatus(err);
    if (status === undefined) return networkError(this.name, err);
    // PlivoRestError's message is the provider's `error` text; the wrapped-axios kind is not.
    const isRestError = err instanceof Error && 'apiID' in err;
    const message = isRestError ? err.message : 'request failed';
    return httpError({ provider: this.name, status, reason: sanitizeReason(message, sensitive(msg)) });
  }
}
