import { AsyncLocalStorage } from 'node:async_hooks';
import type { Agent } from 'node:http';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import type Response from 'twilio/lib/http/response';

/** Per-call facts that twilio-node has no parameter for, in and out. */
export interface TwilioCall {
  /** sent as I-Twilio-Idempotency-Token */
  idempotencyKey?: string;
  /** the Retry-After header of the answer, which RestException does not keep */
  retryAfter?: string;
}

const calls = new AsyncLocalStorage<TwilioCall>();

/** Runs an SDK call with per-call context visible to the RequestClient below. */
export function inTwilioCall<T>(call: TwilioCall, run: () => Promise<T>): Promise<T> {
  return calls.run(call, run);
}

const TWILIO_API = /^https:\/\/api\.twilio\.com/;

/**
 * twilio-node has no base-URL option; its documented extension point is a custom httpClient.
 * This one (1) rewrites https://api.twilio.com to the sandbox when `baseUrl` is set, (2) adds
 * the caller's idempotency key as a header and reads Retry-After back, per call, and (3)
 * forgets the last request: the stock client keeps it, body and OTP included, on a long-lived
 * object.
 */
export class WardenTwilioHttpClient extends twilio.RequestClient {
  constructor(
    private readonly baseUrl: string | undefined,
    options: { timeout: number; httpAgent?: Agent },
  ) {
    super({ timeout: options.timeout, keepAlive: true, autoRetry: false });
    if (options.httpAgent) this.axios.defaults.httpAgent = options.httpAgent;
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<Response<TData>> {
    const call = calls.getStore();
    const uri = this.baseUrl ? opts.uri.replace(TWILIO_API, this.baseUrl) : opts.uri;
    const headers = { ...opts.headers };
    if (call?.idempotencyKey) headers['I-Twilio-Idempotency-Token'] = call.idempotencyKey;
    try {
      const response = await super.request<TData>({ ...opts, uri, headers });
      const retryAfter: unknown = response.headers?.['retry-after'];
      if (call && typeof retryAfter === 'string') call.retryAfter = retryAfter;
      return response;
    } finally {
      this.lastRequest = undefined;
      this.lastResponse = undefined;
    }
  }
}
