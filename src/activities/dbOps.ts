import type { Database } from '../db/database';

export interface DatabaseHealth {
  ok: boolean;
  latencyMs: number;
  connections: number | null;
  pool: { total: number; idle: number; waiting: number; max: number };
  readOnly: boolean;
}

/** Database operations activities (health now; the failover runbook adds to these). */
export function createDbOpsActivities({ db }: { db: Database }) {
  return {
    /** The runbook's health check: SELECT 1, connections to this database, our pool's state. */
    async checkDatabaseHealth(): Promise<DatabaseHealth> {
      const started = performance.now();
      const result = await db.query<{ connections: string }>(
        'SELECT count(*) AS connections FROM pg_stat_activity WHERE datname = current_database()',
      );
      return {
        ok: true,
        latencyMs: Math.round(performance.now() - started),
        connections: Number(result.rows[0]?.connections ?? 0),
        pool: db.stats(),
        readOnly: db.readOnly,
      };
    },
  };
}
