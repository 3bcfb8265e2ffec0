/**
 * What an erasure does to each table (docs/privacy.md#erasure), as statements: the user's rows
 * deleted a batch at a time, free text scrubbed, the audit trail pseudonymized through its one
 * privileged function. Every statement is idempotent: run again, it finds nothing left to do.
 * Every table of the schema is accounted for here: PRESERVED_TABLES names those that hold
 * nothing of a user, and a test fails on a table in none of the lists.
 */
import { createHash } from 'node:crypto';
import { ERASED_TABLES, SCRUBBED_COLUMNS, type ErasedTable, type ScrubbedColumn } from '../shared/privacy';

/** What the statements of one erasure know about its user. */
export interface ErasureSubject {
  subject: string;
  /** the id, and every phone number and address Warden held for them */
  needles: string[];
  pseudonym: string;
}

/** The keys destination budgets count a user's messages under (0170: SHA-256, never the address). */
export function destinationKeys(s: ErasureSubject): Buffer[] {
  const names = [`decoy:sms_otp:${s.subject}`, `decoy:magic_link:${s.subject}`];
  for (const needle of s.needles) {
    if (needle === s.subject) continue;
    if (needle.startsWith('+')) names.push(`sms:${needle}`);
    else if (needle.includes('@')) names.push(`email:${needle.toLowerCase()}`);
  }
  return names.map((name) => createHash('sha256').update(name, 'utf8').digest());
}

/** $1 the user's id, $2 the batch size; the row's physical address picks the batch (as retention does). */
const byUser = (table: string, column = 'user_id') =>
  `DELETE FROM ${table} WHERE ctid = ANY (ARRAY (SELECT ctid FROM ${table} WHERE ${column} = $1::text LIMIT $2::int))`;

/** One batch of `table`'s rows of the user, and its parameters; deletes at most the batch size. */
export function eraseStatement(
  table: ErasedTable,
  s: ErasureSubject,
  batch: number,
): { sql: string; values: unknown[] } {
  const user = [s.subject, batch];
  switch (table) {
    case 'users':
      return { sql: 'DELETE FROM users WHERE sub = $1', values: [s.subject] };
    case 'delivery_attempts':
      return {
        sql: `DELETE FROM delivery_attempts WHERE id = ANY (ARRAY (
                SELECT d.id FROM auth_challenges c JOIN delivery_attempts d ON d.challenge_id = c.id
                 WHERE c.user_id = $1::text LIMIT $2::int))`,
        values: user,
      };
    case 'challenge_cutoffs':
      return { sql: `DELETE FROM challenge_cutoffs WHERE scope = 'user' AND subject = $1`, values: [s.subject] };
    case 'destination_sends':
      return {
        sql: `DELETE FROM destination_sends WHERE id = ANY (ARRAY (
                SELECT id FROM destination_sends WHERE destination = ANY ($1::bytea[]) LIMIT $2::int))`,
        values: [destinationKeys(s), batch],
      };
    case 'user_exports':
      return { sql: byUser('user_exports', 'subject'), values: user };
    default:
      return { sql: byUser(table), values: user };
  }
}

/** Rows of one scrubbed column that name the user, rewritten; $1 needles, $2 the pseudonym. */
export function scrubStatement(c: ScrubbedColumn): string {
  const value = `t.${c.column}::text`;
  return `UPDATE ${c.table} t SET ${c.column} = warden_privacy_scrub(${value}, $1::text[], $2::text)::${c.type}
           WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE strpos(${value}, n) > 0)
             AND warden_privacy_scrub(${value}, $1::text[], $2::text) IS DISTINCT FROM ${value}
          RETURNING ${c.table === 'runbook_artifact_chunks' ? 't.artifact_id' : '1 AS one'}`;
}

/**
 * An artifact whose chunks were scrubbed gets its size and SHA-256 again, so its checksum
 * still describes what it holds ($1 the artifact ids).
 */
export const REHASH_ARTIFACTS = `
  UPDATE runbook_artifacts a SET sha256 = s.sha256, bytes = s.bytes
    FROM (SELECT artifact_id, encode(sha256(convert_to(string_agg(body, '' ORDER BY seq), 'UTF8')), 'hex') AS sha256,
                 sum(octet_length(body)) AS bytes
            FROM runbook_artifact_chunks WHERE artifact_id = ANY ($1::bigint[]) GROUP BY artifact_id) s
   WHERE a.id = s.artifact_id`;

/** One batch of the audit trail: $1 subject, $2 pseudonym, $3 needles, $4 batch size. */
export const AUDIT_ERASE = 'SELECT warden_audit_erase($1::text, $2::text, $3::text[], $4::int)::int AS n';

/** The user's payload key destroyed (0160): the row keeps its id, so payloads read as erased. */
export const DESTROY_SUBJECT_KEY = `
  UPDATE user_data_keys SET subject = NULL, kek_id = NULL, wrapped_key = NULL, erased_at = now()
   WHERE subject = $1 RETURNING id`;

/**
 * Tables that hold nothing of a user, or only through the lists above: why each is left alone.
 * (The tables an erasure touches are ERASED_TABLES, SCRUBBED_COLUMNS' tables, audit_events,
 * user_data_keys and user_erasures.)
 */
export const PRESERVED_TABLES: Record<string, string> = {
  pgmigrations: 'the migration runner',
  challenge_bindings: "a challenge's app binding: deleted with the challenge (foreign key)",
  auth_codes: "a challenge's authorization codes (digests): deleted with the challenge (foreign key)",
  runtime_settings: 'service settings',
  signing_keys: 'data keys (wrapped)',
  token_signing_keys: 'token signing keys (wrapped)',
  provider_circuits: 'provider health',
  slack_request_signatures: 'Slack replay protection',
  operators: 'operators are staff, not users',
  operator_tokens: "operators' token digests",
  apps: 'registered applications',
  app_keys: "applications' key digests",
  app_rate_limit_attempts: 'per-application counters',
  audit_retention: "the audit trail's retention marker",
  sms_country_conversion: 'SMS conversion per country: counts',
  sms_pumping_evaluations: "the SMS-pumping evaluation's last run: counts",
  audit_refusal_counts:
    'how often a refusal repeated, keyed by its audit row (which names only a pseudonym once erased)',
  runbook_artifacts: 'artifact metadata; their chunks are scrubbed (and re-hashed)',
  user_export_chunks: 'export artifacts: deleted with their export (foreign key)',
};

/** Every table an erasure accounts for. */
export function accountedTables(): Set<string> {
  return new Set([
    ...ERASED_TABLES,
    ...SCRUBBED_COLUMNS.map((c) => c.table),
    'audit_events',
    'user_data_keys',
    'user_erasures',
    ...Object.keys(PRESERVED_TABLES),
  ]);
}
