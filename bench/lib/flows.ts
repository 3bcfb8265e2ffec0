import { setTimeout as sleep } from 'node:timers/promises';
import { acceptedAt, type Outbox, type OutboxMessage } from './outbox';
import type { BenchUser } from './users';
import { credentialFrom, firstSendKey, recipientOf, type Credential, type FlowMethod, type Pkce } from './wardenApi';

/** A challenge the benchmark started: who, which, and when the initiate request left. */
export interface Issued {
  method: FlowMethod;
  user: BenchUser;
  challengeId: string;
  /** epoch ms the initiate request was sent (or, in the open loop, was due) */
  sentAt: number;
  /** the flow's PKCE pair: the initiate sent its challenge, the exchange sends its verifier */
  pkce?: Pkce;
  /** `warden_device=...` as the initiate's answer set it: the verify sends it back */
  deviceCookie?: string;
}

export interface Delivered extends Issued {
  credential: Credential;
  /** initiate sent -> message accepted by the provider sandbox, ms */
  toOutboxMs: number;
}

/**
 * Finds the message of a challenge in the outbox (by its first send's idempotency key, so a
 * user's other messages never match) and reads the code or link out of it. The outbox read
 * itself is not timed: the delivery time is the message's own acceptance timestamp.
 */
export async function collect(outbox: Outbox, issued: Issued, timeoutMs = 60_000): Promise<Delivered> {
  const key = firstSendKey(issued.challengeId);
  const message = await outbox.waitFor(recipientOf(issued.method, issued.user), (m) => m.idempotency_key === key, {
    timeoutMs,
  });
  return delivered(issued, message);
}

function delivered(issued: Issued, message: OutboxMessage): Delivered {
  const credential = credentialFrom(issued.method, issued.challengeId, message);
  if (!credential)
    throw new Error(`the ${issued.method} message of challenge ${issued.challengeId} holds no code or link`);
  return { ...issued, credential, toOutboxMs: acceptedAt(message) - issued.sentAt };
}

/**
 * The bulk form of `collect`, for closed-loop phases: reads the whole outbox every 250 ms
 * until every challenge's message is there (or `timeoutMs` passes), one request per read
 * instead of one per challenge.
 */
export async function collectAll(
  outbox: Outbox,
  issued: readonly Issued[],
  timeoutMs = 120_000,
): Promise<{ delivered: Delivered[]; missing: Issued[] }> {
  const deadline = Date.now() + timeoutMs;
  let waiting = [...issued];
  const found: Delivered[] = [];
  while (waiting.length > 0) {
    const byKey = new Map<string, OutboxMessage>();
    for (const m of await outbox.all()) if (m.idempotency_key) byKey.set(m.idempotency_key, m);
    const still: Issued[] = [];
    for (const i of waiting) {
      const message = byKey.get(firstSendKey(i.challengeId));
      if (message) found.push(delivered(i, message));
      else still.push(i);
    }
    waiting = still;
    if (waiting.length === 0 || Date.now() > deadline) break;
    await sleep(250);
  }
  return { delivered: found, missing: waiting };
}

/**
 * Waits until no new message has reached the outbox for `quietMs`: requests still in flight
 * when a closed-loop phase stopped are still being served, and their work must not spill into
 * the next measured phase.
 */
export async function settle(outbox: Outbox, quietMs = 1000, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    const n = (await outbox.all()).length;
    if (n !== last) {
      last = n;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= quietMs) {
      return;
    }
    await sleep(250);
  }
}

/** Runs `work` over `items` with at most `parallel` in flight; failures are counted, not thrown. */
export async function mapLimited<T, R>(
  items: readonly T[],
  parallel: number,
  work: (item: T) => Promise<R>,
): Promise<{ done: R[]; failed: number; firstError?: string }> {
  const done: R[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        done.push(await work(item));
      } catch (err) {
        failed += 1;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, lane));
  return { done, failed, firstError };
}
