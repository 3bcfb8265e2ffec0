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

/** SQLSTATE 25006 read_only_sql_transaction: Postgres refused a write (our session flag, or a standby). */
function asReadOnly(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code === '25006' ? new DatabaseReadOnlyError() : err;
}

export interface PoolSettings {
  max: number;
  /**
   * Idle connections kept: the pool keeps at most this many connections once it has been
   * idle for `idleTrimMs`. Connections beyond it are closed after that idle time, not the moment
   * they are released: under sustained concurrency above the cap, closing on release opened and
   * closed a Postgres backend (a fork, authentication, a cold catalog cache) for most queries.
   */
  maxIdle?: number;
  /** how long a connection beyond maxIdle may stay idle before it is closed (default 10 s) */
  idleTrimMs?: number;
  connMaxLifetimeS: number;
  statementTimeoutMs: number;
}

const DEFAULT_IDLE_TRIM_MS = 10_000;

/**
 * Read-only degradation is enforced by Postgres, not by each caller: a read-only pool's
 * sessions start with default_transaction_read_only=on, so every modifying statement on any
 * code path (db.query, db.write, a transaction, a function with side effects, nextval) fails
 * with 25006 before it changes anything, and a transaction fails as a whole.
 */
function createPool(url: string, settings: PoolSettings, applicationName: string, readOnly: boolean): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.max,
    // pg-pool closes a connection idle for idleTimeoutMillis only while it holds more than
    // `min`: the idle cap, applied after an idle period (without a cap: every idle one, at 30 s)
    min: settings.maxIdle ?? 0,
    idleTimeoutMillis: settings.maxIdle === undefined ? 30_000 : (settings.idleTrimMs ?? DEFAULT_IDLE_TRIM_MS),
    maxLifetimeSeconds: settings.connMaxLifetimeS,
    statement_timeout: settings.statementTimeoutMs || undefined,
    connectionTimeoutMillis: 5000,
    application_name: applicationName,
    ...(readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
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
  /** read-only ordered by a responder or a runbook (the pool's sessions are read-only too) */
  private forcedReadOnly = false;
  /** the server we are on is a standby: it refuses writes itself */
  private serverReadOnly = false;
  private readonly draining = new Set<Promise<void>>();

  constructor(
    url: string,
    settings: PoolSettings,
    private readonly applicationName = 'warden',
  ) {
    this.url = url;
    this.settings = { ...settings };
    this.pool = createPool(url, this.settings, applicationName, false);
  }

  /** Writes are refused (fast, before a round trip) while true. */
  get readOnly(): boolean {
    return this.forcedReadOnly || this.serverReadOnly;
  }

  get readOnlyState(): { forced: boolean; standby: boolean } {
    return { forced: this.forcedReadOnly, standby: this.serverReadOnly };
  }

  /**
   * Turns forced read-only on or off. The pool is replaced by one whose sessions have the new
   * default; transactions already running on the old one finish there (they began before).
   */
  async setReadOnly(on: boolean): Promise<void> {
    if (on === this.forcedReadOnly) return;
    this.forcedReadOnly = on;
    await this.replacePool(this.url);
  }

  /** Set by the topology watcher when the server we use is (or stops being) a standby. */
  setStandby(standby: boolean): void {
    this.serverReadOnly = standby;
  }

  static fromConfig(url: string, config: Pick<Config, 'database'>, applicationName?: string): Database {
    return new Database(
      url,
      {
        max: config.database.poolMax,
        maxIdle: config.database.poolMaxIdle,
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

  /** Any statement; a write refused by Postgres (read-only session, standby) is a DatabaseReadOnlyError. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values).catch((err: unknown) => Promise.reject(asReadOnly(err)));
  }

  /** A write outside a transaction; refused at once while read-only. */
  write<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.readOnly) return Promise.reject(new DatabaseReadOnlyError());
    return this.query<R>(text, values);
  }

  /** `write` as a Queryable: for helpers that take one and write in a single statement. */
  get writer(): Queryable {
    return { query: (text, values) => this.write(text, values) };
  }

  /** Runs `fn` in one transaction: all of it lands or none of it does. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.readOnly) throw new DatabaseReadOnlyError();
    return this.inTransaction('BEGIN', fn);
  }

  /**
   * A read-write transaction that forced read-only does not stop: the failover runbook's
   * consistency cleanup runs while the application is still held read-only. A standby still
   * refuses it.
   */
  maintenance<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.inTransaction('BEGIN READ WRITE', fn);
  }

  private async inTransaction<T>(begin: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // a checked-out client has no pool listener: a server dying between two statements of the
    // transaction would otherwise be an uncaught 'error' event that kills the process; the next
    // statement fails anyway, and the client is discarded on release
    const lost = () => {};
    client.on('error', lost);
    try {
      await client.query(begin);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw asReadOnly(err);
    } finally {
      client.off('error', lost);
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

  /**
   * Changes the pool ceiling (and the idle cap) in place; pg-pool reads `options.max` on every
   * checkout and `options.min` whenever an idle connection's timer fires.
   */
  resize(max: number, maxIdle = this.settings.maxIdle): void {
    this.settings.max = max;
    this.settings.maxIdle = maxIdle;
    const options = (this.pool as unknown as { options: { max: number; min: number } }).options;
    options.max = max;
    options.min = maxIdle ?? 0;
  }

  /** Points the process at another server (a promoted replica); the old pool drains. */
  async switchTo(url: string): Promise<void> {
    await this.replacePool(url);
  }

  /**
   * New queries go to the new pool at once. The old one drains in the background: a dead
   * server's clients fail fast, a live one's finish their transaction, and no caller waits.
   */
  private async replacePool(url: string): Promise<void> {
    const old = this.pool;
    this.pool = createPool(url, this.settings, this.applicationName, this.forcedReadOnly);
    this.url = url;
    const drained = old.end().catch(() => {});
    this.draining.add(drained);
    void drained.finally(() => this.draining.delete(drained));
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
    await Promise.all(this.draining);
  }
}
