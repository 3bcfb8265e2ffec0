/**
 * The audit trail: an append-only `audit_events` row plus one JSON log line per event (what
 * responders' log greps read). Events carry ids and masked facts only: the user id, the masked
 * client IP, the phone's last four digits or the email's domain. Never a secret, never a
 * full phone number or address.
 */
import type { Queryable } from '../db/database';
import type { Logger } from '../telemetry/logger';

export const AuditEventType = {
  tokenGenerated: 'identity.auth.token_generated',
  validationAttempt: 'identity.auth.validation_attempt',
  tokenInvalidated: 'identity.auth.token_invalidated',
  rateLimitExceeded: 'identity.ratelimit.exceeded',
  requestBlocked: 'identity.blocklist.rejected',
  // refused by admission control before any work (503 overloaded; src/api/plugins/admission.ts)
  admissionShed: 'identity.admission.shed',
  resendRequested: 'identity.auth.resend_requested',
  keyRotated: 'identity.keys.rotated',
  challengesCutOff: 'identity.auth.challenges_cut_off',
  blocklistChanged: 'identity.blocklist.changed',
  settingsChanged: 'identity.settings.changed',
  userAction: 'identity.admin.user_action',
  accessRefused: 'identity.access.refused',
  codeIssued: 'identity.auth.code_issued',
  codeExchanged: 'identity.auth.code_exchanged',
  codeRefused: 'identity.auth.code_refused',
  tokenIssued: 'identity.auth.token_issued',
  operatorChanged: 'identity.operators.changed',
  // registered applications (src/auth/apps.ts); `details.client_id` names the app
  appCreated: 'identity.app.created',
  appUpdated: 'identity.app.updated',
  appDisabled: 'identity.app.disabled',
  appEnabled: 'identity.app.enabled',
  appKeyCreated: 'identity.app.key.created',
  appKeyRevoked: 'identity.app.key.revoked',
  // data-subject requests (docs/privacy.md): the request's id in details, never the user's
  exportRequested: 'identity.privacy.export_requested',
  erasureRequested: 'identity.privacy.erasure_requested',
  erasureCompleted: 'identity.privacy.erasure_completed',
} as const;

export interface AuditEvent {
  type: string;
  outcome?: string;
  reason?: string;
  challengeId?: string;
  userId?: string;
  method?: 'sms_otp' | 'magic_link';
  ipMasked?: string;
  incidentId?: string;
  details?: Record<string, unknown>;
  /** makes the insert idempotent (activity retries): a second insert with the key is dropped */
  dedupeKey?: string;
}

export interface AuditRow {
  id: string;
  occurred_at: Date;
  event_type: string;
  outcome: string | null;
  reason: string | null;
  challenge_id: string | null;
  user_id: string | null;
  method: string | null;
  ip_masked: string | null;
  phone_last4: string | null;
  email_domain: string | null;
  incident_id: string | null;
  details: Record<string, unknown>;
  /** read through the audit_trail view: the refusals a window's row stands for (src/auth/refusals.ts) */
  count?: string | number | null;
}

/** A write that lands in the same statement as the audit row (a data-modifying CTE). */
export interface AuditCompanion {
  /** the CTE's statement; its parameters are numbered from $11 (the audit row has $1..$10) */
  sql: string;
  values: unknown[];
}

/** The audit table's columns, in the order every insert names them. */
export const AUDIT_INSERT_COLUMNS = `event_type, outcome, reason, challenge_id, user_id, method, ip_masked,
                               phone_last4, email_domain, incident_id, details, dedupe_key`;
/** What an insert returns: an AuditRow. */
export const AUDIT_RETURNING = `id, occurred_at, event_type, outcome, reason, challenge_id, user_id, method, ip_masked,
               phone_last4, email_domain, incident_id, details`;

/**
 * phone_last4 and email_domain, from a `users` row joined as `u`, for an event of the method
 * `method` (a SQL expression): the phone's for SMS, the email's for a magic link, both when the
 * method is unknown.
 */
export function auditContactSql(method: string): string {
  return `CASE WHEN ${method} IS DISTINCT FROM 'magic_link' THEN right(u.phone, 4) END,
            CASE WHEN ${method} IS DISTINCT FROM 'sms_otp' THEN lower(split_part(u.email, '@', 2)) END`;
}

/**
 * Inserts the row (inside the caller's transaction if `q` is one). The phone's last four or
 * the email domain come from `users` in the same statement: the caller never handles them.
 * With a companion, that write and the row are one statement (atomic, one round trip).
 * Returns undefined when the dedupe key was already used.
 */
export async function insertAudit(
  q: Queryable,
  event: AuditEvent,
  companion?: AuditCompanion,
): Promise<AuditRow | undefined> {
  const { rows } = await q.query<AuditRow>(
    `${companion ? `WITH companion AS (${companion.sql}) ` : ''}INSERT INTO audit_events (${AUDIT_INSERT_COLUMNS})
     SELECT $1, $2, $3, $4::uuid, $5::text, $6::text, $7,
            ${auditContactSql('$6::text')},
            $8, $9::jsonb, $10
     FROM (SELECT 1) AS one LEFT JOIN users u ON u.sub = $5::text
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING ${AUDIT_RETURNING}`,
    [
      event.type,
      event.outcome ?? null,
      event.reason ?? null,
      event.challengeId ?? null,
      event.userId ?? null,
      event.method ?? null,
      event.ipMasked ?? null,
      event.incidentId ?? null,
      JSON.stringify(event.details ?? {}),
      event.dedupeKey ?? null,
      ...(companion?.values ?? []),
    ],
  );
  return rows[0];
}

/** The row as one JSON line: `event` is the audit event name, fields are snake_case like the row. */
export function auditRecord(row: AuditRow): Record<string, unknown> {
  const record: Record<string, unknown> = {
    id: Number(row.id),
    occurred_at: row.occurred_at.toISOString(),
    event: row.event_type,
  };
  for (const key of [
    'outcome',
    'reason',
    'challenge_id',
    'user_id',
    'method',
    'ip_masked',
    'phone_last4',
    'email_domain',
    'incident_id',
  ] as const) {
    if (row[key] !== null) record[key] = row[key];
  }
  if (Object.keys(row.details).length > 0) record.details = row.details;
  if (row.count !== undefined && row.count !== null) record.count = Number(row.count);
  return record;
}

export function logAudit(logger: Logger, row: AuditRow | undefined): void {
  if (!row) return;
  const { event, ...fields } = auditRecord(row);
  logger.info({ audit: true, event, ...fields }, String(event));
}

/** Insert and log: for callers outside a transaction. */
export async function recordAudit(db: Queryable, logger: Logger, event: AuditEvent): Promise<AuditRow | undefined> {
  const row = await insertAudit(db, event);
  logAudit(logger, row);
  return row;
}

const EXPORT_PAGE = 1000;

/**
 * An AuditRow's columns read from the audit_trail view (migrations/0180_refusal_counts.sql):
 * `count` is set on the row of a window of refusals only.
 */
export const AUDIT_TRAIL_COLUMNS = `id, occurred_at, event_type, outcome, reason, challenge_id, user_id, method, ip_masked,
              phone_last4, email_domain, incident_id, details,
              CASE WHEN count_window_start IS NOT NULL THEN count END AS count`;

/** Audit events of a window as NDJSON lines, oldest first, read a page at a time as they are sent. */
export async function* exportAuditLines(
  db: Queryable,
  since: Date,
  until: Date,
  type: string | undefined,
): AsyncGenerator<string> {
  let after = '0';
  for (;;) {
    const { rows } = await db.query<AuditRow>(
      `SELECT ${AUDIT_TRAIL_COLUMNS}
         FROM audit_trail
        WHERE occurred_at >= $1 AND occurred_at < $2 AND ($3::text IS NULL OR event_type = $3) AND id > $4
        ORDER BY id LIMIT ${EXPORT_PAGE}`,
      [since, until, type ?? null, after],
    );
    for (const row of rows) yield `${JSON.stringify(auditRecord(row))}\n`;
    if (rows.length < EXPORT_PAGE) return;
    after = rows[rows.length - 1]!.id;
  }
}
