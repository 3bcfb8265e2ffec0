import type { IncidentType, Severity } from './incidents';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The severity table (docs/incident-response.md). Response time = acknowledgement SLA. */
export const SEVERITY_TABLE: Record<
  Severity,
  { name: string; impact: string; responseMs: number; responseText: string }
> = {
  P0: {
    name: 'Critical',
    impact: 'Complete service outage or active security breach',
    responseMs: 15 * MINUTE,
    responseText: '< 15 minutes',
  },
  P1: {
    name: 'High',
    impact: 'Partial service degradation or suspected compromise',
    responseMs: HOUR,
    responseText: '< 1 hour',
  },
  P2: {
    name: 'Medium',
    impact: 'Limited impact or potential security issue',
    responseMs: 4 * HOUR,
    responseText: '< 4 hours',
  },
  P3: {
    name: 'Low',
    impact: 'Minimal impact or informational security event',
    responseMs: 24 * HOUR,
    responseText: '< 24 hours',
  },
};

export function ackSlaMs(severity: Severity): number {
  return SEVERITY_TABLE[severity].responseMs;
}

export const TYPE_LABELS: Record<IncidentType, string> = {
  compromised_token: 'Compromised token discovery',
  provider_outage: 'SMS/email provider outage',
  abuse: 'Abuse detection (rate limiting violations)',
  db_connectivity: 'Database connectivity issues',
  other: 'Other',
};

/** Security incidents bring in the security lead (at P0/P1). */
export function isSecurityIncident(type: IncidentType, dataBreach: boolean): boolean {
  return dataBreach || type === 'compromised_token' || type === 'abuse';
}

export function formatDuration(ms: number): string {
  const minutes = Math.round(ms / MINUTE);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (hours < 48) return rest ? `${hours} h ${rest} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  const restH = hours % 24;
  return restH ? `${days} d ${restH} h` : `${days} d`;
}

export { MINUTE, HOUR };
