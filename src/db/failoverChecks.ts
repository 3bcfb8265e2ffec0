/**
 * The database-connectivity checks (docs/incident-response.md), each a plain function the
 * failover runbook's activities and the admin API call: health per candidate server, slow
 * queries and lock contention, pool monitoring, data consistency, promotion.
 */
import pg from 'pg';
import { parseSamples } from '../incidents/promText';
import type { Database } from './database';
import { lsnValue, probeAll, type Endpoint, type EndpointProbe } from './topology';
import { ACTIVE_CHALLENGE_STATUSES } from '../auth/end';

const CHECK_TIMEOUT_MS = 2000;

async function withServer<T>(endpoint: Endpoint, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: endpoint.url,
    connectionTimeoutMillis: CHECK_TIMEOUT_MS,
    query_timeout: 10_000,
    application_name: 'warden-runbook',
  });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** SQL text for the timeline: literals out (utility statements keep them), bounded length. */
export function redactSql(text: string): string {
  return text
    .replace(/'(?:[^']|'')*'/g, "'?'")
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}

// ---- health: pg_isready, connection count, readyz ------------------------------------------

export interface ServerHealth extends EndpointProbe {
  /** connect + SELECT 1, the pg_isready equivalent */
  ready: boolean;
  latencyMs?: number;
  /** `SELECT count(*) FROM pg_stat_activity WHERE datname = <db>` */
  connections?: number;
  maxConnections?: number;
}

export interface HealthReport {
  servers: ServerHealth[];
  /** a reachable server that takes writes; null when the primary is unavailable */
  primary: string | null;
  standbys: string[];
}

export async function serverHealth(endpoint: Endpoint): Promise<ServerHealth> {
  const [probe] = await probeAll([endpoint], CHECK_TIMEOUT_MS);
  if (probe!.role === 'unreachable') return { ...probe!, ready: false };
  try {
    return await withServer(endpoint, async (c) => {
      const started = performance.now();
      await c.query('SELECT 1');
      const latencyMs = Math.round(performance.now() - started);
      const { rows } = await c.query<{ connections: number; max: number }>(
        `SELECT (SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database()) AS connections,
                current_setting('max_connections')::int AS max`,
      );
      return { ...probe!, ready: true, latencyMs, connections: rows[0]!.connections, maxConnections: rows[0]!.max };
    });
  } catch (err) {
    return {
      id: endpoint.id,
      role: 'unreachable',
      ready: false,
      error: err instanceof Error ? err.message.slice(0, 200) : String(err),
    };
  }
}

export async function databaseHealth(endpoints: readonly Endpoint[]): Promise<HealthReport> {
  const servers = await Promise.all(endpoints.map(serverHealth));
  const primaries = servers.filter((s) => s.role === 'primary').sort((a, b) => (b.timeline ?? 0) - (a.timeline ?? 0));
  return {
    servers,
    primary: primaries[0]?.id ?? null,
    standbys: servers.filter((s) => s.role === 'standby').map((s) => s.id),
  };
}

// ---- investigation: slow queries, lock contention, pool monitoring -------------------------

export interface Investigation {
  server: string | null;
  slowQueries:
    | { available: true; top: Array<{ query: string; meanMs: number; calls: number }> }
    | { available: false; reason: string };
  locks: Array<{ blockedPid: number; blockingPid: number; blockedQuery: string; blockingQuery: string }>;
  /** warden_db_connections from this process and the configured /metrics pages, per page */
  pools: Array<{
    source: string;
    total?: number;
    inUse?: number;
    idle?: number;
    waiting?: number;
    max?: number;
    error?: string;
  }>;
}

export async function slowQueries(c: pg.ClientBase): Promise<Investigation['slowQueries']> {
  const ext = await c.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'");
  if (!ext.rowCount) return { available: false, reason: 'pg_stat_statements is not installed in this database' };
  try {
    // the ten slowest statements by mean time
    const { rows } = await c.query<{ query: string; mean_exec_time: number; calls: string }>(
      'SELECT query, mean_exec_time, calls FROM pg_stat_statements ORDER BY mean_exec_time DESC LIMIT 10',
    );
    return {
      available: true,
      top: rows.map((r) => ({
        query: redactSql(r.query),
        meanMs: Math.round(r.mean_exec_time * 10) / 10,
        calls: Number(r.calls),
      })),
    };
  } catch (err) {
    // installed but not preloaded (shared_preload_libraries)
    return { available: false, reason: err instanceof Error ? err.message.slice(0, 200) : String(err) };
  }
}

/**
 * Who blocks whom. Joining pg_locks on locktype alone would pair every lock with every other
 * lock of its type; pg_blocking_pids answers the question, with the usual columns (blocked and
 * blocking pid and query).
 */
export async function lockContention(c: pg.ClientBase): Promise<Investigation['locks']> {
  const { rows } = await c.query<{
    blocked_pid: number;
    blocking_pid: number;
    blocked_query: string;
    blocking_query: string;
  }>(
    `SELECT blocked.pid AS blocked_pid, blocking.pid AS blocking_pid,
            blocked.query AS blocked_query, blocking.query AS blocking_query
       FROM pg_stat_activity blocked
       CROSS JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS b(pid)
       JOIN pg_stat_activity blocking ON blocking.pid = b.pid
      LIMIT 20`,
  );
  return rows.map((r) => ({
    blockedPid: r.blocked_pid,
    blockingPid: r.blocking_pid,
    blockedQuery: redactSql(r.blocked_query),
    blockingQuery: redactSql(r.blocking_query),
  }));
}

/** `curl -s .../metrics | grep db_connections`, for this process and the configured pages. */
export async function poolMetrics(
  own: () => Promise<string>,
  urls: readonly string[],
): Promise<Investigation['pools']> {
  const read = async (source: string, text: () => Promise<string>) => {
    try {
      const samples = parseSamples(await text(), (name) => name === 'warden_db_connections');
      const by = (state: string) =>
        samples.filter((s) => s.labels.state === state).reduce((sum, s) => sum + s.value, 0);
      return {
        source,
        total: by('total'),
        inUse: by('in_use'),
        idle: by('idle'),
        waiting: by('waiting'),
        max: by('max'),
      };
    } catch (err) {
      return { source, error: err instanceof Error ? err.message.slice(0, 200) : String(err) };
    }
  };
  return Promise.all([
    read('this worker', own),
    ...urls.map((url) =>
      read(new URL(url).host, async () => {
        const response = await fetch(url, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
        if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
        return response.text();
      }),
    ),
  ]);
}

/** Investigates on the primary, or on a standby when there is none (reads still work there). */
export async function investigate(
  endpoints: readonly Endpoint[],
  pools: () => Promise<Investigation['pools']>,
): Promise<Investigation> {
  const health = await probeAll(endpoints, CHECK_TIMEOUT_MS);
  const target = health.find((p) => p.role === 'primary') ?? health.find((p) => p.role === 'standby');
  const poolsNow = await pools();
  if (!target)
    return {
      server: null,
      slowQueries: { available: false, reason: 'no server reachable' },
      locks: [],
      pools: poolsNow,
    };
  const endpoint = endpoints.find((e) => e.id === target.id)!;
  return withServer(endpoint, async (c) => ({
    server: target.id,
    slowQueries: await slowQueries(c),
    locks: await lockContention(c),
    pools: poolsNow,
  }));
}

// ---- consistency -----------------------------------------------------------------------------

/** an open challenge this long past its expiry should have been ended by its workflow's timer */
export const EXPIRY_GRACE_SECONDS = 60;

export interface ConsistencyReport {
  /** the orphan query (no users row for the challenge's user_id), split by what it means */
  orphaned: {
    total: number;
    /** never sent: challenges of unknown users, issued on purpose so initiate does not reveal who exists */
    decoys: number;
    /** a message went out, then the user row disappeared */
    delivered: number;
    /** of those, still open (cleanup revokes them) */
    deliveredOpen: number;
  };
  expired: {
    /** `SELECT COUNT(*) FROM auth_challenges WHERE expires_at < NOW()`: ended ones included */
    pastExpiry: number;
    /** still open more than EXPIRY_GRACE_SECONDS after expiry (cleanup ends those whose workflow is gone) */
    openPastExpiry: number;
    /** ended, yet the sealed copy of the secret is still there (cleanup wipes it) */
    sealedAfterEnd: number;
  };
}

export async function checkConsistency(db: Database): Promise<ConsistencyReport> {
  const { rows } = await db.query<{ total: number; decoys: number; delivered: number; delivered_open: number }>(
    `SELECT count(*)::int AS total,
            count(*) FILTER (WHERE ac.delivery_provider IS NULL)::int AS decoys,
            count(*) FILTER (WHERE ac.delivery_provider IS NOT NULL)::int AS delivered,
            count(*) FILTER (WHERE ac.delivery_provider IS NOT NULL AND ac.status = ANY($1::text[]))::int AS delivered_open
       FROM auth_challenges ac LEFT JOIN users u ON ac.user_id = u.sub
      WHERE u.sub IS NULL`,
    [ACTIVE_CHALLENGE_STATUSES],
  );
  const expired = await db.query<{ past: number; open: number; sealed: number }>(
    `SELECT count(*) FILTER (WHERE expires_at < now())::int AS past,
            count(*) FILTER (WHERE status = ANY($1::text[]) AND expires_at < now() - make_interval(secs => $2))::int AS open,
            count(*) FILTER (WHERE NOT status = ANY($1::text[]) AND sealed_secret IS NOT NULL)::int AS sealed
       FROM auth_challenges`,
    [ACTIVE_CHALLENGE_STATUSES, EXPIRY_GRACE_SECONDS],
  );
  const o = rows[0]!;
  const e = expired.rows[0]!;
  return {
    orphaned: { total: o.total, decoys: o.decoys, delivered: o.delivered, deliveredOpen: o.delivered_open },
    expired: { pastExpiry: e.past, openPastExpiry: e.open, sealedAfterEnd: e.sealed },
  };
}

// ---- promotion -------------------------------------------------------------------------------

export class PromotionRefusedError extends Error {
  override name = 'PromotionRefusedError';
}

export interface PromotionResult {
  endpoint: string;
  promoted: boolean;
  /** the new primary's WAL timeline */
  timeline?: number;
  note: string;
}

/**
 * `SELECT pg_promote()` on the chosen standby (the given one, else the most advanced). Refused
 * while another server still takes writes: two primaries would split the data. Promoting a
 * server that is already primary changes nothing (a retry after a lost reply).
 */
export async function promoteReplica(endpoints: readonly Endpoint[], wanted?: string): Promise<PromotionResult> {
  const probes = await probeAll(endpoints, CHECK_TIMEOUT_MS);
  const candidates = wanted ? probes.filter((p) => p.id === wanted) : probes.filter((p) => p.role === 'standby');
  if (wanted && !candidates.length)
    throw new PromotionRefusedError(`${wanted} is not one of the configured database endpoints`);
  const target =
    candidates.find((p) => p.role === 'primary') ??
    candidates
      .filter((p) => p.role === 'standby')
      .sort((a, b) => (lsnValue(b.replayLsn) > lsnValue(a.replayLsn) ? 1 : -1))[0];
  if (!target) {
    const unreachable = candidates.find((p) => p.role === 'unreachable');
    // a standby that does not answer may be restarting: worth a retry
    if (unreachable) throw new Error(`standby ${unreachable.id} is unreachable: ${unreachable.error ?? ''}`);
    throw new PromotionRefusedError('no standby to promote among the configured database endpoints');
  }
  if (target.role === 'primary')
    return {
      endpoint: target.id,
      promoted: false,
      timeline: target.timeline,
      note: `${target.id} is already the primary (timeline ${target.timeline})`,
    };
  const live = probes.filter((p) => p.role === 'primary' && p.id !== target.id);
  if (live.length)
    throw new PromotionRefusedError(
      `${live.map((p) => p.id).join(', ')} still takes writes: promoting ${target.id} would give two primaries`,
    );
  const endpoint = endpoints.find((e) => e.id === target.id)!;
  await withServer(endpoint, async (c) => {
    const { rows } = await c.query<{ pg_promote: boolean }>('SELECT pg_promote(true, 60)');
    if (!rows[0]?.pg_promote) throw new Error(`pg_promote on ${target.id} did not finish within 60 s`);
  });
  const [after] = await probeAll([endpoint], CHECK_TIMEOUT_MS);
  if (after!.role !== 'primary') throw new Error(`${target.id} still reports ${after!.role} after pg_promote`);
  return {
    endpoint: target.id,
    promoted: true,
    timeline: after!.timeline,
    note: `promoted ${target.id} (replayed up to ${target.replayLsn ?? '?'}; now timeline ${after!.timeline})`,
  };
}
