/**
 * The compromised-token investigation: the forensic export of the audit trail for a window
 * (NDJSON, one line per event in the shape of the audit log lines, which carry no secret) and
 * the two anomaly queries (docs/incident-response.md). Results are stored as artifacts of the run
 * (runbook_artifacts), fetched at `GET /admin/api/v1/runbooks/<id>/artifacts/<name>`.
 */
import { createHash } from 'node:crypto';
import { AUDIT_TRAIL_COLUMNS, auditRecord, type AuditRow } from '../auth/audit';
import type { Database, Queryable } from '../db/database';
import type { Runtime } from '../runtime';

const PAGE = 2000;
const MAX_EXPORT_ROWS = 2_000_000;
const ANOMALY_ROWS = 1000;

export interface ArtifactInfo {
  name: string;
  rows: number;
  bytes: number;
  sha256: string;
  truncated?: boolean;
}

/**
 * Writes an artifact in one transaction (a retry after a crash starts over, and a finished
 * one is answered from what is stored): `lines` yields the chunks.
 */
export async function storeArtifact(
  db: Database,
  meta: {
    workflowId: string;
    name: string;
    contentType: string;
    incidentId?: string;
    windowStart?: string;
    windowEnd?: string;
  },
  chunks: (tx: Queryable) => AsyncGenerator<{ body: string; rows: number }>,
): Promise<ArtifactInfo> {
  const existing = await db.query<{ rows: number; bytes: string; sha256: string }>(
    'SELECT rows, bytes::text AS bytes, sha256 FROM runbook_artifacts WHERE workflow_id = $1 AND name = $2',
    [meta.workflowId, meta.name],
  );
  if (existing.rows[0])
    return {
      name: meta.name,
      rows: existing.rows[0].rows,
      bytes: Number(existing.rows[0].bytes),
      sha256: existing.rows[0].sha256,
    };
  return db.transaction(async (tx) => {
    // the export reads one consistent snapshot of the audit trail
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO runbook_artifacts (workflow_id, name, content_type, incident_id, window_start, window_end, sha256)
       VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, '') RETURNING id`,
      [
        meta.workflowId,
        meta.name,
        meta.contentType,
        meta.incidentId ?? '',
        meta.windowStart ?? null,
        meta.windowEnd ?? null,
      ],
    );
    const id = rows[0]!.id;
    const hash = createHash('sha256');
    let seq = 0;
    let total = 0;
    let bytes = 0;
    for await (const chunk of chunks(tx)) {
      hash.update(chunk.body);
      bytes += Buffer.byteLength(chunk.body);
      total += chunk.rows;
      await tx.query('INSERT INTO runbook_artifact_chunks (artifact_id, seq, body) VALUES ($1, $2, $3)', [
        id,
        seq++,
        chunk.body,
      ]);
    }
    const sha256 = hash.digest('hex');
    await tx.query('UPDATE runbook_artifacts SET rows = $2, bytes = $3, sha256 = $4 WHERE id = $1', [
      id,
      total,
      bytes,
      sha256,
    ]);
    return { name: meta.name, rows: total, bytes, sha256 };
  });
}

export function createForensicsActivities({ db }: Pick<Runtime, 'db'>) {
  return {
    /** Every audit event of the window, as responders would grep them from the logs. */
    async exportAuditWindow(input: {
      workflowId: string;
      incidentId?: string;
      since: string;
      until: string;
    }): Promise<ArtifactInfo> {
      let truncated = false;
      const info = await storeArtifact(
        db,
        {
          workflowId: input.workflowId,
          name: 'audit-export.ndjson',
          contentType: 'application/x-ndjson',
          incidentId: input.incidentId,
          windowStart: input.since,
          windowEnd: input.until,
        },
        async function* (tx) {
          let after = '0';
          let total = 0;
          for (;;) {
            const { rows } = await tx.query<AuditRow>(
              `SELECT ${AUDIT_TRAIL_COLUMNS}
                 FROM audit_trail WHERE occurred_at >= $1 AND occurred_at < $2 AND id > $3 ORDER BY id LIMIT ${PAGE}`,
              [input.since, input.until, after],
            );
            if (rows.length === 0) return;
            total += rows.length;
            yield { body: rows.map((r) => `${JSON.stringify(auditRecord(r))}\n`).join(''), rows: rows.length };
            if (rows.length < PAGE) return;
            if (total >= MAX_EXPORT_ROWS) {
              truncated = true;
              return;
            }
            after = rows[rows.length - 1]!.id;
          }
        },
      );
      return truncated ? { ...info, truncated } : info;
    },

    /** The two database forensics queries, with a row limit. */
    async runAnomalyQueries(input: { workflowId: string; incidentId?: string }) {
      const massGeneration = await db.query<{ user_id: string; challenge_count: number; min: Date; max: Date }>(
        `SELECT user_id, COUNT(*)::int as challenge_count, MIN(created_at), MAX(created_at)
           FROM auth_challenges
          GROUP BY user_id
         HAVING COUNT(*) > 10
          ORDER BY challenge_count DESC
          LIMIT ${ANOMALY_ROWS}`,
      );
      const expiredAttempts = await db.query<{
        challenge_id: string;
        user_id: string;
        validation_attempts: number;
        last_attempt_at: Date;
      }>(
        `SELECT challenge_id, user_id, validation_attempts, last_attempt_at
           FROM challenge_validation_attempts
          WHERE challenge_expired = true
          ORDER BY validation_attempts DESC
          LIMIT ${ANOMALY_ROWS}`,
      );
      const report = {
        mass_token_generation: massGeneration.rows.map((r) => ({
          user_id: r.user_id,
          challenge_count: r.challenge_count,
          first: r.min.toISOString(),
          last: r.max.toISOString(),
        })),
        validation_on_expired: expiredAttempts.rows.map((r) => ({
          ...r,
          last_attempt_at: r.last_attempt_at.toISOString(),
        })),
      };
      const artifact = await storeArtifact(
        db,
        {
          workflowId: input.workflowId,
          name: 'anomalies.json',
          contentType: 'application/json',
          incidentId: input.incidentId,
        },
        async function* () {
          yield {
            body: `${JSON.stringify(report, null, 2)}\n`,
            rows: report.mass_token_generation.length + report.validation_on_expired.length,
          };
        },
      );
      return {
        artifact,
        massTokenGeneration: report.mass_token_generation.length,
        validationOnExpired: report.validation_on_expired.length,
        topUsers: report.mass_token_generation.slice(0, 10).map((r) => `${r.user_id} (${r.challenge_count})`),
        topExpired: report.validation_on_expired
          .slice(0, 10)
          .map((r) => `${r.challenge_id} (${r.user_id}, ${r.validation_attempts})`),
      };
    },
  };
}
