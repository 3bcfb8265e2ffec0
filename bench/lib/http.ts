/**
 * A small keep-alive JSON client on node:http: the open-loop generator and the outbox reader
 * use it. No socket limit, so an open loop never queues inside the client (that would turn it
 * back into a closed loop).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });

export interface HttpResponse<T = unknown> {
  status: number;
  body: T;
  headers: http.IncomingHttpHeaders;
  /** from the request being written until the whole answer was read */
  ms: number;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  json?: unknown;
  timeoutMs?: number;
}

export function request<T = unknown>(url: string, options: RequestOptions = {}): Promise<HttpResponse<T>> {
  const payload = options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json));
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(url, { method: options.method ?? (payload ? 'POST' : 'GET'), headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        if ((res.headers['content-type'] ?? '').includes('json') && text) {
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
        }
        resolve({
          status: res.statusCode ?? 0,
          body: body as T,
          headers: res.headers,
          ms: performance.now() - started,
        });
      });
    });
    req.setTimeout(options.timeoutMs ?? 60_000, () =>
      req.destroy(new Error(`timeout after ${options.timeoutMs ?? 60_000} ms: ${url}`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Like `request`, but anything other than the expected status is an error naming the answer. */
export async function expectStatus<T = unknown>(
  expected: number | number[],
  url: string,
  options: RequestOptions = {},
): Promise<HttpResponse<T>> {
  const res = await request<T>(url, options);
  const ok = Array.isArray(expected) ? expected.includes(res.status) : res.status === expected;
  if (!ok) {
    const shown = typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
    throw new Error(
      `${options.method ?? (options.json === undefined ? 'GET' : 'POST')} ${new URL(url).pathname} answered ${res.status}: ${shown.slice(0, 300)}`,
    );
  }
  return res;
}
