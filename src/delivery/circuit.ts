/**
 * The per-provider circuit breaker, shared by every worker through `provider_circuits`.
 * Consecutive transient failures across messages open it at the route's failover_threshold;
 * after the route's cool-down one worker claims a half-open probe (a lease, so a worker that
 * dies mid-probe does not hold it forever); the probe's success closes it, its failure opens
 * it again. Permanent errors say nothing about the provider and are not counted.
 */
import type { Queryable } from '../db/database';
import type { Channel, ProviderName } from '../providers/types';
import type { DeliveryStep } from '../shared/delivery';
import { MAX_CALLS_PER_PROVIDER } from './policy';
import type { Route } from './routes';

export type CircuitState = 'closed' | 'open' | 'half_open';
export type CircuitTransition = 'opened' | 'half_opened' | 'reopened' | 'closed';

export interface Circuit {
  provider: ProviderName;
  channel: Channel;
  state: CircuitState;
  consecutiveFailures: number;
  openedAt: Date | null;
  probeLeaseUntil: Date | null;
  probeKey: string | null;
  throttledUntil: Date | null;
}

/** How long a half-open probe may take before another worker may probe instead. */
export const PROBE_LEASE_SECONDS = 30;

/** The breaker's rule, pure: the state after one outcome. */
export function afterOutcome(
  prev: Pick<Circuit, 'state' | 'consecutiveFailures'>,
  event: 'success' | 'failure',
  threshold: number,
): { state: CircuitState; consecutiveFailures: number; transition?: CircuitTransition } {
  if (event === 'success')
    return {
      state: 'closed',
      consecutiveFailures: 0,
      ...(prev.state !== 'closed' ? { transition: 'closed' as const } : {}),
    };
  const failures = prev.consecutiveFailures + 1;
  if (prev.state === 'half_open') return { state: 'open', consecutiveFailures: failures, transition: 'reopened' };
  if (prev.state === 'closed' && failures >= threshold)
    return { state: 'open', consecutiveFailures: failures, transition: 'opened' };
  return { state: prev.state, consecutiveFailures: failures };
}

export type Availability = 'usable' | 'probe_due' | 'probing_elsewhere' | 'open' | 'throttled';

/**
 * Whether a provider takes traffic now; `key` is the send asking (a probe lease it holds counts
 * as due). The cool-down is the route's current one, counted from the opening, so a responder
 * who shortens it gets a probe at once.
 */
export function availability(c: Circuit, now: Date, key: string, cooldownSeconds: number): Availability {
  if (c.throttledUntil && c.throttledUntil > now) return 'throttled';
  if (c.state === 'closed') return 'usable';
  if (c.state === 'half_open') {
    const leaseLive = c.probeLeaseUntil !== null && c.probeLeaseUntil > now;
    return !leaseLive || c.probeKey === key ? 'probe_due' : 'probing_elsewhere';
  }
  const openedAt = c.openedAt?.getTime() ?? 0;
  return openedAt + cooldownSeconds * 1000 <= now.getTime() ? 'probe_due' : 'open';
}

/** The providers a route tries, in order: `backup` mode uses only the backup. */
export function routeOrder(route: Pick<Route, 'primary' | 'backup' | 'mode'>): ProviderName[] {
  if (route.mode === 'backup' && route.backup) return [route.backup];
  return route.backup ? [route.primary, route.backup] : [route.primary];
}

/**
 * A send's plan from the route and the circuits: usable providers (full retries) and claimed
 * probes (one call) in route order, then every other provider as a one-call last resort, so
 * a message is never dropped while any provider might take it.
 */
export function planSteps(
  order: ProviderName[],
  status: ReadonlyMap<ProviderName, Availability | 'probe_claimed'>,
): DeliveryStep[] {
  const first: DeliveryStep[] = [];
  const last: DeliveryStep[] = [];
  for (const provider of order) {
    const s = status.get(provider) ?? 'usable';
    if (s === 'usable') first.push({ provider, maxCalls: MAX_CALLS_PER_PROVIDER, probe: false });
    else if (s === 'probe_claimed') first.push({ provider, maxCalls: 1, probe: true });
    else last.push({ provider, maxCalls: 1, probe: false });
  }
  return [...first, ...last];
}

interface CircuitRow {
  provider: ProviderName;
  channel: Channel;
  state: CircuitState;
  consecutive_failures: number;
  opened_at: Date | null;
  probe_lease_until: Date | null;
  probe_key: string | null;
  throttled_until: Date | null;
}

const COLUMNS =
  'provider, channel, state, consecutive_failures, opened_at, probe_lease_until, probe_key, throttled_until';

function toCircuit(r: CircuitRow): Circuit {
  return {
    provider: r.provider,
    channel: r.channel,
    state: r.state,
    consecutiveFailures: r.consecutive_failures,
    openedAt: r.opened_at,
    probeLeaseUntil: r.probe_lease_until,
    probeKey: r.probe_key,
    throttledUntil: r.throttled_until,
  };
}

/** The circuits of `providers` and the database's clock (every worker judges by the same one). */
export async function loadCircuits(
  q: Queryable,
  providers: readonly ProviderName[],
): Promise<{ circuits: Map<ProviderName, Circuit>; now: Date }> {
  const { rows } = await q.query<CircuitRow & { now: Date }>(
    `SELECT ${COLUMNS}, now() AS now FROM provider_circuits WHERE provider = ANY($1::text[])`,
    [providers],
  );
  const { rows: clock } = rows.length ? { rows } : await q.query<{ now: Date }>('SELECT now() AS now');
  return { circuits: new Map(rows.map((r) => [r.provider, toCircuit(r)])), now: clock[0]!.now };
}

export async function listCircuits(q: Queryable): Promise<Circuit[]> {
  const { rows } = await q.query<CircuitRow>(`SELECT ${COLUMNS} FROM provider_circuits ORDER BY channel, provider`);
  return rows.map(toCircuit);
}

/** Takes the half-open probe lease for `key`; answers the previous state when this call opened the probe. */
export async function claimProbe(
  q: Queryable,
  provider: ProviderName,
  key: string,
  cooldownSeconds: number,
): Promise<{ claimed: boolean; previous?: CircuitState }> {
  const { rows } = await q.query<{ previous: CircuitState }>(
    `WITH prev AS (
       SELECT provider, state FROM provider_circuits
        WHERE provider = $1
          AND ((state = 'open' AND opened_at + make_interval(secs => $4::int) <= now())
               OR (state = 'half_open' AND (probe_lease_until IS NULL OR probe_lease_until < now() OR probe_key = $2)))
        FOR UPDATE)
     UPDATE provider_circuits c
        SET state = 'half_open', probe_lease_until = now() + make_interval(secs => $3::int), probe_key = $2, updated_at = now()
       FROM prev WHERE c.provider = prev.provider
     RETURNING prev.state AS previous`,
    [provider, key, PROBE_LEASE_SECONDS, cooldownSeconds],
  );
  const previous = rows[0]?.previous;
  return previous ? { claimed: true, previous } : { claimed: false };
}

export interface OutcomeInput {
  provider: ProviderName;
  event: 'success' | 'failure';
  threshold: number;
  /** a 429's Retry-After: the provider is not called again before it */
  retryAfterMs?: number;
}

/**
 * Records one call's outcome on the provider's circuit, inside the caller's transaction, under
 * the row's lock. A success on a closed circuit with no failures writes nothing (the common
 * case costs no lock).
 */
export async function recordOutcome(
  tx: Queryable,
  input: OutcomeInput,
): Promise<{ transition?: CircuitTransition; consecutiveFailures: number }> {
  const onlyIfDirty =
    input.event === 'success'
      ? `AND (state <> 'closed' OR consecutive_failures > 0 OR throttled_until IS NOT NULL)`
      : '';
  const { rows } = await tx.query<CircuitRow>(
    `SELECT ${COLUMNS} FROM provider_circuits WHERE provider = $1 ${onlyIfDirty} FOR UPDATE`,
    [input.provider],
  );
  const prev = rows[0];
  if (!prev) return { consecutiveFailures: 0 };
  const next = afterOutcome(
    { state: prev.state, consecutiveFailures: prev.consecutive_failures },
    input.event,
    input.threshold,
  );
  const opens = next.transition === 'opened' || next.transition === 'reopened';
  await tx.query(
    `UPDATE provider_circuits
        SET state = $2::text, consecutive_failures = $3,
            opened_at = CASE WHEN $4::boolean THEN now() WHEN $2::text = 'closed' THEN NULL ELSE opened_at END,
            probe_lease_until = CASE WHEN $2::text = 'half_open' THEN probe_lease_until END,
            probe_key = CASE WHEN $2::text = 'half_open' THEN probe_key END,
            throttled_until = CASE WHEN $5::int IS NOT NULL THEN now() + make_interval(secs => $5::int / 1000.0)
                                   WHEN $6::boolean THEN NULL ELSE throttled_until END,
            last_failure_at = CASE WHEN $6::boolean THEN last_failure_at ELSE now() END,
            last_success_at = CASE WHEN $6::boolean THEN now() ELSE last_success_at END,
            updated_at = now()
      WHERE provider = $1`,
    [
      input.provider,
      next.state,
      next.consecutiveFailures,
      opens,
      input.retryAfterMs ?? null,
      input.event === 'success',
    ],
  );
  return { transition: next.transition, consecutiveFailures: next.consecutiveFailures };
}

/** A responder restoring the primary: the circuit closes and forgets its failures. */
export async function resetCircuit(tx: Queryable, provider: ProviderName): Promise<CircuitState | undefined> {
  const { rows } = await tx.query<{ previous: CircuitState }>(
    `WITH prev AS (SELECT provider, state FROM provider_circuits WHERE provider = $1 FOR UPDATE)
     UPDATE provider_circuits c
        SET state = 'closed', consecutive_failures = 0, opened_at = NULL,
            probe_lease_until = NULL, probe_key = NULL, throttled_until = NULL, updated_at = now()
       FROM prev WHERE c.provider = prev.provider
     RETURNING prev.state AS previous`,
    [provider],
  );
  return rows[0]?.previous;
}
