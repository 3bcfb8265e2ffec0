/**
 * Data-subject requests (docs/privacy.md): the shapes shared by the export and erasure
 * workflows (deterministic code: nothing but types and constants here), their activities and
 * the admin API. Workflow inputs and results carry ids and counts only, never the user's id,
 * phone or email: those stay in Postgres, read by the activities.
 */

/** A payload whose top-level object has a string `userId` carries that user's data (src/temporal/subjectCodec.ts). */
export const SUBJECT_FIELD = 'userId';

/**
 * How long a process may keep a user's unwrapped payload key in memory. An erasure waits this
 * long after destroying the key before it reports done, so by then no process can read with it.
 */
export const SUBJECT_KEY_CACHE_MS = 5000;

export const EXPORT_FORMATS = ['json', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const userExportWorkflowId = (exportId: string) => `user-export-${exportId}`;
export const userErasureWorkflowId = (erasureId: string) => `user-erasure-${erasureId}`;

export interface UserExportInput {
  exportId: string;
}

export type UserExportResult =
  | { status: 'ready' | 'expired'; records: number; bytes: number; sha256: string; expiresAt: string }
  /** the export's row is gone (the user was erased meanwhile): nothing was built */
  | { status: 'gone' };

/**
 * The user's rows an erasure deletes, in this order: the users row first (from then on a
 * sign-in for the id is an unknown user's), the rows that name a challenge before the
 * challenges (their bindings and codes go with them by foreign key), then the rest. A table not
 * in the database (a deployment that has not migrated to it) counts 0.
 */
export const ERASED_TABLES = [
  'users',
  'delivery_attempts',
  'delivery_failures',
  'challenge_validation_attempts',
  'auth_challenges',
  'rate_limit_attempts',
  'challenge_cutoffs',
  'destination_sends',
  'account_guesses',
  'trusted_devices',
  'runbook_notifications',
  'canary_runs',
  'user_exports',
] as const;
export type ErasedTable = (typeof ERASED_TABLES)[number];

/**
 * Free-text columns of operational tables where a responder or a runbook may have written the
 * user's id, phone or email (an incident's affected users, a runbook's summary, an artifact):
 * each whole occurrence is replaced by the erasure's pseudonym. Small tables, scanned.
 */
export const SCRUBBED_COLUMNS = [
  { table: 'incidents', column: 'title', type: 'text' },
  { table: 'incidents', column: 'report', type: 'text' },
  { table: 'incidents', column: 'state', type: 'jsonb' },
  { table: 'runbook_runs', column: 'summary', type: 'text' },
  { table: 'runbook_steps', column: 'summary', type: 'text' },
  { table: 'runbook_saved_settings', column: 'previous', type: 'jsonb' },
  { table: 'runbook_saved_settings', column: 'applied', type: 'jsonb' },
  { table: 'runbook_artifact_chunks', column: 'body', type: 'text' },
  { table: 'ip_blocklist', column: 'reason', type: 'text' },
  { table: 'key_rotations', column: 'reason', type: 'text' },
  { table: 'delivery_routes', column: 'change_reason', type: 'text' },
  { table: 'sms_prefix_blocks', column: 'reason', type: 'text' },
] as const;
export type ScrubbedColumn = (typeof SCRUBBED_COLUMNS)[number];
export const scrubbedName = (c: ScrubbedColumn) => `${c.table}.${c.column}`;

/** Rows per statement: a user's rows are few, and a statement stays short whatever their number. */
export const ERASURE_BATCH = 500;

export interface UserErasureInput {
  erasureId: string;
}

/** What an erasure did, table by table. Counts only: nothing here names the user. */
export interface ErasureReport {
  erasure_id: string;
  status: 'completed';
  requested_at: string;
  completed_at: string;
  requested_by: string;
  /** live challenges revoked (their workflows terminated) */
  revoked_challenges: number;
  workflows_ended: number;
  /** rows deleted per table */
  deleted: Partial<Record<ErasedTable, number>>;
  /** rows whose free text named the user, per `table.column` */
  scrubbed: Record<string, number>;
  /** audit rows now naming a pseudonym instead of the user */
  audit_pseudonymized: number;
  /** `destroyed`: the user's payload key; `none`: Temporal never held their data under one */
  payload_key: 'destroyed' | 'none';
}

/** The steps' counts, gathered by the workflow and recorded by the last step. */
export type ErasureCounts = Omit<
  ErasureReport,
  'erasure_id' | 'status' | 'requested_at' | 'completed_at' | 'requested_by'
>;

/** Stable failure types of the privacy activities. */
export const PrivacyErrorType = {
  /** the export or erasure has no row: no retry makes one appear */
  notFound: 'PrivacyRequestNotFound',
} as const;
