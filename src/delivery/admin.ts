/**
 * Responder actions on routing, as plain functions: the admin API calls them and the
 * provider-outage runbook calls them through activities (src/activities/delivery.ts). Each
 * change is one transaction (route row, channel setting, circuit, audit row), then a log line
 * and this process's caches dropped; other processes follow within 5 s.
 */
import { insertAudit, logAudit } from '../auth/audit';
import type { Channel } from '../providers/types';
import type { Runtime } from '../runtime';
import { DeliveryErrorType } from '../shared/delivery';
import { listCircuits, resetCircuit, type Circuit } from './circuit';
import { announceCircuit, auditCircuit, DeliveryAuditEvent } from './events';
import {
  applyChanges,
  channelSettingKey,
  readRoutes,
  routeView,
  validateRoute,
  type Route,
  type RouteChanges,
} from './routes';
import { invalidateDeliveryCaches } from './services';

export type DeliveryRuntime = Pick<Runtime, 'db' | 'logger' | 'metrics' | 'config' | 'settings' | 'routes'>;

export interface ActorContext {
  /** `admin-api`, or the calling workflow: `workflow:<id>` */
  actor: string;
  reason?: string;
  incidentId?: string;
}

export class NoBackupError extends Error {
  override name = DeliveryErrorType.noBackup;
}

type Snapshot = Omit<ReturnType<typeof routeView>, 'updated_at' | 'updated_by' | 'change_reason' | 'incident_id'>;

function snapshot(route: Route): Snapshot {
  const { updated_at: _at, updated_by: _by, change_reason: _why, incident_id: _inc, ...rest } = routeView(route);
  return rest;
}

export async function updateRoute(
  runtime: DeliveryRuntime,
  channel: Channel,
  changes: RouteChanges,
  ctx: ActorContext,
  options: { resetPrimary?: boolean } = {},
): Promise<Route> {
  const result = await runtime.db.transaction(async (tx) => {
    const current = (await readRoutes(tx, true))[channel];
    const next = applyChanges(current, changes);
    validateRoute(next);
    const { rows } = await tx.query<{ updated_at: Date }>(
      `INSERT INTO delivery_routes AS r (channel, primary_provider, backup_provider, failover_threshold, enabled, mode,
                                          circuit_cooldown_seconds, updated_at, updated_by, change_reason, incident_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9, $10)
       ON CONFLICT (channel) DO UPDATE SET primary_provider = EXCLUDED.primary_provider, backup_provider = EXCLUDED.backup_provider,
         failover_threshold = EXCLUDED.failover_threshold, enabled = EXCLUDED.enabled, mode = EXCLUDED.mode,
         circuit_cooldown_seconds = EXCLUDED.circuit_cooldown_seconds, updated_at = now(), updated_by = EXCLUDED.updated_by,
         change_reason = EXCLUDED.change_reason, incident_id = EXCLUDED.incident_id
       RETURNING updated_at`,
      [
        channel,
        next.primary,
        next.backup,
        next.failoverThreshold,
        next.enabled,
        next.mode,
        next.circuitCooldownSeconds,
        ctx.actor,
        ctx.reason ?? null,
        ctx.incidentId ?? null,
      ],
    );
    if (changes.enabled !== undefined) {
      // the channel switch (auth.sms_otp.enabled / auth.magic_link.enabled) moves with the route
      await tx.query(
        `INSERT INTO runtime_settings (key, value, updated_at, updated_by) VALUES ($1, $2::jsonb, now(), $3)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by`,
        [channelSettingKey(channel), JSON.stringify(next.enabled), ctx.actor],
      );
    }
    let circuit;
    if (options.resetPrimary) {
      const previous = await resetCircuit(tx, next.primary);
      if (previous && previous !== 'closed') {
        const change = {
          provider: next.primary,
          channel,
          transition: 'closed' as const,
          consecutiveFailures: 0,
          fallback: next.backup,
          actor: ctx.actor,
          incidentId: ctx.incidentId,
        };
        circuit = { change, audit: await auditCircuit(tx, change) };
      }
    }
    const audit = await insertAudit(tx, {
      type: DeliveryAuditEvent.routeChanged,
      outcome: 'updated',
      reason: ctx.reason,
      incidentId: ctx.incidentId,
      details: { channel, previous: snapshot(current), value: snapshot(next), actor: ctx.actor },
    });
    const updated: Route = {
      ...next,
      updatedAt: rows[0]!.updated_at,
      updatedBy: ctx.actor,
      changeReason: ctx.reason ?? null,
      incidentId: ctx.incidentId ?? null,
    };
    return { current, updated, audit, circuit };
  });
  invalidateDeliveryCaches(runtime);
  logAudit(runtime.logger.child({ component: 'audit' }), result.audit);
  if (result.circuit) announceCircuit(runtime, result.circuit.change, result.circuit.audit);
  const { current, updated } = result;
  const log = runtime.logger.child({ component: 'delivery' });
  if (current.mode !== 'backup' && updated.mode === 'backup' && updated.backup) {
    runtime.metrics.deliveryFailovers.inc({ channel, from: updated.primary, to: updated.backup, scope: 'manual' });
    log.warn(
      { channel, from: updated.primary, to: updated.backup, actor: ctx.actor },
      `${channel} route switched to its backup ${updated.backup}`,
    );
  }
  if (current.enabled !== updated.enabled) {
    log.warn(
      { channel, enabled: updated.enabled, actor: ctx.actor },
      `${channel} channel ${updated.enabled ? 'enabled' : 'disabled'}`,
    );
  }
  return updated;
}

/**
 * The outage runbook's switch: `backup` sends everything through the backup (the breaker
 * does not undo it); `primary` returns to automatic routing with the primary's circuit closed.
 */
export async function switchRoute(
  runtime: DeliveryRuntime,
  channel: Channel,
  to: 'backup' | 'primary',
  ctx: ActorContext,
): Promise<Route> {
  if (to === 'backup') {
    const route = (await readRoutes(runtime.db))[channel];
    if (!route.backup) throw new NoBackupError(`the ${channel} route has no backup provider`);
    return updateRoute(runtime, channel, { mode: 'backup' }, ctx);
  }
  return updateRoute(runtime, channel, { mode: 'auto' }, ctx, { resetPrimary: true });
}

/** Graceful degradation: a channel switched off (`auth.sms_otp.enabled: false`). */
export async function setChannelEnabled(
  runtime: DeliveryRuntime,
  channel: Channel,
  enabled: boolean,
  ctx: ActorContext,
): Promise<Route> {
  return updateRoute(runtime, channel, { enabled }, ctx);
}

export interface RouteStatus extends ReturnType<typeof routeView> {
  circuits: Array<{
    provider: string;
    state: string;
    consecutive_failures: number;
    opened_at: string | null;
    probe_after: string | null;
    throttled_until: string | null;
  }>;
}

function circuitView(c: Circuit, cooldownSeconds: number) {
  const probeAfter = c.state === 'open' && c.openedAt ? new Date(c.openedAt.getTime() + cooldownSeconds * 1000) : null;
  return {
    provider: c.provider,
    state: c.state,
    consecutive_failures: c.consecutiveFailures,
    opened_at: c.openedAt?.toISOString() ?? null,
    probe_after: probeAfter?.toISOString() ?? null,
    throttled_until: c.throttledUntil?.toISOString() ?? null,
  };
}

/** Routes with the circuits of their providers, read fresh (what a responder acts on). */
export async function routeStatus(runtime: Pick<Runtime, 'db'>): Promise<Record<Channel, RouteStatus>> {
  const [routes, circuits] = await Promise.all([readRoutes(runtime.db), listCircuits(runtime.db)]);
  const view = (route: Route): RouteStatus => ({
    ...routeView(route),
    circuits: circuits
      .filter((c) => c.provider === route.primary || c.provider === route.backup)
      .map((c) => circuitView(c, route.circuitCooldownSeconds)),
  });
  return { sms: view(routes.sms), email: view(routes.email) };
}
