/**
 * The Postgres servers a process may use, and how it tells which one is the primary. The idea
 * is libpq's `target_session_attrs=read-write`, done by hand because node-postgres has no
 * multi-host URLs: ask each candidate `SELECT pg_is_in_recovery()`; the one that answers false
 * takes writes. A promoted standby starts a new WAL timeline, so when two servers both claim to
 * be primary (an old primary restarted after a failover) the higher timeline is the newer one.
 */
import pg from 'pg';

export interface Endpoint {
  /** `host:port`: how endpoints are named in logs, the API and the control plane (no password) */
  id: string;
  url: string;
}

export type EndpointRole = 'primary' | 'standby' | 'unreachable';

export interface EndpointProbe {
  id: string;
  role: EndpointRole;
  /** WAL timeline of a primary (grows with every promotion) */
  timeline?: number;
  /** a standby's last replayed WAL position, to pick the most advanced one */
  replayLsn?: string;
  /** connection or query failure, without the URL */
  error?: string;
}

export function endpointId(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || '5432'}`;
}

/** The candidates in order, the process's first URL first; duplicates (same host:port) dropped. */
export function parseEndpoints(urls: readonly string[]): Endpoint[] {
  const seen = new Map<string, Endpoint>();
  for (const url of urls) {
    const id = endpointId(url);
    if (!seen.has(id)) seen.set(id, { id, url });
  }
  return [...seen.values()];
}

const PROBE_SQL = `SELECT pg_is_in_recovery() AS standby,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile,
  CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text END AS replay_lsn`;

/** The first 8 hex digits of a WAL file name are its timeline. */
function timelineOf(walfile: string | null): number | undefined {
  return walfile ? Number.parseInt(walfile.slice(0, 8), 16) : undefined;
}

function describeError(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  // pg messages name host and port at most, never the password; keep them short
  return `${typeof code === 'string' ? `${code} ` : ''}${message}`.slice(0, 200);
}

/** Runs the role query on an open client. */
export async function roleOf(client: pg.ClientBase, id: string): Promise<EndpointProbe> {
  const { rows } = await client.query<{ standby: boolean; walfile: string | null; replay_lsn: string | null }>(
    PROBE_SQL,
  );
  const row = rows[0]!;
  return row.standby
    ? { id, role: 'standby', replayLsn: row.replay_lsn ?? undefined }
    : { id, role: 'primary', timeline: timelineOf(row.walfile) };
}

/** Connects, asks, disconnects; any failure within `timeoutMs` means unreachable. */
export async function probeEndpoint(endpoint: Endpoint, timeoutMs: number): Promise<EndpointProbe> {
  const client = new pg.Client({
    connectionString: endpoint.url,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: 'warden-topology',
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await roleOf(client, endpoint.id);
  } catch (err) {
    return { id: endpoint.id, role: 'unreachable', error: describeError(err) };
  } finally {
    await client.end().catch(() => {});
  }
}

export function probeAll(endpoints: readonly Endpoint[], timeoutMs: number): Promise<EndpointProbe[]> {
  return Promise.all(endpoints.map((e) => probeEndpoint(e, timeoutMs)));
}

/** A pg_lsn (`16/B374D848`) as a number; -1 when unknown. */
export function lsnValue(lsn: string | undefined): bigint {
  if (!lsn) return -1n;
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

export interface Choice {
  id: string;
  role: 'primary' | 'standby';
}

/**
 * Which endpoint a process should use. A pinned endpoint (the control plane's `primary`, set
 * by a failover) is used alone: if it is down the process waits for it rather than drift back
 * to an old primary that may have come back with less data. Unpinned: the writable endpoint
 * with the highest timeline (the current one on a tie); with none writable, a standby for
 * reads (the current one, else the most advanced), in read-only degradation; else null.
 */
export function chooseEndpoint(
  probes: readonly EndpointProbe[],
  options: { current: string; pinned?: string | null },
): Choice | null {
  if (options.pinned) {
    const pinned = probes.find((p) => p.id === options.pinned);
    return pinned && pinned.role !== 'unreachable' ? { id: pinned.id, role: pinned.role } : null;
  }
  const primaries = probes.filter((p) => p.role === 'primary');
  if (primaries.length) {
    const best = Math.max(...primaries.map((p) => p.timeline ?? 0));
    const top = primaries.filter((p) => (p.timeline ?? 0) === best);
    const chosen = top.find((p) => p.id === options.current) ?? top[0]!;
    return { id: chosen.id, role: 'primary' };
  }
  const standbys = probes.filter((p) => p.role === 'standby');
  if (!standbys.length) return null;
  const current = standbys.find((p) => p.id === options.current);
  const chosen = current ?? [...standbys].sort((a, b) => (lsnValue(b.replayLsn) > lsnValue(a.replayLsn) ? 1 : -1))[0]!;
  return { id: chosen.id, role: 'standby' };
}
