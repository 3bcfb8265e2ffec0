import { setTimeout as sleep } from 'node:timers/promises';
import { expectStatus } from './http';

/** One entry of the provider sandbox's outbox (`GET /sandbox/messages?to=`). */
export interface OutboxMessage {
  id: string;
  provider: string;
  channel: 'sms' | 'email';
  to: string;
  subject: string | null;
  body: string;
  idempotency_key: string | null;
  created_at: string;
}

/** The one-time code in a message body: the first standalone run of 6 digits. */
export function extractOtp(body: string): string | undefined {
  return /(?<!\d)(\d{6})(?!\d)/.exec(body)?.[1];
}

/** The challenge id and token of the first magic link (a URL with both query parameters). */
export function extractMagicLink(body: string): { challenge: string; token: string } | undefined {
  for (const match of body.matchAll(/https?:\/\/[^\s"'<>]+/g)) {
    let url: URL;
    try {
      url = new URL(match[0].replace(/&amp;/g, '&'));
    } catch {
      continue;
    }
    const challenge = url.searchParams.get('challenge');
    const token = url.searchParams.get('token');
    if (challenge && token) return { challenge, token };
  }
  return undefined;
}

/** Epoch ms at which the sandbox accepted the message (the provider "sent" it). */
export function acceptedAt(message: OutboxMessage): number {
  return Date.parse(message.created_at);
}

export class Outbox {
  constructor(readonly sandboxUrl: string) {}

  /** Every message the sandbox still holds, newest first. */
  async all(): Promise<OutboxMessage[]> {
    const res = await expectStatus<{ messages: OutboxMessage[] }>(200, `${this.sandboxUrl}/sandbox/messages`, {
      timeoutMs: 120_000,
    });
    return res.body.messages;
  }

  /** Empties the outbox between phases, so reading it stays cheap (only on a sandbox we started). */
  async clear(): Promise<void> {
    await expectStatus(200, `${this.sandboxUrl}/sandbox/messages`, { method: 'DELETE' });
  }

  async messagesFor(to: string): Promise<OutboxMessage[]> {
    const res = await expectStatus<{ messages: OutboxMessage[] }>(
      200,
      `${this.sandboxUrl}/sandbox/messages?to=${encodeURIComponent(to)}`,
    );
    return res.body.messages;
  }

  /**
   * Polls until a message to `to` satisfies `match`. Reading the outbox is not part of any
   * measured latency: the delivery time comes from the message's own timestamp.
   */
  async waitFor(
    to: string,
    match: (m: OutboxMessage) => boolean,
    {
      timeoutMs = 60_000,
      intervalMs = 50,
      signal,
    }: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
  ): Promise<OutboxMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.messagesFor(to)).find(match);
      if (found) return found;
      if (Date.now() > deadline || signal?.aborted) throw new Error(`no message to ${to} within ${timeoutMs} ms`);
      await sleep(intervalMs);
    }
  }
}
