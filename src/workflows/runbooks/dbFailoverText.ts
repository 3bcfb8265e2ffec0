/** The db-failover runbook's timeline sentences, from its activities' results (pure functions). */
import type { ConsistencyReport, FailoverHealth, Investigation } from '../../activities/dbOps';
import type { CleanupResult } from '../../db/failoverCleanup';
import type { PoolSize } from '../../shared/database';

/** The control-plane state before the run: what compensation and the last steps put back. */
export interface Before {
  pool: PoolSize | null;
  readOnly: boolean;
}

export function healthSummary(h: FailoverHealth): string {
  const servers = h.servers
    .map((s) =>
      s.ready
        ? `${s.id} ${s.role}${s.timeline ? ` (timeline ${s.timeline})` : ''}, SELECT 1 in ${s.latencyMs} ms, ${s.connections}/${s.maxConnections} connections`
        : `${s.id} unreachable (${s.error ?? 'no answer'})`,
    )
    .join('; ');
  const me = h.thisProcess;
  const ro = me.readOnly.forced
    ? 'read-only (forced)'
    : me.readOnly.standby
      ? 'read-only (on a standby)'
      : 'read-write';
  const verdict = h.primary
    ? `primary ${h.primary} takes writes`
    : 'NO server takes writes: the primary is unavailable';
  return `${verdict}. ${servers}. This worker: ${me.current} ${me.role}, ${ro}, readyz database ${me.ping}, pool ${me.pool.total - me.pool.idle} in use of ${me.pool.max} (${me.pool.waiting} waiting)`;
}

export function investigationSummary(i: Investigation): string {
  const slow = i.slowQueries.available
    ? i.slowQueries.top.length
      ? `slowest mean: ${i.slowQueries.top
          .slice(0, 3)
          .map((q) => `${q.meanMs} ms x${q.calls} ${q.query.slice(0, 80)}`)
          .join(' | ')}`
      : 'pg_stat_statements has no statements yet'
    : `slow queries not available (${i.slowQueries.reason})`;
  const locks = i.locks.length
    ? `${i.locks.length} blocked backend(s), e.g. pid ${i.locks[0]!.blockedPid} waits for ${i.locks[0]!.blockingPid}`
    : 'no lock contention';
  const pools = i.pools
    .map((p) => (p.error ? `${p.source}: ${p.error}` : `${p.source}: ${p.inUse}/${p.max} in use, ${p.waiting} waiting`))
    .join('; ');
  return `on ${i.server ?? 'no server'}: ${slow}; ${locks}; db_connections ${pools}`;
}

export function consistencySummary(r: ConsistencyReport): string {
  const o = r.orphaned;
  const e = r.expired;
  return (
    `orphaned challenges (no user): ${o.total} (${o.decoys} unknown-user decoys by design, ${o.delivered} sent to a user since removed, ${o.deliveredOpen} of them open); ` +
    `past expiry: ${e.pastExpiry} (${e.openPastExpiry} still open, ${e.sealedAfterEnd} ended with a sealed secret left)`
  );
}

export function needsCleanup(r: ConsistencyReport): boolean {
  return r.orphaned.deliveredOpen > 0 || r.expired.openPastExpiry > 0 || r.expired.sealedAfterEnd > 0;
}

export function cleanupSummary(c: Omit<CleanupResult, 'more'> & { more: boolean }): string {
  return (
    `${c.expiredMarked} expired challenge(s) ended (workflow gone), ${c.leftToWorkflows} left to their running workflow, ` +
    `${c.orphansRevoked} orphan(s) revoked${c.orphansSignalled ? ` (${c.orphansSignalled} through their workflow)` : ''}, ${c.secretsWiped} sealed secret(s) wiped` +
    (c.more ? '; more rows remain: run the runbook again' : '')
  );
}
