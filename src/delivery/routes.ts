/**
 * Routing per channel, kept in `delivery_routes` and read through a per-process cache that is
 * at most `maxStalenessMs` old: a change made by the admin API or a runbook is in force in
 * every worker within 5 s (in the process that made it, at once).
 */
import type { Queryable } from '../db/database';
import type { Channel, ProviderName } from '../providers/types';
import type { AuthMethod } from '../shared/auth';
import { CHANNEL_PROVIDERS } from '../shared/delivery';

export type RouteMode = 'auto' | 'backup';

export interface Route {
  channel: Channel;
  primary: ProviderName;
  backup: ProviderName | null;
  failoverThreshold: number;
  enabled: boolean;
  mode: RouteMode;
  circuitCooldownSeconds: number;
  updatedAt: Date;
  updatedBy: string;
  changeReason: string | null;
  incidentId: string | null;
}

/** The default routes (docs/incident-response.md), used when a row is missing. */
export const DEFAULT_ROUTES: Record<Channel, Route> = {
  sms: defaults('sms', 'twilio', 'plivo', 5),
  email: defaults('email', 'sendgrid', 'ses', 3),
};

function defaults(channel: Channel, primary: ProviderName, backup: ProviderName, failoverThreshold: number): Route {
  return {
    channel,
    primary,
    backup,
    failoverThreshold,
    enabled: true,
    mode: 'auto',
    circuitCooldownSeconds: 30,
    updatedAt: new Date(0),
    updatedBy: 'default',
    changeReason: null,
    incidentId: null,
  };
}

export const METHOD_CHANNEL: Record<AuthMethod, Channel> = { sms_otp: 'sms', magic_link: 'email' };
export const CHANNEL_METHOD: Record<Channel, AuthMethod> = { sms: 'sms_otp', email: 'magic_link' };
/** The graceful-degradation switches, one per auth method. */
export const channelSettingKey = (channel: Channel) => `auth.${CHANNEL_METHOD[channel]}.enabled`;

interface RouteRow {
  channel: Channel;
  primary_provider: ProviderName;
  backup_provider: ProviderName | null;
  failover_threshold: number;
  enabled: boolean;
  mode: RouteMode;
  circuit_cooldown_seconds: number;
  updated_at: Date;
  updated_by: string;
  change_reason: string | null;
  incident_id: string | null;
}

export const ROUTE_COLUMNS =
  'channel, primary_provider, backup_provider, failover_threshold, enabled, mode, circuit_cooldown_seconds, updated_at, updated_by, change_reason, incident_id';

export function toRoute(r: RouteRow): Route {
  return {
    channel: r.channel,
    primary: r.primary_provider,
    backup: r.backup_provider,
    failoverThreshold: r.failover_threshold,
    enabled: r.enabled,
    mode: r.mode,
    circuitCooldownSeconds: r.circuit_cooldown_seconds,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
    changeReason: r.change_reason,
    incidentId: r.incident_id,
  };
}

export async function readRoutes(q: Queryable, lock = false): Promise<Record<Channel, Route>> {
  const { rows } = await q.query<RouteRow>(`SELECT ${ROUTE_COLUMNS} FROM delivery_routes${lock ? ' FOR UPDATE' : ''}`);
  const found = new Map(rows.map((r) => [r.channel, toRoute(r)]));
  return { sms: found.get('sms') ?? DEFAULT_ROUTES.sms, email: found.get('email') ?? DEFAULT_ROUTES.email };
}

export class RouteCache {
  private routes: Record<Channel, Route> | undefined;
  private loadedAt = -Infinity;
  private loading: Promise<Record<Channel, Route>> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly maxStalenessMs = 5000,
  ) {}

  async get(channel: Channel): Promise<Route> {
    return (await this.all())[channel];
  }

  async all(): Promise<Record<Channel, Route>> {
    if (this.routes && performance.now() - this.loadedAt <= this.maxStalenessMs) return this.routes;
    this.loading ??= readRoutes(this.db)
      .then((routes) => {
        this.routes = routes;
        this.loadedAt = performance.now();
        return routes;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  invalidate(): void {
    this.loadedAt = -Infinity;
  }
}

/** Everything a route update may name; each is optional (partial updates). */
export interface RouteChanges {
  primary?: ProviderName;
  backup?: ProviderName | null;
  failoverThreshold?: number;
  enabled?: boolean;
  mode?: RouteMode;
  circuitCooldownSeconds?: number;
}

export class RouteValidationError extends Error {
  override name = 'RouteValidationError';
}

/** The rules a route must satisfy; the same ones are CHECK constraints in migration 0020. */
export function validateRoute(
  route: Pick<Route, 'channel' | 'primary' | 'backup' | 'failoverThreshold' | 'mode' | 'circuitCooldownSeconds'>,
): void {
  const known = CHANNEL_PROVIDERS[route.channel];
  if (!known.includes(route.primary))
    throw new RouteValidationError(`primary_provider must be one of ${known.join(', ')} for ${route.channel}`);
  if (route.backup !== null && !known.includes(route.backup))
    throw new RouteValidationError(`backup_provider must be one of ${known.join(', ')} (or null) for ${route.channel}`);
  if (route.backup === route.primary)
    throw new RouteValidationError('backup_provider must differ from primary_provider');
  if (!Number.isInteger(route.failoverThreshold) || route.failoverThreshold < 1 || route.failoverThreshold > 1000) {
    throw new RouteValidationError('failover_threshold must be an integer from 1 to 1000');
  }
  if (
    !Number.isInteger(route.circuitCooldownSeconds) ||
    route.circuitCooldownSeconds < 1 ||
    route.circuitCooldownSeconds > 86_400
  ) {
    throw new RouteValidationError('circuit_cooldown_seconds must be an integer from 1 to 86400');
  }
  if (route.mode === 'backup' && route.backup === null)
    throw new RouteValidationError('mode backup needs a backup_provider');
}

export function applyChanges(current: Route, changes: RouteChanges): Route {
  return {
    ...current,
    ...(changes.primary !== undefined ? { primary: changes.primary } : {}),
    ...(changes.backup !== undefined ? { backup: changes.backup } : {}),
    ...(changes.failoverThreshold !== undefined ? { failoverThreshold: changes.failoverThreshold } : {}),
    ...(changes.enabled !== undefined ? { enabled: changes.enabled } : {}),
    ...(changes.mode !== undefined ? { mode: changes.mode } : {}),
    ...(changes.circuitCooldownSeconds !== undefined ? { circuitCooldownSeconds: changes.circuitCooldownSeconds } : {}),
  };
}

/** The route as the admin API and the audit trail show it (snake_case, the configuration's names). */
export function routeView(route: Route) {
  return {
    channel: route.channel,
    primary_provider: route.primary,
    backup_provider: route.backup,
    failover_threshold: route.failoverThreshold,
    enabled: route.enabled,
    mode: route.mode,
    circuit_cooldown_seconds: route.circuitCooldownSeconds,
    updated_at: route.updatedAt.toISOString(),
    updated_by: route.updatedBy,
    change_reason: route.changeReason,
    incident_id: route.incidentId,
  };
}
