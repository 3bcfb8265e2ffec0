/**
 * What a user's export holds (docs/privacy.md#export): everything Warden keeps about them, one
 * section per kind, read in one snapshot. Never a secret or a hash of one: no code or token
 * hash, no sealed copy, no PKCE challenge, no device or authorization-code digest. Nothing about
 * anyone else either: no free text a responder wrote, which may name other people.
 */
import { auditRecord, type AuditRow } from '../auth/audit';
import type { Queryable } from '../db/database';
import type { ExportFormat } from '../shared/privacy';

export const EXPORT_FORMAT_NAME = 'warden-user-export/1';
const PAGE = 500;
/** chunk size in the table: one chunk is one row, never a huge value */
const CHUNK_CHARS = 256 * 1024;

interface Section {
  name: string;
  /** $1 the user's id; $2, $3 limit and offset (omitted for the one-row profile) */
  sql: string;
  /** the only row, or null */
  single?: boolean;
  /** a table some deployments do not have yet: the section is left out without it */
  table?: string;
  shape?: (row: Record<string, unknown>) => unknown;
}

const SECTIONS: Section[] = [
  {
    name: 'profile',
    single: true,
    sql: `SELECT sub, phone, email, locale, metadata, disabled_at, force_password_reset, created_at, updated_at
            FROM users WHERE sub = $1`,
  },
  {
    name: 'challenges',
    sql: `SELECT c.id, c.method, c.status, c.end_reason, c.attempts, c.max_attempts, c.sends, c.client_ip_masked,
                 c.delivery_provider, c.delivery_outcome, c.delivery_status, c.delivery_error_class, c.delivery_report,
                 c.delivery_reported_at, c.created_at, c.expires_at, c.last_attempt_at, c.ended_at,
                 b.client_id AS app, b.origin AS app_origin, b.redirect_uri, b.exchanged_at
            FROM auth_challenges c LEFT JOIN challenge_bindings b ON b.challenge_id = c.id
           WHERE c.user_id = $1 ORDER BY c.created_at, c.id LIMIT $2 OFFSET $3`,
  },
  {
    name: 'deliveries',
    sql: `SELECT d.challenge_id, d.send_number, d.channel, d.provider, d.status, d.attempts, d.failed_calls,
                 d.error_class, d.error_code, d.provider_message_id, d.started_at, d.last_attempt_at, d.completed_at,
                 d.report, d.report_outcome, d.reported_at
            FROM auth_challenges c JOIN delivery_attempts d ON d.challenge_id = c.id
           WHERE c.user_id = $1 ORDER BY d.id LIMIT $2 OFFSET $3`,
  },
  {
    name: 'delivery_failures',
    sql: `SELECT id, challenge_id, channel, provider, phone_number, email, error_class, error_code, failed_attempts,
                 first_failed_at, last_attempt_at, resent_at, resolved_at, resend_outcome
            FROM delivery_failures WHERE user_id = $1 ORDER BY id LIMIT $2 OFFSET $3`,
  },
  {
    name: 'validation_attempts',
    sql: `SELECT challenge_id, validation_attempts, last_attempt_at, challenge_expired
            FROM challenge_validation_attempts WHERE user_id = $1 ORDER BY last_attempt_at, challenge_id LIMIT $2 OFFSET $3`,
  },
  {
    name: 'rate_limit_attempts',
    sql: `SELECT action, exceeded, attempted_at FROM rate_limit_attempts
           WHERE user_id = $1 ORDER BY id LIMIT $2 OFFSET $3`,
  },
  {
    name: 'code_guesses',
    table: 'account_guesses',
    sql: `SELECT outcome, guessed_at FROM account_guesses WHERE user_id = $1 ORDER BY id LIMIT $2 OFFSET $3`,
  },
  {
    name: 'signed_in_devices',
    table: 'trusted_devices',
    sql: `SELECT created_at, last_seen_at FROM trusted_devices
           WHERE user_id = $1 ORDER BY created_at LIMIT $2 OFFSET $3`,
  },
  {
    name: 'revocations',
    sql: `SELECT revoked_before, reason, incident_id, set_by, set_at FROM challenge_cutoffs
           WHERE scope = 'user' AND subject = $1 ORDER BY set_at LIMIT $2 OFFSET $3`,
  },
  {
    name: 'audit_events',
    sql: `SELECT id, occurred_at, event_type, outcome, reason, challenge_id, user_id, method, ip_masked,
                 phone_last4, email_domain, incident_id, details
            FROM audit_events WHERE user_id = $1 ORDER BY id LIMIT $2 OFFSET $3`,
    shape: (row) => auditRecord(row as unknown as AuditRow),
  },
  {
    // not the title or report: responders' free text may name other people
    name: 'incidents',
    sql: `SELECT id, type, severity, status, detected_at, resolved_at FROM incidents
           WHERE state -> 'affected' -> 'users' ? $1 ORDER BY detected_at, id LIMIT $2 OFFSET $3`,
  },
  {
    name: 'security_notifications',
    sql: `SELECT incident_key, provider, outcome, sent_at FROM runbook_notifications
           WHERE user_id = $1 ORDER BY sent_at LIMIT $2 OFFSET $3`,
  },
];

export interface ExportHeader {
  exportId: string;
  subject: string;
  generatedAt: string;
  /** how Warden's log lines name this user (src/privacy/pseudonyms.ts) */
  logPseudonym: string;
}

/** One section's records, a page at a time. */
async function* records(q: Queryable, section: Section, subject: string): AsyncGenerator<unknown> {
  if (section.table) {
    const { rows } = await q.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [section.table]);
    if (!rows[0]?.t) return;
  }
  const shape = section.shape ?? ((row: Record<string, unknown>) => row);
  if (section.single) {
    const { rows } = await q.query(section.sql, [subject]);
    if (rows[0]) yield shape(rows[0]);
    return;
  }
  for (let offset = 0; ; offset += PAGE) {
    const { rows } = await q.query(section.sql, [subject, PAGE, offset]);
    for (const row of rows) yield shape(row);
    if (rows.length < PAGE) return;
  }
}

/** The artifact's text, piece by piece, and the number of records in it. */
async function* pieces(
  q: Queryable,
  header: ExportHeader,
  format: ExportFormat,
  count: { records: number },
): AsyncGenerator<string> {
  const head = {
    format: EXPORT_FORMAT_NAME,
    export_id: header.exportId,
    generated_at: header.generatedAt,
    subject: header.subject,
    logs: {
      pseudonym: header.logPseudonym,
      note: "Warden's log lines name this user by this pseudonym, never by id, phone or email",
    },
  };
  if (format === 'ndjson') {
    yield `${JSON.stringify(head)}\n`;
    for (const section of SECTIONS)
      for await (const record of records(q, section, header.subject)) {
        count.records++;
        yield `${JSON.stringify({ section: section.name, record })}\n`;
      }
    return;
  }
  yield `${JSON.stringify(head).slice(0, -1)},"sections":{`;
  let firstSection = true;
  for (const section of SECTIONS) {
    yield `${firstSection ? '' : ','}${JSON.stringify(section.name)}:`;
    firstSection = false;
    if (section.single) {
      let only: unknown = null;
      for await (const record of records(q, section, header.subject)) only = record;
      if (only !== null) count.records++;
      yield JSON.stringify(only);
      continue;
    }
    yield '[';
    let first = true;
    for await (const record of records(q, section, header.subject)) {
      count.records++;
      yield `${first ? '' : ','}${JSON.stringify(record)}`;
      first = false;
    }
    yield ']';
  }
  yield '}}\n';
}

/** The artifact in chunks of about CHUNK_CHARS, ready to be stored one row each. */
export async function* exportChunks(
  q: Queryable,
  header: ExportHeader,
  format: ExportFormat,
  count: { records: number },
): AsyncGenerator<string> {
  let buffer = '';
  for await (const piece of pieces(q, header, format, count)) {
    buffer += piece;
    if (buffer.length >= CHUNK_CHARS) {
      yield buffer;
      buffer = '';
    }
  }
  if (buffer) yield buffer;
}

/** The section names, in the artifact's order. */
export const EXPORT_SECTIONS = SECTIONS.map((s) => s.name);
