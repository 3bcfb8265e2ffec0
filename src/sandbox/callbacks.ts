import { createHmac, randomBytes } from 'node:crypto';
import type { Logger } from '../telemetry/logger';

/**
 * Twilio's request signature: base64 HMAC-SHA1, keyed with the auth token, over the full
 * callback URL followed by every POST parameter as name+value, sorted by name.
 * https://www.twilio.com/docs/usage/security#validating-requests
 */
export function twilioSignature(authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => acc + key + params[key], url);
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf8')).digest('base64');
}

/**
 * Plivo's V3 signature: base64 HMAC-SHA256, keyed with the auth token, over
 * `<url without query>?<sorted query k=v&...>[.]<sorted params kv...>.<nonce>`,
 * mirroring plivo-node's validateV3Signature so that the SDK's validator accepts it.
 */
export function plivoV3Signature(authToken: string, url: string, params: Record<string, string>, nonce: string): string {
  const parsed = new URL(url);
  const query = new Map<string, string[]>();
  for (const [key, value] of parsed.searchParams) query.set(key, [...(query.get(key) ?? []), value]);
  const sortedQuery = [...query.keys()]
    .sort()
    .flatMap((key) => (query.get(key) ?? []).sort().map((value) => `${key}=${value}`))
    .join('&');
  const hasParams = Object.keys(params).length > 0;
  let base = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  if (sortedQuery.length > 0 || hasParams) base += `?${sortedQuery}`;
  if (sortedQuery.length > 0 && hasParams) base += '.';
  base += Object.keys(params)
    .sort()
    .map((key) => `${key}${params[key]}`)
    .join('');
  return createHmac('sha256', authToken).update(`${base}.${nonce}`).digest('base64');
}

export interface Callback {
  url: string;
  params: Record<string, string>;
  headers: Record<string, string>;
}

export function twilioDeliveredCallback(
  url: string,
  authToken: string,
  message: { sid: string; accountSid: string; from: string; to: string },
): Callback {
  const params = {
    AccountSid: message.accountSid,
    ApiVersion: '2010-04-01',
    From: message.from,
    MessageSid: message.sid,
    MessageStatus: 'delivered',
    SmsSid: message.sid,
    SmsStatus: 'delivered',
    To: message.to,
  };
  return { url, params, headers: { 'X-Twilio-Signature': twilioSignature(authToken, url, params) } };
}

export function plivoDeliveredCallback(
  url: string,
  authToken: string,
  message: { uuid: string; from: string; to: string },
): Callback {
  const params = {
    From: message.from,
    To: message.to,
    Status: 'delivered',
    MessageUUID: message.uuid,
    ParentMessageUUID: message.uuid,
    PartInfo: '1 of 1',
    TotalAmount: '0.00000',
    TotalRate: '0.00000',
    Units: '1',
    ErrorCode: '',
  };
  const nonce = randomBytes(10).toString('hex');
  return {
    url,
    params,
    headers: {
      'X-Plivo-Signature-V3': plivoV3Signature(authToken, url, params, nonce),
      'X-Plivo-Signature-V3-Nonce': nonce,
    },
  };
}

/**
 * Sends delivery callbacks shortly after a message is accepted, as the providers do. Failures
 * are swallowed (a provider does not care whether the receiver was up); close() cancels the
 * pending ones so a closed sandbox leaves no timers or sockets behind.
 */
export class CallbackSender {
  private pending = new Set<{ timer: NodeJS.Timeout; abort: AbortController }>();

  constructor(
    private readonly logger?: Logger,
    private readonly delayMs = 25,
  ) {}

  schedule(callback: Callback): void {
    const entry = { timer: setTimeout(() => void this.send(callback, entry), this.delayMs), abort: new AbortController() };
    entry.timer.unref();
    this.pending.add(entry);
  }

  private async send(callback: Callback, entry: { timer: NodeJS.Timeout; abort: AbortController }): Promise<void> {
    try {
      await fetch(callback.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...callback.headers },
        body: new URLSearchParams(callback.params).toString(),
        signal: AbortSignal.any([entry.abort.signal, AbortSignal.timeout(5_000)]),
      }).then((res) => res.arrayBuffer());
    } catch (err) {
      this.logger?.debug({ err: { name: (err as Error).name } }, 'sandbox status callback failed');
    } finally {
      this.pending.delete(entry);
    }
  }

  close(): void {
    for (const entry of this.pending) {
      clearTimeout(entry.timer);
      entry.abort.abort();
    }
    this.pending.clear();
  }
}
