/**
 * The synthetic client of the recovery checklist: it uses Warden the way a browser does,
 * through the public API, and reads the codes it was sent from the provider sandbox's outbox.
 *
 * Its requests come from a synthetic client address so the checks neither spend the worker's
 * own rate-limit budget nor get blocked by it: on a loopback API a distinct 127.x.y.z source
 * address (Linux routes all of 127/8 to lo), elsewhere an X-Forwarded-For from the
 * benchmarking range 198.18.0.0/15, which the API believes only if the worker is one of its
 * WARDEN_TRUSTED_PROXIES. The rate-limit check verifies which one the API actually saw.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { CHALLENGE_WORKFLOW_PREFIX } from '../shared/auth';

export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

export class SyntheticClient {
  readonly address: string;
  private loopback: boolean;

  constructor(
    private readonly baseUrl: string,
    seed: string,
    private readonly timeoutMs: number,
  ) {
    const host = new URL(baseUrl).hostname;
    this.loopback = host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.'));
    const h = createHash('sha256').update(seed).digest();
    // 127.0.0.0/24 stays clear of the usual 127.0.0.1; 198.18/15 is never routed
    this.address = this.loopback
      ? `127.${(h[0]! % 254) + 1}.${h[1]}.${(h[2]! % 254) + 1}`
      : `198.${18 + (h[0]! % 2)}.${h[1]}.${(h[2]! % 254) + 1}`;
  }

  post(path: string, body: Record<string, unknown>): Promise<HttpAnswer> {
    return this.request(path, JSON.stringify(body));
  }

  private request(path: string, payload: string, retryWithoutBind = true): Promise<HttpAnswer> {
    const url = new URL(path, this.baseUrl);
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<HttpAnswer>((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            'user-agent': 'warden-recovery-checklist',
            ...(this.loopback ? {} : { 'x-forwarded-for': this.address }),
          },
          ...(this.loopback ? { localAddress: this.address } : {}),
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let parsed: Record<string, unknown>;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
            } catch {
              parsed = {};
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`POST ${url.pathname} timed out`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        // a host without 127/8 on lo (macOS): fall back to plain loopback
        if (err.code === 'EADDRNOTAVAIL' && this.loopback && retryWithoutBind) {
          this.loopback = false;
          this.request(path, payload, false).then(resolve, reject);
          return;
        }
        reject(new Error(`POST ${url.pathname} failed: ${err.code ?? err.message}`));
      });
      req.end(payload);
    });
  }
}

export interface OutboxMessage {
  to: string;
  body: string;
  idempotency_key: string | null;
  created_at: string;
}

/** Waits for the message a challenge sent (its idempotency key is `challenge-<id>/send-<n>`). */
export async function awaitOutboxMessage(
  sandboxUrl: string,
  to: string,
  challengeId: string,
  timeoutMs = 15_000,
): Promise<OutboxMessage | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const response = await fetch(`${sandboxUrl}/sandbox/messages?to=${encodeURIComponent(to)}`, {
      signal: AbortSignal.timeout(5000),
    });
    if (response.ok) {
      const { messages } = (await response.json()) as { messages: OutboxMessage[] };
      const found = messages
        .filter((m) => m.idempotency_key?.startsWith(`${CHALLENGE_WORKFLOW_PREFIX}${challengeId}/`))
        .at(-1);
      if (found) return found;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return undefined;
}

export function otpFrom(body: string): string | undefined {
  return /\b(\d{6})\b/.exec(body)?.[1];
}

export function linkFrom(body: string): { challenge: string; token: string } | undefined {
  const url = /https?:\/\/\S+\?\S*token=[A-Za-z0-9_-]+\S*/.exec(body)?.[0];
  if (!url) return undefined;
  const params = new URL(url.replace(/[)>.,"']+$/, '')).searchParams;
  const challenge = params.get('challenge');
  const token = params.get('token');
  return challenge && token ? { challenge, token } : undefined;
}
