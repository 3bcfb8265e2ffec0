/**
 * The escalation paths (docs/incident-response.md) as data, and the policy that turns an incident's state into the
 * escalations due at a given time. Pure: the workflow calls it with workflow time.
 *
 * Internal path: on-call is notified when the incident is detected.
 * When the acknowledgement SLA of the severity passes without an acknowledgement, the incident
 * escalates one step along the path per further SLA period: the security lead (P0/P1 security
 * incidents), the DBA (database incidents), then the engineering manager, who allocates
 * resources when nobody picked the incident up (nobody else is paged for an
 * unacknowledged P2/P3). Independently of acknowledgement, a P0 open for more than 1 hour
 * brings in the engineering manager and one open for more than 4 hours the VP engineering;
 * a data breach brings in the VP engineering, legal and the CISO at once.
 * Every role is notified at most once per incident.
 */
import type { IncidentType, InternalRole, NotifiedRole, Severity } from './incidents';
import { ackSlaMs, formatDuration, HOUR, isSecurityIncident, MINUTE } from './severity';

export const ROLE_TITLES: Record<NotifiedRole, string> = {
  oncall: 'On-Call Engineer',
  security_lead: 'Security Team Lead',
  dba: 'Database Administrator',
  engineering_manager: 'Engineering Manager',
  vp_engineering: 'VP Engineering',
  legal: 'Legal team',
  ciso: 'CISO',
};

export const ROLE_RESPONSIBILITY: Record<NotifiedRole, string> = {
  oncall: 'Initial response, triage',
  security_lead: 'Security incident coordination',
  dba: 'Database performance/recovery',
  engineering_manager: 'Resource allocation, external comms',
  vp_engineering: 'Executive decision-making',
  legal: 'Regulatory notification (GDPR 72 hours), customer notification',
  ciso: 'Regulatory notification (GDPR 72 hours), customer notification',
};

export type EscalationTrigger = 'detected' | 'ack_sla' | 'p0_open_1h' | 'p0_open_4h' | 'data_breach' | 'manual';

export interface PlannedEscalation {
  role: NotifiedRole;
  at: number;
  trigger: EscalationTrigger;
  reason: string;
}

export interface PolicyState {
  type: IncidentType;
  severity: Severity;
  dataBreach: boolean;
  /** ms since epoch */
  detectedAt: number;
  dataBreachAt?: number;
  acknowledged: boolean;
  resolved: boolean;
  engaged: ReadonlySet<NotifiedRole>;
}

/** The roles an unacknowledged incident escalates through, one per SLA period. */
export function slaChain(type: IncidentType, severity: Severity, dataBreach: boolean): InternalRole[] {
  const chain: InternalRole[] = [];
  if ((severity === 'P0' || severity === 'P1') && isSecurityIncident(type, dataBreach)) chain.push('security_lead');
  if (type === 'db_connectivity') chain.push('dba');
  chain.push('engineering_manager');
  return chain;
}

/** Every escalation the policy still wants, due or not, earliest first. */
export function plannedEscalations(s: PolicyState): PlannedEscalation[] {
  if (s.resolved) return [];
  const plan: PlannedEscalation[] = [
    { role: 'oncall', at: s.detectedAt, trigger: 'detected', reason: 'Incident detected' },
  ];
  const sla = ackSlaMs(s.severity);
  if (!s.acknowledged) {
    slaChain(s.type, s.severity, s.dataBreach).forEach((role, index) => {
      const periods = index + 1;
      plan.push({
        role,
        at: s.detectedAt + periods * sla,
        trigger: 'ack_sla',
        reason: `not acknowledged within ${formatDuration(periods * sla)} (${s.severity} SLA ${formatDuration(sla)})`,
      });
    });
  }
  if (s.severity === 'P0') {
    plan.push({
      role: 'engineering_manager',
      at: s.detectedAt + HOUR,
      trigger: 'p0_open_1h',
      reason: 'P0 incident open for more than 1 hour',
    });
    plan.push({
      role: 'vp_engineering',
      at: s.detectedAt + 4 * HOUR,
      trigger: 'p0_open_4h',
      reason: 'P0 incident open for more than 4 hours',
    });
  }
  if (s.dataBreach) {
    const at = s.dataBreachAt ?? s.detectedAt;
    for (const role of ['vp_engineering', 'legal', 'ciso'] as const) {
      plan.push({ role, at, trigger: 'data_breach', reason: 'Data breach: regulatory notification (GDPR 72 hours)' });
    }
  }
  // earliest per role wins; roles already engaged are done
  const byRole = new Map<NotifiedRole, PlannedEscalation>();
  for (const step of plan) {
    if (s.engaged.has(step.role)) continue;
    const current = byRole.get(step.role);
    if (!current || step.at < current.at) byRole.set(step.role, step);
  }
  return [...byRole.values()].sort((a, b) => a.at - b.at || INTERNAL_ORDER(a.role) - INTERNAL_ORDER(b.role));
}

function INTERNAL_ORDER(role: NotifiedRole): number {
  return ['oncall', 'security_lead', 'dba', 'engineering_manager', 'vp_engineering', 'legal', 'ciso'].indexOf(role);
}

/** The acknowledgement deadline, or undefined once acknowledged/resolved. */
export function ackDeadline(
  s: Pick<PolicyState, 'severity' | 'detectedAt' | 'acknowledged' | 'resolved'>,
): number | undefined {
  if (s.acknowledged || s.resolved) return undefined;
  return s.detectedAt + ackSlaMs(s.severity);
}

/** A responder's manual escalation: the requested role, or the next one of the path not yet engaged. */
export function nextManualRole(s: PolicyState): InternalRole | undefined {
  const path: InternalRole[] = [...slaChain(s.type, s.severity, s.dataBreach), 'vp_engineering'];
  return path.find((role) => !s.engaged.has(role));
}

// ---- external escalation ----------------------------------------------------------------------

export interface PlannedTask {
  id: string;
  title: string;
  contact: string;
  withinMs: number;
  reminders: number[];
}

export const GDPR_DEADLINE_MS = 72 * HOUR;

export const EXTERNAL_TASKS = {
  gdpr: {
    id: 'gdpr-notification',
    title: 'Regulatory notification (GDPR 72 hours) and customer notification',
    contact: 'legal, ciso',
    withinMs: GDPR_DEADLINE_MS,
    // a day in, two days in, 6 hours and 1 hour before the deadline
    reminders: [24 * HOUR, 48 * HOUR, 66 * HOUR, 71 * HOUR],
  },
  providerSupport: {
    id: 'provider-support',
    title: 'Open a critical support ticket with the provider and request an ETA',
    contact: 'provider_support',
    withinMs: 30 * MINUTE,
    reminders: [20 * MINUTE],
  },
  ispCdn: {
    id: 'isp-cdn',
    title: 'Engage ISP/CDN: enable DDoS mitigation and traffic filtering',
    contact: 'isp_cdn',
    withinMs: 15 * MINUTE,
    reminders: [10 * MINUTE],
  },
} satisfies Record<string, PlannedTask>;

/** The external tasks an incident of this shape needs at start (the breach task comes with the flag). */
export function externalTasks(type: IncidentType, ddos: boolean, dataBreach: boolean): PlannedTask[] {
  const tasks: PlannedTask[] = [];
  if (type === 'provider_outage') tasks.push(EXTERNAL_TASKS.providerSupport);
  if (ddos) tasks.push(EXTERNAL_TASKS.ispCdn);
  if (dataBreach) tasks.push(EXTERNAL_TASKS.gdpr);
  return tasks;
}
