/**
 * The runbook_runs / runbook_steps projection: the only module that writes those rows (the
 * admin API's start, the framework's bookkeeping activities, the db-failover runbook's late
 * record) and the reads that answer from them. The workflow is the source of truth; these rows
 * answer after Temporal's retention and feed SQL reporting. Every write is an upsert keyed by
 * the workflow id, so retries and replays change nothing twice.
 */
import { DatabaseReadOnlyError, type Database, type Queryable } from '../db/database';
import type { Severity } from '../shared/incidents';
import type { RunbookStatus, StepStatus } from '../shared/runbooks';

export interface RunRecord {
  workflowId: string;
  runbook: string;
  /** '' for a standalone run */
  incidentId: string;
  severity: Severity;
  startedBy: string | null;
}

/**
 * While Postgres refuses writes (read-only degradation, or only a standby reachable: the
 * db-failover runbook runs in exactly that state) a projection write is skipped instead of
 * failing or stalling the run; the run is found through Temporal until its row exists.
 */
export async function bestEffort<T>(write: () => Promise<T>): Promise<T | undefined> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof DatabaseReadOnlyError) return undefined;
    throw err;
  }
}

export async function insertRun(q: Queryable, run: RunRecord): Promise<void> {
  await q.query(
    `INSERT INTO runbook_runs (workflow_id, runbook, incident_id, severity, status, started_by)
     VALUES ($1, $2, NULLIF($3, ''), $4, 'running', $5) ON CONFLICT (workflow_id) DO NOTHING`,
    [run.workflowId, run.runbook, run.incidentId, run.severity, run.startedBy],
  );
}

/** One step run's outcome (`step` carries `#n` from the second run on); true when its status changed. */
export async function recordStep(
  q: Queryable,
  s: { workflowId: string; step: string; status: StepStatus; summary: string | null },
): Promise<boolean> {
  const { rows } = await q.query(
    `INSERT INTO runbook_steps (workflow_id, step, status, summary) VALUES ($1, $2, $3, $4)
     ON CONFLICT (workflow_id, step) DO UPDATE SET status = EXCLUDED.status, summary = EXCLUDED.summary, updated_at = now()
       WHERE runbook_steps.status IS DISTINCT FROM EXCLUDED.status
     RETURNING 1`,
    [s.workflowId, s.step, s.status, s.summary?.slice(0, 2000) ?? null],
  );
  return rows.length > 0;
}

export async function finishRun(
  q: Queryable,
  end: { workflowId: string; status: Exclude<RunbookStatus, 'running'>; summary: string },
): Promise<void> {
  await q.query(
    `UPDATE runbook_runs SET status = $2, summary = $3, ended_at = COALESCE(ended_at, now()) WHERE workflow_id = $1`,
    [end.workflowId, end.status, end.summary.slice(0, 4000)],
  );
}

// ---- reads ----------------------------------------------------------------------------------

export async function runbookOfRun(db: Database, workflowId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ runbook: string }>('SELECT runbook FROM runbook_runs WHERE workflow_id = $1', [
    workflowId,
  ]);
  return rows[0]?.runbook;
}

export async function listRuns(
  db: Database,
  filter: { runbook?: string; status?: string; incidentId?: string; limit: number },
): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    `SELECT workflow_id, runbook, incident_id, severity, status, started_by, started_at, ended_at, summary FROM runbook_runs
      WHERE ($1::text IS NULL OR runbook = $1) AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR incident_id = $3)
      ORDER BY started_at DESC LIMIT $4`,
    [filter.runbook ?? null, filter.status ?? null, filter.incidentId ?? null, filter.limit],
  );
  return rows;
}

/** A run as the projection has it, steps included; undefined when it has no row. */
export async function projectedRun(db: Database, workflowId: string): Promise<Record<string, unknown> | undefined> {
  const run = await db.query('SELECT * FROM runbook_runs WHERE workflow_id = $1', [workflowId]);
  if (!run.rows[0]) return undefined;
  const steps = await db.query(
    'SELECT step, status, summary, updated_at FROM runbook_steps WHERE workflow_id = $1 ORDER BY updated_at',
    [workflowId],
  );
  return { ...run.rows[0], steps: steps.rows, from: 'projection' };
}

export async function listArtifacts(db: Database, workflowId: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    'SELECT name, content_type, rows, bytes::text AS bytes, sha256, window_start, window_end, created_at FROM runbook_artifacts WHERE workflow_id = $1 ORDER BY id',
    [workflowId],
  );
  return rows;
}

/** An artifact's metadata and its body as a stream of chunks, read one at a time as they are sent. */
export async function openArtifact(
  db: Database,
  workflowId: string,
  name: string,
): Promise<{ contentType: string; sha256: string; body: AsyncIterable<string> } | undefined> {
  const { rows } = await db.query<{ id: string; content_type: string; sha256: string }>(
    'SELECT id, content_type, sha256 FROM runbook_artifacts WHERE workflow_id = $1 AND name = $2',
    [workflowId, name],
  );
  const artifact = rows[0];
  if (!artifact) return undefined;
  async function* body() {
    for (let seq = 0; ; seq++) {
      const chunk = await db.query<{ body: string }>(
        'SELECT body FROM runbook_artifact_chunks WHERE artifact_id = $1 AND seq = $2',
        [artifact!.id, seq],
      );
      if (!chunk.rows[0]) return;
      yield chunk.rows[0].body;
    }
  }
  return { contentType: artifact.content_type, sha256: artifact.sha256, body: body() };
}
