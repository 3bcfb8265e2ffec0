/**
 * The database's state and the responder's levers (the database-failover runbook's): read-only degradation,
 * the temporary pool size, and which server is primary. Each lever changes the control plane
 * (a Temporal workflow, reachable while Postgres is not), which every API and worker process
 * applies within WARDEN_DB_WATCH_INTERVAL_MS; the process that took the request applies it at
 * once. Nothing here writes to Postgres, so it works in the middle of a database outage.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { changeDatabaseControl, InvalidControlChangeError, readDatabaseControl } from '../../db/failoverControl';
import { probeAll } from '../../db/topology';
import type { TopologySnapshot } from '../../db/topologyWatcher';
import {
  ENDPOINT_PATTERN,
  POOL_LIMITS,
  type DatabaseControlChange,
  type DatabaseControlState,
} from '../../shared/database';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const Nullable = <T extends ReturnType<typeof Type.Object>>(t: T) => Type.Union([t, Type.Null()]);
const Pool = Type.Object({ max: Type.Integer(), max_idle: Type.Integer() });
const Control = Type.Object({
  read_only: Type.Object({
    on: Type.Boolean(),
    reason: Type.Optional(Type.String()),
    by: Type.Optional(Type.String()),
    since: Type.Optional(Type.String()),
  }),
  pool: Nullable(Pool),
  primary: Type.Union([Type.String(), Type.Null()]),
  generation: Type.Integer(),
  updated_at: Type.Optional(Type.String()),
  updated_by: Type.Optional(Type.String()),
});
const Probe = Type.Object({
  endpoint: Type.String(),
  role: Type.String(),
  timeline: Type.Optional(Type.Integer()),
  replay_lsn: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
});
const StateResponse = Type.Object({
  this_process: Type.Object({
    endpoint: Type.String(),
    role: Type.String(),
    read_only: Type.Boolean(),
    read_only_reason: Type.Union([Type.Literal('forced'), Type.Literal('standby'), Type.Null()]),
    pool: Type.Object({
      max: Type.Integer(),
      max_idle: Type.Integer(),
      total: Type.Integer(),
      idle: Type.Integer(),
      waiting: Type.Integer(),
    }),
    switches: Type.Integer(),
    last_switch: Type.Optional(
      Type.Object({ at: Type.String(), from: Type.String(), to: Type.String(), role: Type.String() }),
    ),
    control_error: Type.Optional(Type.String()),
  }),
  control: Nullable(Control),
  endpoints: Type.Array(Probe),
});

const ReadOnlyBody = Type.Object({
  read_only: Type.Boolean(),
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
});
const PoolBody = Type.Object({
  max: Type.Optional(Type.Integer({ minimum: 1, maximum: POOL_LIMITS.max })),
  max_idle: Type.Optional(Type.Integer({ minimum: 0, maximum: POOL_LIMITS.max })),
  /** true: back to the configured defaults (WARDEN_DB_POOL_MAX / WARDEN_DB_POOL_MAX_IDLE) */
  reset: Type.Optional(Type.Boolean()),
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
});
const SwitchBody = Type.Object({
  /** host:port of a configured endpoint; omitted: the writable endpoint with the highest timeline; null: unpin */
  endpoint: Type.Optional(Type.Union([Type.String({ pattern: ENDPOINT_PATTERN.source, maxLength: 300 }), Type.Null()])),
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
});

function controlJson(c: DatabaseControlState | null) {
  if (!c) return null;
  return {
    read_only: c.readOnly,
    pool: c.pool ? { max: c.pool.max, max_idle: c.pool.maxIdle } : null,
    primary: c.primary,
    generation: c.generation,
    updated_at: c.updatedAt,
    updated_by: c.updatedBy,
  };
}

function processJson(s: TopologySnapshot) {
  const reason: 'forced' | 'standby' | null = s.readOnly.forced ? 'forced' : s.readOnly.standby ? 'standby' : null;
  return {
    endpoint: s.current,
    role: s.role,
    read_only: reason !== null,
    read_only_reason: reason,
    pool: {
      max: s.pool.max,
      max_idle: s.pool.maxIdle,
      total: s.pool.total,
      idle: s.pool.idle,
      waiting: s.pool.waiting,
    },
    switches: s.switches,
    ...(s.lastSwitch ? { last_switch: s.lastSwitch } : {}),
    ...(s.controlError ? { control_error: s.controlError } : {}),
  };
}

const database: FastifyPluginAsyncTypebox = async (app) => {
  const { topology, temporal, config, logger } = app.warden;
  const control = { client: temporal.client, taskQueue: config.temporal.taskQueue };
  const log = logger.child({ component: 'db-admin' });

  const state = async () => {
    const [probes, snapshot, desired] = await Promise.all([
      probeAll(topology.endpoints, 2000),
      Promise.resolve(topology.snapshot()),
      readDatabaseControl(control),
    ]);
    return {
      this_process: processJson(snapshot),
      control: controlJson(desired),
      endpoints: probes.map((p) => ({
        endpoint: p.id,
        role: p.role,
        ...(p.timeline !== undefined ? { timeline: p.timeline } : {}),
        ...(p.replayLsn ? { replay_lsn: p.replayLsn } : {}),
        ...(p.error ? { error: p.error } : {}),
      })),
    };
  };

  const apply = async (change: DatabaseControlChange) => {
    try {
      await changeDatabaseControl(control, change);
    } catch (err) {
      if (err instanceof InvalidControlChangeError) throw new ApiError(400, 'invalid_request', err.message);
      throw err;
    }
    log.warn({ change: { ...change } }, 'database control changed');
    await topology.refresh();
    return state();
  };

  const responses = { 200: StateResponse, 400: ErrorBody, 409: ErrorBody, 503: ErrorBody };

  app.get('/database', { schema: { response: { 200: StateResponse, 503: ErrorBody } } }, async () => state());

  app.put('/database/read-only', { schema: { body: ReadOnlyBody, response: responses } }, async (request) => {
    const { read_only: on, reason } = request.body;
    return apply({
      by: operatorOf(request).name,
      readOnly: on,
      reason: reason ?? (on ? 'read-only degradation by a responder' : 'writes restored by a responder'),
    });
  });

  app.put('/database/pool', { schema: { body: PoolBody, response: responses } }, async (request) => {
    const { max, max_idle: maxIdle, reset, reason } = request.body;
    if (reset) {
      if (max !== undefined || maxIdle !== undefined)
        throw new ApiError(400, 'invalid_request', 'give either `reset` or `max`/`max_idle`, not both');
      return apply({ by: operatorOf(request).name, pool: null, reason });
    }
    if (max === undefined) throw new ApiError(400, 'invalid_request', '`max` is required (or `reset: true`)');
    const idle = maxIdle ?? Math.min(config.database.poolMaxIdle, max);
    if (idle > max) throw new ApiError(400, 'invalid_request', '`max_idle` cannot exceed `max`');
    return apply({ by: operatorOf(request).name, pool: { max, maxIdle: idle }, reason });
  });

  app.post('/database/switch', { schema: { body: SwitchBody, response: responses } }, async (request) => {
    const { endpoint, reason } = request.body;
    if (endpoint === null)
      return apply({ by: operatorOf(request).name, primary: null, reason: reason ?? 'unpinned by a responder' });
    const probes = await probeAll(topology.endpoints, 2000);
    let target: string;
    if (endpoint === undefined) {
      const primaries = probes
        .filter((p) => p.role === 'primary')
        .sort((a, b) => (b.timeline ?? 0) - (a.timeline ?? 0));
      if (!primaries.length)
        throw new ApiError(
          409,
          'no_primary',
          'no configured endpoint takes writes; promote a replica first (the db-failover runbook)',
        );
      target = primaries[0]!.id;
    } else {
      const probe = probes.find((p) => p.id === endpoint);
      if (!probe)
        throw new ApiError(
          400,
          'invalid_request',
          `${endpoint} is not a configured endpoint; candidates: ${probes.map((p) => p.id).join(', ')}`,
        );
      if (probe.role !== 'primary')
        throw new ApiError(409, 'not_primary', `${endpoint} is ${probe.role}, not a primary: promote it first`);
      target = endpoint;
    }
    return apply({
      by: operatorOf(request).name,
      primary: target,
      reason: reason ?? `switched by a responder to ${target}`,
    });
  });
};

export default database;
