/**
 * Closed-loop load with autocannon: `connections` clients, each sending its next request as
 * soon as the previous one is answered (HTTP/1.1 keep-alive, no pipelining). Every request
 * gets its own body from `next()` (a distinct user, or a code read from the outbox), and every
 * answer is handed to `onAnswer` with its latency as autocannon measured it.
 */
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { coresUsed, type CpuSnapshot, type CpuWatcher } from './cpu';
import { perSecond, summarize, type Summary } from './stats';

export interface ClosedLoopSpec<Item> {
  baseUrl: string;
  connections: number;
  /** run for this long... */
  durationS?: number;
  /** ...or exactly this many requests */
  amount?: number;
  /**
   * The next request. Undefined when the source ran dry (a connection error cost an answer):
   * the client then sends a request that answers 404, visible in statusCodes, never a repeat.
   */
  next():
    | {
        item: Item;
        method: 'POST' | 'GET';
        path: string;
        body?: string;
        contentType?: string;
        headers?: Record<string, string>;
      }
    | undefined;
  onAnswer?(
    item: Item,
    answer: {
      status: number;
      body: string;
      /** the answer's headers by name (a repeated one, such as set-cookie, as an array) */
      headers: Record<string, string | string[]>;
      latencyMs: number;
      sentAt: number;
    },
  ): void;
}

export interface PhaseResult {
  concurrency: number;
  /** answers received */
  requests: number;
  /** answers with a 2xx status */
  ok: number;
  statusCounts: Record<string, number>;
  /** connection errors and timeouts (no answer) */
  errors: number;
  durationS: number;
  /** 2xx answers per second over the phase */
  throughput: number;
  /** latency of the 2xx answers, ms */
  latencyMs: Summary;
  /** cores each component used during the phase (bench/lib/cpu.ts) */
  cpu?: Record<string, number>;
}

interface Ctx<Item> {
  item?: Item;
}

export async function runClosedLoop<Item>(spec: ClosedLoopSpec<Item>, cpu?: CpuWatcher): Promise<PhaseResult> {
  const cpuBefore = cpu?.snapshot();
  const okLatencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  let answered:
    { item: Item | undefined; status: number; body: string; headers: Record<string, string | string[]> } | undefined;
  let requests = 0;
  const startedAt = performance.now();
  let lastAnswerAt = startedAt;
  /** the CPU snapshot at a fixed amount's last answer */
  let cpuAtEnd: CpuSnapshot | undefined;

  const instance = autocannon({
    url: spec.baseUrl,
    connections: spec.connections,
    pipelining: 1,
    timeout: 60,
    ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.durationS ?? 10 }),
    requests: [
      {
        setupRequest: (request: autocannon.Request, context: Record<string, unknown> & Ctx<Item>) => {
          const next = spec.next();
          context.item = next?.item;
          if (!next) return { ...request, method: 'GET', path: '/bench-source-ran-dry', headers: {}, body: undefined };
          return {
            ...request,
            method: next.method,
            path: next.path,
            headers: {
              ...next.headers,
              ...(next.body !== undefined ? { 'content-type': next.contentType ?? 'application/json' } : {}),
            },
            body: next.body,
          };
        },
        onResponse: (
          status: number,
          body: string,
          context: Record<string, unknown> & Ctx<Item>,
          headers: Record<string, string | string[]>,
        ) => {
          // autocannon emits 'response' (with the latency) right after this, synchronously
          answered = { item: context.item, status, body, headers: headers ?? {} };
        },
      },
    ],
  });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    requests += 1;
    statusCounts[String(statusCode)] = (statusCounts[String(statusCode)] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) okLatencies.push(responseTime);
    const a = answered;
    answered = undefined;
    if (a?.item !== undefined && spec.onAnswer) {
      spec.onAnswer(a.item, {
        status: a.status,
        body: a.body,
        headers: a.headers,
        latencyMs: responseTime,
        sentAt: Date.now() - responseTime,
      });
    }
    lastAnswerAt = performance.now();
    if (requests === spec.amount) cpuAtEnd = cpu?.snapshot();
  });
  const result = await instance;
  // autocannon notices that a fixed amount is done only at its next 1-second sampling tick and
  // reports the duration up to that tick: up to a second of idle machine counted into the phase.
  // A fixed amount ends at its last answer (a request lost to an error or a timeout included).
  const cpuAfter = cpuAtEnd ?? cpu?.snapshot();
  const durationMs = spec.amount !== undefined ? lastAnswerAt - startedAt : result.duration * 1000;
  return {
    concurrency: spec.connections,
    requests,
    ok: okLatencies.length,
    statusCounts,
    errors: result.errors + result.timeouts,
    durationS: Math.round(durationMs / 10) / 100,
    throughput: perSecond(okLatencies.length, durationMs),
    latencyMs: summarize(okLatencies),
    ...(cpuBefore && cpuAfter ? { cpu: coresUsed(cpuBefore, cpuAfter) } : {}),
  };
}
