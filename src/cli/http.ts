/**
 * The CLI's one way to the admin API: JSON over HTTP with the operator's bearer token. A
 * refusal comes back as the API's own `{error, message}` (a Refusal); an API that cannot be
 * reached is an Unreachable naming the URL. The token goes into the Authorization header and
 * nowhere else: no message here or in the callers ever carries it.
 */
import { readFileSync } from 'node:fs';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9090';
const PREFIX = '/admin/api/v1';
/** longer than the API's own wait on a workflow update (25 s), so its 202 arrives first */
const TIMEOUT_MS = 60_000;

/**
 * A no with a stable code: the admin API's own `{error, message}` (or its status, when what
 * answered was not the API), or the CLI's when the API's state already tells the answer
 * (`routes switch` to a provider that is not on the route).
 */
export class Refusal extends Error {
  override name = 'Refusal';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Nothing answered at the URL: down, wrong port, DNS, TLS, or too slow. */
export class Unreachable extends Error {
  override name = 'Unreachable';
}

/** The operator's setup is incomplete or wrong (no token, a URL that is not one): usage. */
export class SetupError extends Error {
  override name = 'SetupError';
}

export interface Connection {
  url: string;
  token: string;
}

/**
 * Where and as whom: the flags, then WARDEN_ADMIN_URL / WARDEN_TOKEN, then the token file
 * (`--token-file` or WARDEN_TOKEN_FILE, the Docker-secrets convention the services use). An
 * explicit token wins over a file.
 */
export function connection(
  flags: { url?: string; token?: string; tokenFile?: string },
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  const url = flags.url ?? env.WARDEN_ADMIN_URL ?? DEFAULT_ADMIN_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SetupError(`the admin URL is not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new SetupError(`the admin URL must be http or https: ${url}`);

  let token = flags.token ?? env.WARDEN_TOKEN;
  const file = flags.tokenFile ?? env.WARDEN_TOKEN_FILE;
  if (!token && file) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new SetupError(`cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (!token) throw new SetupError('no operator token: set WARDEN_TOKEN or WARDEN_TOKEN_FILE (or pass --token-file)');
  return { url: url.replace(/\/+$/, ''), token };
}

/** Why fetch could not get an answer, in a few words (its own message is only "fetch failed"). */
function reasonOf(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
    return `no answer within ${TIMEOUT_MS / 1000} s`;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host not found (DNS)',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
    UND_ERR_SOCKET: 'connection closed',
  };
  if (code && words[code]) return `${words[code]} (${code})`;
  return cause?.message ?? (err instanceof Error ? err.message : String(err));
}

export type Query = Record<string, string | undefined>;

export class AdminClient {
  constructor(private readonly conn: Connection) {}

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, undefined, query);
  }

  post<T>(path: string, body: object): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  patch<T>(path: string, body: object): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }

  delete<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('DELETE', path, undefined, query);
  }

  /** The answer's JSON on 2xx (a 202 included: callers look at its shape); a Refusal otherwise. */
  private async request<T>(method: string, path: string, body?: object, query?: Query): Promise<T> {
    const target = new URL(`${this.conn.url}${PREFIX}${path}`);
    for (const [key, value] of Object.entries(query ?? {}))
      if (value !== undefined) target.searchParams.set(key, value);
    let res: Response;
    let text: string;
    try {
      res = await fetch(target, {
        method,
        headers: {
          authorization: `Bearer ${this.conn.token}`,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      text = await res.text();
    } catch (err) {
      throw new Unreachable(`cannot reach the admin API at ${this.conn.url}: ${reasonOf(err)}`);
    }
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const error = json as { error?: unknown; message?: unknown } | undefined;
    if (json === undefined || (!res.ok && typeof error?.error !== 'string'))
      throw new Refusal(
        `http_${res.status}`,
        `${this.conn.url} answered ${res.status} ${res.statusText} without the admin API's JSON: is it the admin port?`,
      );
    if (res.ok) return json as T;
    throw new Refusal(String(error?.error), typeof error?.message === 'string' ? error.message : '');
  }
}
