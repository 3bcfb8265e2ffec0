import pg from 'pg';
import type { Config } from '../config';

/** Anything that runs a parameterised query: the Database, a pool client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export class DatabaseReadOnlyError extends Error {
  override name = 'DatabaseReadOnlyError';
  constructor() {
    super('the database is in read-only degradation: writes are refused until it recovers');
  }
}

export interface PoolSettings {
  max: number;
  connMaxLifetimeS: number;
  statementTimeoutMs: number;
}

function createPool(url: string, settings: PoolSettings, applicationName: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.max,
    maxLifetimeSeconds: settings.connMaxLifetimeS,
    statement_timeout: settings.statementTimeoutMs || undefined,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    application_name: applicationName,
  });
  // an idle client losing its server must not crash the process; the next query reconnects
  pool.on('error', () => {});
  return pool;
}

/**
 * The process's handle on Postgres. It owns the current pool and can be re-pointed at a new
 * primary, resized, or put in read-only degradation at runtime (the database-failover runbook
 * does all three) without callers holding a stale pool.
 */
export class Database {
  private pool: pg.Pool;
  private url: string;
  private settings: PoolSettings;
  readOnly = false;

  constructor(url: string, settings: PoolSettings, private readonly applicationName = 'warden') {
    this.url = url;
    this.settings = { ...settings };
    this.pool = createPool(url, this.settings, applicationName);
  }

  static fromConfig(url: string, config: Pick<Config, 'database'>, applicationName?: string): Database {
    return new Database(
      url,
      {
        max: config.database.poolMax,
        connMaxLifetimeS: config.database.connMaxLifetimeS,
        statementTimeoutMs: config.database.statementTimeoutMs,
      },
      applicationName,
    );
  }

  get connectionString(): string {
    return this.url;
  }

  get poolSettings(): Readonly<PoolSettings> {
    return this.settings;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values);
  }

  /** A write outside a transaction; refused while read-only. */
  write<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.readOnly) return Promise.reject(new DatabaseReadOnlyError());
    return this.pool.query<R>(text, values);
  }

  /** Runs `fn` in one transaction: all of it lands or none of it does. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.readOnly) throw new DatabaseReadOnlyError();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  stats(): { total: number; idle: number; waiting: number; max: number } {
    return {
      total: this.pool.totalCount,
      idle: this.pool.idleCount,
      waiting: this.pool.waitingCount,
      max: this.settings.max,
    };
  }

  /** Changes the pool ceiling in place; pg-pool reads `options.max` on every checkout. */
  resize(max: number): void {
    this.settings.max = max;
    (this.pool as unknown as { options: { max: number } }).options.max = max;
  }

  /** Points the process at another server (a promoted replica); the old pool drains. */
  async switchTo(url: string): Promise<void> {
    const old = this.pool;
    this.pool = createPool(url, this.settings, this.applicationName);
    this.url = url;
    await old.end().catch(() => {});
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
