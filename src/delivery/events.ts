import { insertAudit, logAudit, type AuditRow } from '../auth/audit';
import type { Queryable } from '../db/database';
import type { Channel, ProviderName } from '../providers/types';
import type { Runtime } from '../runtime';
import type { CircuitTransition } from './circuit';

/** Delivery's audit events (beside the auth events of src/auth/audit.ts). */
export const DeliveryAuditEvent = {
  routeChanged: 'identity.delivery.route_changed',
  circuitChanged: 'identity.delivery.circuit_changed',
  failed: 'identity.delivery.failed',
  resent: 'identity.delivery.resent',
} as const;

const STATE_AFTER: Record<CircuitTransition, 'open' | 'half_open' | 'closed'> = {
  opened: 'open',
  reopened: 'open',
  half_opened: 'half_open',
  closed: 'closed',
};

export interface CircuitChange {
  provider: ProviderName;
  channel: Channel;
  transition: CircuitTransition;
  consecutiveFailures: number;
  /** where the channel's traffic goes while this provider is out */
  fallback: ProviderName | null;
  actor: string;
  incidentId?: string;
}

/** The audit row of a circuit switch, written in the transaction that switched it. */
export function auditCircuit(tx: Queryable, change: CircuitChange): Promise<AuditRow | undefined> {
  return insertAudit(tx, {
    type: DeliveryAuditEvent.circuitChanged,
    outcome: STATE_AFTER[change.transition],
    reason: change.transition,
    incidentId: change.incidentId,
    details: {
      channel: change.channel,
      provider: change.provider,
      consecutive_failures: change.consecutiveFailures,
      fallback: change.fallback,
      actor: change.actor,
    },
  });
}

/**
 * After the switch committed: the audit log line, a human log line, and the metrics. An
 * opening moves the channel's traffic to its fallback: that is a failover (scope `circuit`).
 */
export function announceCircuit(
  runtime: Pick<Runtime, 'logger' | 'metrics'>,
  change: CircuitChange,
  audit: AuditRow | undefined,
): void {
  const log = runtime.logger.child({ component: 'delivery' });
  logAudit(runtime.logger.child({ component: 'audit' }), audit);
  const state = STATE_AFTER[change.transition];
  runtime.metrics.circuitTransitions.inc({ channel: change.channel, provider: change.provider, to_state: state });
  const fields = {
    channel: change.channel,
    provider: change.provider,
    state,
    consecutiveFailures: change.consecutiveFailures,
    fallback: change.fallback,
  };
  if (state === 'open') {
    if (change.fallback)
      runtime.metrics.deliveryFailovers.inc({
        channel: change.channel,
        from: change.provider,
        to: change.fallback,
        scope: 'circuit',
      });
    log.warn(
      fields,
      `provider circuit ${change.transition}: ${change.channel} traffic moves from ${change.provider} to ${change.fallback ?? 'nobody'}`,
    );
  } else {
    log.info(
      fields,
      `provider circuit ${state}: ${change.provider} ${state === 'closed' ? 'takes traffic again' : 'gets one probe'}`,
    );
  }
}
