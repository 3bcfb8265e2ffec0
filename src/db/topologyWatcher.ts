/**
 * Keeps one process's Database on the right server, in the right mode, with the right pool.
 *
 * Every process (API and worker alike) runs one; nothing is told to a process directly, so
 * a process that was busy, restarting or partitioned catches up on its next tick:
 *
 * 1. Desired state: the control plane's memo (forced read-only, temporary pool size, pinned
 *    primary), read from Temporal, which is up while Postgres is not. Unreadable: the last
 *    state seen stays in force.
 * 2. Role of the current server on a long-lived probe connection: `pg_is_in_recovery()`.
 *    Down, a standby, or not the pinned endpoint: every candidate is probed and the process
 *    moves to the best one (src/db/topology.ts chooseEndpoint). A standby is used for reads
 *    in read-only degradation until a primary appears, so reads keep working in an outage.
 *
 * The failover runbook and `POST /admin/api/v1/database/switch` change the control plane and
 * call `refresh()` in their own process; every other process follows within one interval.
 */
import pg from 'pg';
import type { Logger } from '../telemetry/logger';
import type { DatabaseControlState, PoolSize } from '../shared/database';
import type { Database } from './database';
import {
  chooseEndpoint,
  endpointId,
  probeEndpoint,
  roleOf,
  type Endpoint,
  type EndpointProbe,
  type EndpointRole,
} from './topology';

export interface TopologySnapshot {
  current: string;
  role: EndpointRole | 'unknown';
  readOnly: { forced: boolean; standby: boolean };
  pool: { total: number; idle: number; waiting: number; max: number; maxIdle: number };
  control: DatabaseControlState | null;
  controlError?: string;
  /** the last probe of every candidate (taken when the current server was not a fine primary) */
  candidates: EndpointProbe[];
  checkedAt?: string;
  switches: number;
  lastSwitch?: { at: string; from: string; to: string; role: 'primary' | 'standby' };
}

export interface TopologyWatcherOptions {
  endpoints: Endpoint[];
  intervalMs: number;
  defaults: PoolSize;
  readControl: () => Promise<DatabaseControlState | null>;
  logger: Logger;
  /** names the probe connection `<applicationName>-topology`, so a server shows which processes use it */
  applicationName: string;
  onSwitch?: (from: string, to: string) => void;
}

export class TopologyWatcher {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private probeClient?: { id: string; client: pg.Client };
  private control: DatabaseControlState | null = null;
  private controlError?: string;
  private role: EndpointRole | 'unknown' = 'unknown';
  private candidates: EndpointProbe[] = [];
  private checkedAt?: string;
  private switches = 0;
  private lastSwitch?: TopologySnapshot['lastSwitch'];
  private readonly probeTimeoutMs: number;

  constructor(
    private readonly db: Database,
    private readonly options: TopologyWatcherOptions,
  ) {
    this.probeTimeoutMs = Math.max(500, Math.min(2000, options.intervalMs));
  }

  get endpoints(): readonly Endpoint[] {
    return this.options.endpoints;
  }

  endpoint(id: string): Endpoint | undefined {
    return this.options.endpoints.find((e) => e.id === id);
  }

  start(): void {
    this.stopped = false;
    const loop = () => {
      if (this.stopped) return;
      void this.refresh().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.options.intervalMs).unref();
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
    await this.closeProbe();
  }

  /** One check now (after the one in flight, if any); resolves with the resulting state. */
  async refresh(): Promise<TopologySnapshot> {
    const previous = this.running ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.tick());
    this.running = next;
    await next.catch((err: unknown) =>
      this.options.logger.error(
        { err: { name: (err as Error).name, message: (err as Error).message } },
        'database topology check failed',
      ),
    );
    return this.snapshot();
  }

  snapshot(): TopologySnapshot {
    const stats = this.db.stats();
    return {
      current: endpointId(this.db.connectionString),
      role: this.role,
      readOnly: this.db.readOnlyState,
      pool: { ...stats, maxIdle: this.db.poolSettings.maxIdle ?? stats.max },
      control: this.control,
      ...(this.controlError ? { controlError: this.controlError } : {}),
      candidates: this.candidates,
      checkedAt: this.checkedAt,
      switches: this.switches,
      lastSwitch: this.lastSwitch,
    };
  }

  private async tick(): Promise<void> {
    const { logger } = this.options;
    try {
      this.control = await this.options.readControl();
      this.controlError = undefined;
    } catch (err) {
      // Temporal unreachable: keep applying the last state we saw
      this.controlError = err instanceof Error ? err.message.slice(0, 200) : String(err);
    }
    const control = this.control;

    const pool = control?.pool ?? this.options.defaults;
    const have = this.db.poolSettings;
    if (have.max !== pool.max || have.maxIdle !== pool.maxIdle) {
      this.db.resize(pool.max, pool.maxIdle);
      logger.warn({ max: pool.max, maxIdle: pool.maxIdle, temporary: control?.pool != null }, 'database pool resized');
    }
    const forced = control?.readOnly.on ?? false;
    if (forced !== this.db.readOnlyState.forced) {
      await this.db.setReadOnly(forced);
      logger.warn(
        { readOnly: forced, reason: control?.readOnly.reason },
        forced ? 'database read-only degradation on' : 'database read-only degradation off',
      );
    }

    const current = endpointId(this.db.connectionString);
    const pinned = control?.primary ?? null;
    const here = await this.probeCurrent(current);
    this.checkedAt = new Date().toISOString();
    if (here.role === 'primary' && (!pinned || pinned === current)) {
      this.settle(current, 'primary');
      return;
    }
    const probes = await Promise.all(
      this.options.endpoints.map((e) =>
        e.id === current ? Promise.resolve(here) : probeEndpoint(e, this.probeTimeoutMs),
      ),
    );
    this.candidates = probes;
    if (pinned && !this.endpoint(pinned))
      logger.error(
        { pinned, candidates: probes.map((p) => p.id) },
        "pinned database endpoint is not one of this process's candidates",
      );
    const choice = chooseEndpoint(probes, { current, pinned });
    if (!choice) {
      // nothing usable: queries fail and the API answers 503 unavailable until something is
      this.role = here.role;
      this.db.setStandby(false);
      return;
    }
    if (choice.id !== current) {
      const target = this.endpoint(choice.id)!;
      await this.db.switchTo(target.url);
      await this.closeProbe();
      this.switches += 1;
      this.lastSwitch = { at: new Date().toISOString(), from: current, to: choice.id, role: choice.role };
      this.options.onSwitch?.(current, choice.id);
      logger.warn({ from: current, to: choice.id, role: choice.role, pinned }, 'database endpoint switched');
    }
    this.settle(choice.id, choice.role);
  }

  private settle(id: string, role: 'primary' | 'standby'): void {
    if (this.role !== role) this.options.logger.info({ endpoint: id, role }, 'database role');
    this.role = role;
    this.db.setStandby(role === 'standby');
  }

  /** The current server's role on one long-lived connection (no pool checkout, no new connection per tick). */
  private async probeCurrent(id: string): Promise<EndpointProbe> {
    try {
      if (this.probeClient?.id !== id) {
        await this.closeProbe();
        const client = new pg.Client({
          connectionString: this.db.connectionString,
          connectionTimeoutMillis: this.probeTimeoutMs,
          query_timeout: this.probeTimeoutMs,
          application_name: `${this.options.applicationName}-topology`,
        });
        client.on('error', () => {});
        this.probeClient = { id, client };
        await client.connect();
      }
      return await roleOf(this.probeClient!.client, id);
    } catch (err) {
      await this.closeProbe();
      const code = (err as { code?: unknown }).code;
      return {
        id,
        role: 'unreachable',
        error: `${typeof code === 'string' ? `${code} ` : ''}${err instanceof Error ? err.message : String(err)}`.slice(
          0,
          200,
        ),
      };
    }
  }

  private async closeProbe(): Promise<void> {
    const probe = this.probeClient;
    this.probeClient = undefined;
    await probe?.client.end().catch(() => {});
  }
}
