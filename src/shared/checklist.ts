/**
 * The recovery validation checklist (docs/incident-response.md). `check` names the activity that verifies an item
 * (several items can share one: one synthetic OTP run proves generation and validation);
 * items without one are ticked by a responder through the checkItem update.
 */
import type { ChecklistGroup, ChecklistItemState } from './incidents';

export type CheckName =
  | 'checkSmsOtpFlow'
  | 'checkMagicLinkFlow'
  | 'checkInvalidTokens'
  | 'checkRateLimits'
  | 'checkAuditEvents'
  | 'checkTokenLeaks'
  | 'checkHashFormat'
  | 'checkKeyRotation'
  | 'checkIpBlocklist'
  | 'checkLatencies'
  | 'checkDatabasePool'
  | 'checkProviderLatency'
  | 'checkMetricsReporting'
  | 'checkAlertRules'
  | 'checkAuditExport'
  | 'checkRateLimitMetrics';

export interface ChecklistItemDef {
  id: string;
  group: ChecklistGroup;
  label: string;
  check?: CheckName;
}

export const CHECKLIST: readonly ChecklistItemDef[] = [
  {
    id: 'sms_otp_generation',
    group: 'functional',
    label: 'SMS OTP generation working (test with 3+ users)',
    check: 'checkSmsOtpFlow',
  },
  {
    id: 'magic_link_generation',
    group: 'functional',
    label: 'Email magic link generation working (test with 3+ users)',
    check: 'checkMagicLinkFlow',
  },
  {
    id: 'valid_token_validation',
    group: 'functional',
    label: 'Token validation succeeding for valid OTPs/links',
    check: 'checkSmsOtpFlow',
  },
  {
    id: 'invalid_token_rejection',
    group: 'functional',
    label: 'Token validation failing for invalid/expired tokens',
    check: 'checkInvalidTokens',
  },
  {
    id: 'rate_limiting',
    group: 'functional',
    label: 'Rate limiting functioning correctly (per-user and per-IP)',
    check: 'checkRateLimits',
  },
  {
    id: 'audit_logging',
    group: 'functional',
    label: 'Audit logging capturing all events (generation, validation, invalidation)',
    check: 'checkAuditEvents',
  },
  {
    id: 'no_plaintext_tokens',
    group: 'security',
    label: 'No plaintext tokens in logs/traces/monitoring dashboards',
    check: 'checkTokenLeaks',
  },
  {
    id: 'bcrypt_hashing',
    group: 'security',
    label: 'Bcrypt hashing functioning (verify hash format in database)',
    check: 'checkHashFormat',
  },
  {
    id: 'key_rotation',
    group: 'security',
    label: 'Key rotation successful (new keys loaded, old keys archived)',
    check: 'checkKeyRotation',
  },
  {
    id: 'ip_blocklists',
    group: 'security',
    label: 'IP blocklists updated (abusive IPs blocked at firewall/load balancer)',
    check: 'checkIpBlocklist',
  },
  { id: 'user_notifications', group: 'security', label: 'User notifications sent to affected accounts' },
  {
    id: 'generation_latency',
    group: 'performance',
    label: 'Token generation latency <500ms (p95)',
    check: 'checkLatencies',
  },
  {
    id: 'validation_latency',
    group: 'performance',
    label: 'Token validation latency <200ms (p95)',
    check: 'checkLatencies',
  },
  {
    id: 'db_pool_healthy',
    group: 'performance',
    label: 'Database connection pool healthy (no exhaustion warnings)',
    check: 'checkDatabasePool',
  },
  {
    id: 'provider_latency',
    group: 'performance',
    label: 'Provider API response times normal (<1s for SMS/email)',
    check: 'checkProviderLatency',
  },
  {
    id: 'metrics_reporting',
    group: 'performance',
    label: 'OpenTelemetry metrics reporting correctly',
    check: 'checkMetricsReporting',
  },
  {
    id: 'prometheus_alerts',
    group: 'monitoring',
    label: 'Prometheus alerts firing correctly (test with synthetic incident)',
    check: 'checkAlertRules',
  },
  { id: 'grafana_dashboards', group: 'monitoring', label: 'Grafana dashboards showing accurate metrics' },
  {
    id: 'audit_log_exports',
    group: 'monitoring',
    label: 'Audit log exports successful (verify log integrity)',
    check: 'checkAuditExport',
  },
  {
    id: 'ratelimit_metrics',
    group: 'monitoring',
    label: 'Rate limiting metrics updating in real-time',
    check: 'checkRateLimitMetrics',
  },
];

/** The order automated checks run in: traffic first, then what inspects its traces. */
export const CHECK_ORDER: readonly CheckName[] = [
  'checkSmsOtpFlow',
  'checkMagicLinkFlow',
  'checkInvalidTokens',
  'checkTokenLeaks',
  'checkRateLimits',
  'checkAuditEvents',
  'checkHashFormat',
  'checkKeyRotation',
  'checkIpBlocklist',
  'checkLatencies',
  'checkDatabasePool',
  'checkProviderLatency',
  'checkMetricsReporting',
  'checkAlertRules',
  'checkAuditExport',
  'checkRateLimitMetrics',
];

/** Checks that drive synthetic traffic through the public API. */
export const TRAFFIC_CHECKS: ReadonlySet<CheckName> = new Set([
  'checkSmsOtpFlow',
  'checkMagicLinkFlow',
  'checkInvalidTokens',
  'checkRateLimits',
  'checkTokenLeaks',
]);
/** Checks that judge the traffic of their own run (metrics deltas, rows since the run began). */
export const TRAFFIC_DEPENDENT: ReadonlySet<CheckName> = new Set([
  'checkAuditEvents',
  'checkHashFormat',
  'checkLatencies',
  'checkProviderLatency',
  'checkMetricsReporting',
  'checkRateLimitMetrics',
]);

/**
 * The checks a resolution must (re)run: those with an item not passed or passed longer ago
 * than `freshMs`; a traffic-dependent check brings the traffic checks along.
 */
export function checksToRerun(items: readonly ChecklistItemState[], now: number, freshMs: number): CheckName[] {
  const stale = new Set<CheckName>();
  for (const def of CHECKLIST) {
    if (!def.check) continue;
    const item = items.find((i) => i.id === def.id);
    const ok =
      item &&
      (item.status === 'passed' || item.status === 'not_applicable') &&
      item.checkedAt &&
      now - new Date(item.checkedAt).getTime() < freshMs;
    if (!ok) stale.add(def.check);
  }
  if ([...stale].some((c) => TRAFFIC_DEPENDENT.has(c))) for (const c of TRAFFIC_CHECKS) stale.add(c);
  return CHECK_ORDER.filter((c) => stale.has(c));
}

export function initialChecklist(): ChecklistItemState[] {
  return CHECKLIST.map((item) => ({
    id: item.id,
    group: item.group,
    label: item.label,
    automated: Boolean(item.check),
    status: 'pending',
  }));
}

export function itemDef(id: string): ChecklistItemDef | undefined {
  return CHECKLIST.find((item) => item.id === id);
}

/** A check's verdict on each item it covers. */
export interface CheckOutcome {
  items: Array<{ id: string; status: 'passed' | 'failed' | 'not_applicable'; detail: string }>;
}

export function checklistPassed(items: readonly ChecklistItemState[]): boolean {
  return items.every((item) => item.status === 'passed' || item.status === 'not_applicable');
}
