/**
 * Alertmanager webhook (payload version 4) to incident. The rules in deploy/prometheus carry
 * `severity` (P0-P3) and `incident_type` labels; alerts from elsewhere are mapped by their
 * usual severity words and, failing an `incident_type`, by the alert name.
 */
import { createHash } from 'node:crypto';
import {
  ALERT_WORKFLOW_PREFIX,
  INCIDENT_TYPES,
  LIMITS,
  SEVERITIES,
  type IncidentInput,
  type IncidentType,
  type Severity,
} from '../shared/incidents';

export interface AlertmanagerAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  fingerprint?: string;
  generatorURL?: string;
}

export interface AlertmanagerPayload {
  version?: string;
  groupKey: string;
  status: 'firing' | 'resolved';
  receiver?: string;
  groupLabels?: Record<string, string>;
  commonLabels?: Record<string, string>;
  commonAnnotations?: Record<string, string>;
  externalURL?: string;
  truncatedAlerts?: number;
  alerts: AlertmanagerAlert[];
}

const SEVERITY_WORDS: Record<string, Severity> = {
  p0: 'P0',
  critical: 'P0',
  page: 'P0',
  p1: 'P1',
  high: 'P1',
  error: 'P1',
  major: 'P1',
  p2: 'P2',
  medium: 'P2',
  warning: 'P2',
  minor: 'P2',
  p3: 'P3',
  low: 'P3',
  info: 'P3',
  none: 'P3',
};

/** An unlabelled alert is treated as P2: someone looks within 4 hours. */
export const DEFAULT_ALERT_SEVERITY: Severity = 'P2';

const NAME_RULES: Array<[RegExp, IncidentType]> = [
  [/token|leak|compromis|validationfailure|credential/i, 'compromised_token'],
  [/ddos|ratelimit|rate_limit|abuse|enumeration|bruteforce|brute_force|blocklist/i, 'abuse'],
  [/database|postgres|\bdb|pool|replica|connection/i, 'db_connectivity'],
  [/provider|deliver|sms|email|twilio|plivo|sendgrid|\bses\b|circuit|failover/i, 'provider_outage'],
];

export function severityOf(labels: Record<string, string>): Severity | undefined {
  const raw = labels.severity ?? labels.priority;
  return raw ? SEVERITY_WORDS[raw.trim().toLowerCase()] : undefined;
}

export function typeOf(labels: Record<string, string>): IncidentType | undefined {
  const raw = labels.incident_type?.trim().toLowerCase();
  if (raw && (INCIDENT_TYPES as readonly string[]).includes(raw)) return raw as IncidentType;
  const name = labels.alertname ?? '';
  return NAME_RULES.find(([pattern]) => pattern.test(name))?.[1];
}

const SEVERITY_RANK: Record<Severity, number> = { P0: 0, P1: 1, P2: 2, P3: 3 };

function truthy(value: string | undefined): boolean {
  return value !== undefined && /^(true|yes|1)$/i.test(value.trim());
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The incident a notification opens: the most severe firing alert decides the severity. */
export function incidentFromAlerts(payload: AlertmanagerPayload, alertGroup: string): IncidentInput {
  const common = payload.commonLabels ?? {};
  const firing = payload.alerts.filter((a) => a.status === 'firing');
  const considered = firing.length ? firing : payload.alerts;
  const severities = considered
    .map((a) => severityOf({ ...common, ...a.labels }))
    .filter((s): s is Severity => Boolean(s));
  const severity =
    severities.sort((a, b) => SEVERITY_RANK[a] - SEVERITY_RANK[b])[0] ?? severityOf(common) ?? DEFAULT_ALERT_SEVERITY;
  const type = typeOf(common) ?? considered.map((a) => typeOf({ ...common, ...a.labels })).find(Boolean) ?? 'other';
  const names = [...new Set(considered.map((a) => a.labels.alertname).filter((n): n is string => Boolean(n)))];
  const title =
    payload.commonAnnotations?.summary ??
    considered[0]?.annotations?.summary ??
    (names.length ? names.join(', ') : 'Alertmanager alert');
  const impact = payload.commonAnnotations?.description ?? considered[0]?.annotations?.description ?? '';
  const providers = [
    ...new Set(considered.map((a) => a.labels.provider ?? common.provider).filter((p): p is string => Boolean(p))),
  ];
  const starts = considered.map((a) => a.startsAt).filter((s): s is string => Boolean(s) && !s!.startsWith('0001'));
  const ddos = considered.some((a) => truthy(a.labels.ddos ?? common.ddos) || /ddos/i.test(a.labels.alertname ?? ''));
  return {
    type,
    severity,
    title: clip(title, LIMITS.title),
    impact: clip(impact, LIMITS.text),
    source: 'alertmanager',
    openedBy: 'alertmanager',
    // no person asked: P0 containment goes ahead without waiting for an admin
    openedByRole: 'automation',
    affected: { providers: providers.slice(0, LIMITS.affected) },
    ddos,
    detectedAt: starts.sort()[0],
    alertGroup,
  };
}

/** A notification group's stable key: sha256 of Alertmanager's groupKey. */
export function alertGroupHash(groupKey: string): string {
  return createHash('sha256').update(groupKey).digest('hex').slice(0, 32);
}

export function alertWorkflowId(groupKey: string): string {
  return `${ALERT_WORKFLOW_PREFIX}${alertGroupHash(groupKey)}`;
}

export function fingerprintOf(alert: AlertmanagerAlert): string {
  if (alert.fingerprint) return alert.fingerprint;
  const labels = Object.entries(alert.labels).sort(([a], [b]) => a.localeCompare(b));
  return createHash('sha256').update(JSON.stringify(labels)).digest('hex').slice(0, 16);
}

export { SEVERITIES };
