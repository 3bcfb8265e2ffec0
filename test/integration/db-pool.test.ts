/**
 * The idle cap (5 connections) against sustained concurrency above it. Closing every released
 * connection beyond the cap made Postgres fork, authenticate and tear down a backend for most
 * queries under load (a quarter of a core in the benchmark); the cap now applies to
 * connections that stay idle, so a busy pool keeps its connections and a quiet one shrinks.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../src/db/database';
import { createTestDatabase } from '../helpers/harness';

describe('database pool idle cap', () => {
  let dbh: Awaited<ReturnType<typeof createTestDatabase>>;
  let admin: pg.Client;
  const app = `warden-pool-test-${process.pid}`;

  beforeAll(async () => {
    dbh = await createTestDatabase();
    admin = new pg.Client({ connectionString: dbh.url });
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.end();
    await dbh?.drop();
  });

  /** Backends of this test's pool that Postgres has ever started (pids seen) and has now. */
  async function backends(): Promise<number[]> {
    const { rows } = await admin.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [app],
    );
    return rows.map((r) => r.pid);
  }

  it('keeps its connections while busy above the cap and trims back to the cap once idle', async () => {
    const db = new Database(
      dbh.url,
      { max: 12, maxIdle: 2, idleTrimMs: 400, connMaxLifetimeS: 300, statementTimeoutMs: 5000 },
      app,
    );
    try {
      const seen = new Set<number>();
      // ten rounds of ten concurrent queries: well above the idle cap of 2
      for (let round = 0; round < 10; round++) {
        const pids = await Promise.all(
          Array.from({ length: 10 }, () =>
            db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.02)').then((r) => r.rows[0]!.pid),
          ),
        );
        for (const pid of pids) seen.add(pid);
      }
      // one backend per connection ever opened: at most the 10 in flight at once, not ~100
      expect(seen.size).toBeLessThanOrEqual(10);
      expect(db.stats().total).toBeGreaterThan(2);

      // idle for longer than the trim time: back down to the cap, and those two still serve
      await sleep(1500);
      expect(db.stats().total).toBe(2);
      expect((await backends()).length).toBe(2);
      const after = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(seen.has(after.rows[0]!.pid)).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('applies a resized cap to the connections it already holds', async () => {
    const db = new Database(
      dbh.url,
      { max: 8, maxIdle: 1, idleTrimMs: 300, connMaxLifetimeS: 300, statementTimeoutMs: 5000 },
      app,
    );
    try {
      db.resize(8, 4);
      await Promise.all(Array.from({ length: 8 }, () => db.query('SELECT pg_sleep(0.05)')));
      await sleep(1200);
      expect(db.stats().total).toBe(4);
    } finally {
      await db.close();
    }
  });
});
