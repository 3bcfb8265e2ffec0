/**
 * The side effects of data-subject requests (docs/privacy.md), one per activity, each
 * idempotent. An erasure's steps read the user from the erasure's row (never from the
 * workflow: its history holds ids only) and add what they did to the row's report in the same
 * transaction, so the report is exact however often a step is retried. Once the erasure is
 * completed, the row names nobody and every step does nothing.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { adminDeps, revokeUserChallenges } from '../auth/admin';
import { AuditEventType, insertAudit, logAudit } from '../auth/audit';
import type { Queryable } from '../db/database';
import {
  AUDIT_ERASE,
  DESTROY_SUBJECT_KEY,
  eraseStatement,
  REHASH_ARTIFACTS,
  scrubStatement,
  type ErasureSubject,
} from '../privacy/erasure';
import { exportChunks } from '../privacy/exportData';
import { logPseudonym, logPseudonymKey } from '../privacy/pseudonyms';
import type { Runtime } from '../runtime';
import {
  ERASED_TABLES,
  PrivacyErrorType,
  SCRUBBED_COLUMNS,
  scrubbedName,
  type ErasedTable,
  type ErasureCounts,
  type ErasureReport,
  type ExportFormat,
  type UserExportResult,
} from '../shared/privacy';

type Deps = Pick<Runtime, 'db' | 'logger' | 'temporal' | 'keys' | 'tokenKeys' | 'metrics' | 'config'>;

const missing = (what: string, id: string) =>
  ApplicationFailure.nonRetryable(`${what} ${id} has no row`, PrivacyErrorType.notFound);

async function tableExists(q: Queryable, table: string): Promise<boolean> {
  const { rows } = await q.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  return Boolean(rows[0]?.t);
}

interface ErasureRow extends ErasureSubject {
  status: 'running' | 'completed';
}

export function createPrivacyActivities(runtime: Deps) {
  const { db, config } = runtime;
  const auditLog = runtime.logger.child({ component: 'audit' });

  /** The erasure's row, locked for the step's transaction; undefined once it is completed. */
  async function lockErasure(tx: Queryable, erasureId: string): Promise<ErasureSubject | undefined> {
    const { rows } = await tx.query<ErasureRow>(
      'SELECT status, subject, needles, pseudonym FROM user_erasures WHERE id = $1 FOR UPDATE',
      [erasureId],
    );
    const row = rows[0];
    if (!row) throw missing('erasure', erasureId);
    return row.status === 'running' ? row : undefined;
  }

  /** Adds `n` to the report's count at `path`. */
  const count = (tx: Queryable, erasureId: string, path: string[], n: number) =>
    tx.query(
      `UPDATE user_erasures SET report = jsonb_set(report, $2::text[], to_jsonb(coalesce((report #>> $2::text[])::int, 0) + $3::int))
        WHERE id = $1`,
      [erasureId, path, n],
    );

  /** One step of an erasure: locked, done and counted in one transaction; 0 once completed. */
  async function step(
    erasureId: string,
    run: (tx: pg.PoolClient, s: ErasureSubject) => Promise<number>,
    path: string[],
  ): Promise<number> {
    return db.transaction(async (tx) => {
      const subject = await lockErasure(tx, erasureId);
      if (!subject) return 0;
      const n = await run(tx, subject);
      if (n > 0) await count(tx, erasureId, path, n);
      return n;
    });
  }

  return {
    /** The artifact, written in one snapshot with its SHA-256; `gone` when the export's row is. */
    async buildUserExport({ exportId }: { exportId: string }): Promise<UserExportResult> {
      return db.transaction(async (tx) => {
        await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        const { rows } = await tx.query<{
          subject: string | null;
          format: ExportFormat;
          status: string;
          records: number | null;
          bytes: string | null;
          sha256: string | null;
          expires_at: Date;
        }>(
          'SELECT subject, format, status, records, bytes::text, sha256, expires_at FROM user_exports WHERE id = $1 FOR UPDATE',
          [exportId],
        );
        const row = rows[0];
        if (!row || row.status === 'expired' || !row.subject) return { status: 'gone' };
        const ready = (r: { records: number; bytes: number; sha256: string; expiresAt: Date }) =>
          ({ status: 'ready', ...r, expiresAt: r.expiresAt.toISOString() }) as const;
        if (row.status === 'ready')
          return ready({
            records: row.records ?? 0,
            bytes: Number(row.bytes),
            sha256: row.sha256!,
            expiresAt: row.expires_at,
          });
        const header = {
          exportId,
          subject: row.subject,
          generatedAt: new Date().toISOString(),
          logPseudonym: logPseudonym(logPseudonymKey(runtime.keys.keyring), row.subject),
        };
        const hash = createHash('sha256');
        const tally = { records: 0 };
        let bytes = 0;
        let seq = 0;
        for await (const body of exportChunks(tx, header, row.format, tally)) {
          hash.update(body, 'utf8');
          bytes += Buffer.byteLength(body);
          await tx.query('INSERT INTO user_export_chunks (export_id, seq, body) VALUES ($1, $2, $3)', [
            exportId,
            seq++,
            body,
          ]);
        }
        const sha256 = hash.digest('hex');
        const done = await tx.query<{ expires_at: Date }>(
          `UPDATE user_exports SET status = 'ready', ready_at = now(), records = $2, bytes = $3, sha256 = $4,
                  expires_at = now() + make_interval(secs => $5::double precision / 1000)
            WHERE id = $1 RETURNING expires_at`,
          [exportId, tally.records, bytes, sha256, config.privacy.exportTtlMs],
        );
        return ready({ records: tally.records, bytes, sha256, expiresAt: done.rows[0]!.expires_at });
      });
    },

    /** The artifact deleted at its expiry; the row keeps its id and times, and names nobody. */
    async expireUserExport({ exportId }: { exportId: string }): Promise<void> {
      await db.write(
        `WITH chunks AS (DELETE FROM user_export_chunks WHERE export_id = $1)
         UPDATE user_exports SET status = 'expired', subject = NULL WHERE id = $1 AND status <> 'expired'`,
        [exportId],
      );
    },

    /** The user's live challenges revoked (the admin API's per-user revocation), workflows terminated. */
    async revokeErasedChallenges({ erasureId }: { erasureId: string }): Promise<number> {
      const { rows } = await db.query<Pick<ErasureRow, 'status' | 'subject'>>(
        'SELECT status, subject FROM user_erasures WHERE id = $1',
        [erasureId],
      );
      if (!rows[0]) throw missing('erasure', erasureId);
      if (rows[0].status !== 'running') return 0;
      const outcome = await revokeUserChallenges(adminDeps(runtime), {
        userIds: [rows[0].subject],
        reason: 'manual_revoke',
        actor: `erasure ${erasureId}`,
      });
      await db.transaction(async (tx) => {
        await count(tx, erasureId, ['revoked_challenges'], outcome.revoked);
        await count(tx, erasureId, ['workflows_ended'], outcome.workflowsEnded);
      });
      return outcome.revoked;
    },

    /** At most `limit` of the user's rows of `table` deleted; how many. */
    async eraseUserRows(input: { erasureId: string; table: ErasedTable; limit: number }): Promise<number> {
      if (!ERASED_TABLES.includes(input.table)) throw new Error(`erasure knows no table ${String(input.table)}`);
      return step(
        input.erasureId,
        async (tx, s) => {
          if (!(await tableExists(tx, input.table))) return 0;
          const { sql, values } = eraseStatement(input.table, s, input.limit);
          return (await tx.query(sql, values)).rowCount ?? 0;
        },
        ['deleted', input.table],
      );
    },

    /** Every whole occurrence of the user's id, phones and addresses in one free-text column, replaced. */
    async scrubUserText(input: { erasureId: string; table: string; column: string }): Promise<number> {
      const target = SCRUBBED_COLUMNS.find((c) => c.table === input.table && c.column === input.column);
      if (!target) throw new Error(`erasure scrubs no column ${input.table}.${input.column}`);
      return step(
        input.erasureId,
        async (tx, s) => {
          if (!(await tableExists(tx, target.table))) return 0;
          const { rows } = await tx.query<{ artifact_id?: string }>(scrubStatement(target), [s.needles, s.pseudonym]);
          const artifacts = [...new Set(rows.flatMap((r) => (r.artifact_id ? [r.artifact_id] : [])))];
          if (artifacts.length) await tx.query(REHASH_ARTIFACTS, [artifacts]);
          return rows.length;
        },
        ['scrubbed', scrubbedName(target)],
      );
    },

    /** At most `limit` audit rows of the user made to name the erasure's pseudonym (warden_audit_erase). */
    async pseudonymizeUserAudit(input: { erasureId: string; limit: number }): Promise<number> {
      return step(
        input.erasureId,
        async (tx, s) => {
          const { rows } = await tx.query<{ n: number }>(AUDIT_ERASE, [s.subject, s.pseudonym, s.needles, input.limit]);
          return rows[0]!.n;
        },
        ['audit_pseudonymized'],
      );
    },

    /** The user's payload key destroyed: their Temporal payloads read as erased from now on. */
    async destroyUserPayloadKey({ erasureId }: { erasureId: string }): Promise<'destroyed' | 'none'> {
      return db.transaction(async (tx) => {
        const s = await lockErasure(tx, erasureId);
        if (s) {
          const { rows } = await tx.query(DESTROY_SUBJECT_KEY, [s.subject]);
          if (rows.length)
            await tx.query(`UPDATE user_erasures SET report = report || '{"payload_key":"destroyed"}' WHERE id = $1`, [
              erasureId,
            ]);
        }
        const { rows } = await tx.query<{ key: 'destroyed' | 'none' }>(
          `SELECT report ->> 'payload_key' AS key FROM user_erasures WHERE id = $1`,
          [erasureId],
        );
        return rows[0]?.key ?? 'none';
      });
    },

    /** The erasure completed: its report kept, the user's id, contacts and pseudonym forgotten. */
    async finishErasure({ erasureId }: { erasureId: string }): Promise<ErasureReport> {
      const { report, audit } = await db.transaction(async (tx) => {
        await lockErasure(tx, erasureId);
        const { rows } = await tx.query<{
          status: string;
          report: ErasureCounts | ErasureReport;
          requested_by: string;
          requested_at: Date;
        }>('SELECT status, report, requested_by, requested_at FROM user_erasures WHERE id = $1', [erasureId]);
        const row = rows[0]!;
        if (row.status === 'completed') return { report: row.report as ErasureReport, audit: undefined };
        const completedAt = new Date();
        const full: ErasureReport = {
          erasure_id: erasureId,
          status: 'completed',
          requested_at: row.requested_at.toISOString(),
          completed_at: completedAt.toISOString(),
          requested_by: row.requested_by,
          ...(row.report as ErasureCounts),
        };
        await tx.query(
          `UPDATE user_erasures SET status = 'completed', completed_at = $2, report = $3::jsonb,
                  subject = NULL, needles = NULL, pseudonym = NULL
            WHERE id = $1`,
          [erasureId, completedAt, JSON.stringify(full)],
        );
        const audit = await insertAudit(tx, {
          type: AuditEventType.erasureCompleted,
          outcome: 'completed',
          details: {
            erasure_id: erasureId,
            deleted: full.deleted,
            audit_pseudonymized: full.audit_pseudonymized,
            payload_key: full.payload_key,
          },
          dedupeKey: `erasure-${erasureId}/completed`,
        });
        return { report: full, audit };
      });
      logAudit(auditLog, audit);
      return report;
    },
  };
}
