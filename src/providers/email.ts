import { performance } from 'node:perf_hooks';
import { SendEmailCommand, type SESClient } from '@aws-sdk/client-ses';
import type { MailService } from '@sendgrid/mail';
import type { Logger } from '../telemetry/logger';
import { withDeadline } from './deadline';
import {
  httpError,
  networkError,
  parseRetryAfter,
  ProviderError,
  ProviderTransientError,
  sanitizeReason,
} from './errors';
import { encodeTagValue, SES_TAG_NAME } from './idempotency';
import type { EmailProvider, OutgoingEmail, SendResult } from './types';

export interface EmailAdapterOptions {
  from: string;
  timeoutMs: number;
  logger: Logger;
}

function sensitive(msg: OutgoingEmail): string[] {
  return [msg.text, msg.html ?? '', msg.subject, msg.to];
}

function logFailure(logger: Logger, err: ProviderError, latencyMs: number): void {
  logger.warn(
    { provider: err.provider, kind: err.kind, status: err.status, providerCode: err.providerCode, latencyMs },
    'email send failed',
  );
}

function header(headers: unknown, name: string): unknown {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const record = headers as Record<string, unknown>;
  return record[name] ?? record[name.toLowerCase()];
}

export class SendGridEmail implements EmailProvider {
  readonly name = 'sendgrid' as const;

  constructor(
    private readonly mail: MailService,
    private readonly options: EmailAdapterOptions,
  ) {}

  /** The idempotency key is `customArgs.idempotency_key` (SendGrid echoes it in event webhooks). */
  async send(msg: OutgoingEmail): Promise<SendResult> {
    const started = performance.now();
    try {
      const [response] = await withDeadline('sendgrid', this.options.timeoutMs, () =>
        this.mail.send({
          to: msg.to,
          from: this.options.from,
          subject: msg.subject,
          text: msg.text,
          ...(msg.html ? { html: msg.html } : {}),
          customArgs: { idempotency_key: msg.idempotencyKey },
          // Click tracking rewrites links through SendGrid's redirector: a magic link would
          // then pass through (and be logged by) a third party, and scanners would follow it.
          trackingSettings: { clickTracking: { enable: false, enableText: false }, openTracking: { enable: false } },
        }),
      );
      const id = header(response.headers, 'x-message-id');
      if (typeof id !== 'string' || id === '') {
        throw new ProviderTransientError({
          provider: this.name,
          status: response.statusCode,
          reason: 'accepted without X-Message-Id',
        });
      }
      return { provider: this.name, providerMessageId: id, latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      const error = this.translate(err, msg);
      logFailure(this.options.logger, error, Math.round(performance.now() - started));
      throw error;
    }
  }

  private translate(err: unknown, msg: OutgoingEmail): ProviderError {
    if (err instanceof ProviderError) return err;
    // ResponseError: `code` is the HTTP status, `response` the answer (never the request).
    const response =
      typeof err === 'object' && err !== null
        ? (err as { code?: unknown; response?: { headers?: unknown; body?: unknown } })
        : {};
    if (typeof response.code === 'number' && response.response) {
      const first = (response.response.body as { errors?: { message?: unknown; field?: unknown }[] } | undefined)
        ?.errors?.[0];
      return httpError({
        provider: this.name,
        status: response.code,
        providerCode: typeof first?.field === 'string' ? first.field : undefined,
        reason: sanitizeReason(first?.message, sensitive(msg)),
        retryAfterMs: parseRetryAfter(header(response.response.headers, 'retry-after')),
      });
    }
    return networkError(this.name, err);
  }
}

/** SES answers some transient conditions with HTTP 400; its error code says what it is. */
const SES_TRANSIENT_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestThrottled',
  'ServiceUnavailable',
  'InternalFailure',
  'InternalError',
  'RequestTimeout',
]);

export class SesEmail implements EmailProvider {
  readonly name = 'ses' as const;

  constructor(
    private readonly client: SESClient,
    private readonly options: EmailAdapterOptions,
  ) {}

  /** The idempotency key is the message tag `idempotency_key`, encoded to SES's tag alphabet. */
  async send(msg: OutgoingEmail): Promise<SendResult> {
    const started = performance.now();
    const command = new SendEmailCommand({
      Source: this.options.from,
      Destination: { ToAddresses: [msg.to] },
      Message: {
        Subject: { Data: msg.subject, Charset: 'UTF-8' },
        Body: {
          Text: { Data: msg.text, Charset: 'UTF-8' },
          ...(msg.html ? { Html: { Data: msg.html, Charset: 'UTF-8' } } : {}),
        },
      },
      Tags: [{ Name: SES_TAG_NAME, Value: encodeTagValue(msg.idempotencyKey) }],
    });
    try {
      const result = await withDeadline('ses', this.options.timeoutMs, (abortSignal) =>
        this.client.send(command, { abortSignal }),
      );
      if (!result.MessageId)
        throw new ProviderTransientError({ provider: this.name, reason: 'accepted without a MessageId' });
      return {
        provider: this.name,
        providerMessageId: result.MessageId,
        latencyMs: Math.round(performance.now() - started),
      };
    } catch (err) {
      const error = this.translate(err, msg);
      logFailure(this.options.logger, error, Math.round(performance.now() - started));
      throw error;
    }
  }

  private translate(err: unknown, msg: OutgoingEmail): ProviderError {
    if (err instanceof ProviderError) return err;
    const e =
      typeof err === 'object' && err !== null
        ? (err as {
            name?: unknown;
            message?: unknown;
            $metadata?: { httpStatusCode?: unknown };
            $response?: { headers?: unknown };
          })
        : {};
    const status = e.$metadata?.httpStatusCode;
    if (typeof status !== 'number') return networkError(this.name, err);
    const code = typeof e.name === 'string' ? e.name : undefined;
    const init = {
      provider: this.name,
      status,
      providerCode: code,
      reason: sanitizeReason(e.message, sensitive(msg)),
      retryAfterMs: parseRetryAfter(header(e.$response?.headers, 'retry-after')),
    };
    return code && SES_TRANSIENT_CODES.has(code) ? new ProviderTransientError(init) : httpError(init);
  }
}
