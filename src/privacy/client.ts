/**
 * The client side of data-subject requests, used by the admin API (docs/privacy.md): an export
 * or erasure is reserved by a row (its id is the workflow's), audited without the user's data,
 * then run by its workflow; the answers are read back from the rows.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { AuditEventType, recordAudit } from '../auth/audit';
import type { Keyring } from '../crypto/keyring';
import type { Database } from '../db/database';
import {
  userErasureWorkflowId,
  userExportWorkflowId,
  type ErasureReport,
  type ExportFormat,
  type UserErasureInput,
  type UserExportInput,
} from '../shared/privacy';
import type { Logger } from '../telemetry/logger';
import { erasurePseudonym, subjectDigest, subjectDigests } from './pseudonyms';

export interface PrivacyDeps {
  db: Database;
  client: Client;
  taskQueue: string;
  /** the key-encryption keyring: the erasures' subject digests derive from it */
  kek: Keyring;
  logger: Logger;
  exportTtlMs: number;
}

export type PrivacyErrorCode =
  'user_not_found' | 'export_not_found' | 'export_expired' | 'erasure_not_found' | 'erasure_running';

export class PrivacyError extends Error {
  override name = 'PrivacyError';
  constructor(
    readonly code: PrivacyErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Whether Warden holds anything about `subject` (a user, or traces of one deleted since). */
async function holdsData(db: Database, subject: string): Promise<boolean> {
  const { rows } = await db.query<{ known: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM users WHERE sub = $1)
         OR EXISTS (SELECT 1 FROM auth_challenges WHERE user_id = $1)
         OR EXISTS (SELECT 1 FROM audit_events WHERE user_id = $1)
         OR EXISTS (SELECT 1 FROM rate_limit_attempts WHERE user_id = $1)
         OR EXISTS (SELECT 1 FROM user_exports WHERE subject = $1)
         OR EXISTS (SELECT 1 FROM user_data_keys WHERE subject = $1) AS known`,
    [subject],
  );
  return rows[0]!.known;
}

const notFound = () => new PrivacyError('user_not_found', 'Warden holds nothing about this user');

// ---- exports ----------------------------------------------------------------------------

export async function requestExport(
  deps: PrivacyDeps,
  subject: string,
  format: ExportFormat,
  actor: string,
): Promise<{ exportId: string; expiresAt: string }> {
  if (!(await holdsData(deps.db, subject))) throw notFound();
  const exportId = randomUUID();
  // an export taken while the user is being erased would outlive the erasure
  const { rows } = await deps.db.write<{ expires_at: Date }>(
    `INSERT INTO user_exports (id, subject, format, requested_by, expires_at)
     SELECT $1, $2, $3, $4, now() + make_interval(secs => $5::double precision / 1000)
      WHERE NOT EXISTS (SELECT 1 FROM user_erasures WHERE subject = $2)
     RETURNING expires_at`,
    [exportId, subject, format, actor, deps.exportTtlMs],
  );
  if (!rows[0]) throw new PrivacyError('erasure_running', 'this user is being erased: there is nothing to export');
  await recordAudit(deps.db.writer, deps.logger, {
    type: AuditEventType.exportRequested,
    outcome: 'requested',
    details: { export_id: exportId, format, actor },
  });
  await deps.client.workflow.start('userExportWorkflow', {
    workflowId: userExportWorkflowId(exportId),
    taskQueue: deps.taskQueue,
    args: [{ exportId } satisfies UserExportInput],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  return { exportId, expiresAt: rows[0]!.expires_at.toISOString() };
}

export type ExportState =
  | { status: 'running'; exportId: string }
  | {
      status: 'ready';
      exportId: string;
      format: ExportFormat;
      sha256: string;
      bytes: number;
      records: number;
      expiresAt: string;
      chunks: () => AsyncGenerator<string>;
    };

export async function exportState(db: Database, subject: string, exportId: string): Promise<ExportState> {
  const { rows } = await db.query<{
    subject: string | null;
    format: ExportFormat;
    status: 'running' | 'ready' | 'expired';
    sha256: string | null;
    bytes: string | null;
    records: number | null;
    expires_at: Date;
  }>('SELECT subject, format, status, sha256, bytes::text, records, expires_at FROM user_exports WHERE id = $1', [
    exportId,
  ]);
  const row = rows[0];
  if (row?.status === 'expired' || (row && row.expires_at.getTime() <= Date.now()))
    throw new PrivacyError('export_expired', 'this export has expired and was deleted: request a new one');
  if (!row || row.subject !== subject) throw new PrivacyError('export_not_found', 'no such export of this user');
  if (row.status === 'running') return { status: 'running', exportId };
  return {
    status: 'ready',
    exportId,
    format: row.format,
    sha256: row.sha256!,
    bytes: Number(row.bytes),
    records: row.records ?? 0,
    expiresAt: row.expires_at.toISOString(),
    async *chunks() {
      for (let seq = 0; ; seq++) {
        const chunk = await db.query<{ body: string }>(
          'SELECT body FROM user_export_chunks WHERE export_id = $1 AND seq = $2',
          [exportId, seq],
        );
        if (!chunk.rows[0]) return;
        yield chunk.rows[0].body;
      }
    },
  };
}

// ---- erasures ---------------------------------------------------------------------------

export type ErasureState = { status: 'running'; erasureId: string } | { status: 'completed'; report: ErasureReport };

const EMPTY_REPORT = {
  revoked_challenges: 0,
  workflows_ended: 0,
  deleted: {},
  scrubbed: {},
  audit_pseudonymized: 0,
  payload_key: 'none',
};

async function startErasureWorkflow(deps: PrivacyDeps, erasureId: string): Promise<void> {
  await deps.client.workflow.start('userErasureWorkflow', {
    workflowId: userErasureWorkflowId(erasureId),
    taskQueue: deps.taskQueue,
    args: [{ erasureId } satisfies UserErasureInput],
    // a repeated request finds the run in progress; a run that was stopped starts again and
    // resumes: every step is idempotent
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

async function runningErasure(db: Database, subject: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM user_erasures WHERE subject = $1', [subject]);
  return rows[0]?.id;
}

/** The report of the latest completed erasure of `subject`, found by its digest. */
async function completedErasure(deps: Pick<PrivacyDeps, 'db' | 'kek'>, subject: string) {
  const { rows } = await deps.db.query<{ report: ErasureReport }>(
    `SELECT report FROM user_erasures WHERE subject_digest = ANY ($1::bytea[]) AND status = 'completed'
      ORDER BY requested_at DESC LIMIT 1`,
    [subjectDigests(deps.kek, subject)],
  );
  return rows[0]?.report;
}

/**
 * Erases `subject`: an erasure in progress is joined (and its workflow started again if it was
 * stopped); a user Warden holds data about gets a new one; a user erased before, of whom
 * nothing is left, gets the report of that erasure.
 */
export async function requestErasure(deps: PrivacyDeps, subject: string, actor: string): Promise<ErasureState> {
  const running = await runningErasure(deps.db, subject);
  if (running) {
    await startErasureWorkflow(deps, running);
    return { status: 'running', erasureId: running };
  }
  if (!(await holdsData(deps.db, subject))) {
    const report = await completedErasure(deps, subject);
    if (report) return { status: 'completed', report };
    throw notFound();
  }
  const erasureId = randomUUID();
  const { digest, kekId } = subjectDigest(deps.kek, subject);
  // the id and every phone number and address held for the user: what free text is searched for
  const inserted = await deps.db.write<{ id: string }>(
    `INSERT INTO user_erasures (id, subject_digest, digest_kek_id, subject, needles, pseudonym, requested_by, report)
     SELECT $1, $2, $3, $4, ARRAY (SELECT DISTINCT v FROM (
              SELECT $4::text UNION ALL SELECT phone FROM users WHERE sub = $4 UNION ALL SELECT email FROM users WHERE sub = $4
              UNION ALL SELECT phone_number FROM delivery_failures WHERE user_id = $4
              UNION ALL SELECT email FROM delivery_failures WHERE user_id = $4) AS held (v) WHERE v IS NOT NULL),
            $5, $6, $7::jsonb
     ON CONFLICT (subject) WHERE subject IS NOT NULL DO NOTHING RETURNING id`,
    [erasureId, digest, kekId, subject, erasurePseudonym(), actor, JSON.stringify(EMPTY_REPORT)],
  );
  if (!inserted.rows[0]) {
    // a concurrent request for the same user won: join it
    const winner = await runningErasure(deps.db, subject);
    if (!winner) throw new Error('an erasure of this user was requested concurrently and has already ended');
    return { status: 'running', erasureId: winner };
  }
  await recordAudit(deps.db.writer, deps.logger, {
    type: AuditEventType.erasureRequested,
    outcome: 'requested',
    details: { erasure_id: erasureId, actor },
  });
  await startErasureWorkflow(deps, erasureId);
  return { status: 'running', erasureId };
}

export async function erasureState(deps: Pick<PrivacyDeps, 'db' | 'kek'>, subject: string): Promise<ErasureState> {
  const running = await runningErasure(deps.db, subject);
  if (running) return { status: 'running', erasureId: running };
  const report = await completedErasure(deps, subject);
  if (report) return { status: 'completed', report };
  throw new PrivacyError('erasure_not_found', 'no erasure of this user');
}
