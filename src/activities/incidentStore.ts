/**
 * The `incidents` projection: one row per incident, written only by the incident workflow's
 * activities (and reserved by the API just before it starts an INC workflow). The workflow
 * is the source of truth; the row serves SQL reporting, the open-incidents gauge, and the
 * API once Temporal's retention has dropped a closed incident.
 */
import { renderReport } from '../incidents/report';
import type { Runtime } from '../runtime';
import { incidentId, type IncidentState } from '../shared/incidents';

export interface RegisterIncidentInput {
  workflowId: string;
  runId: string;
  /** UTC day (YYYY-MM-DD) of the workflow's start, for an incident that still needs an id */
  day: string;
  state: IncidentState;
}

export interface ProjectIncidentInput {
  workflowId: string;
  runId: string;
  state: IncidentState;
}

const seconds = (from: string, to: string) => (new Date(to).getTime() - new Date(from).getTime()) / 1000;

export function createIncidentStoreActivities({ db, metrics }: Pick<Runtime, 'db' | 'metrics'>) {
  async function nextSeq(day: string): Promise<number> {
    const { rows } = await db.query<{ next: number }>(
      `SELECT COALESCE(MAX(substring(id FROM '(\\d+)$')::int), 0) + 1 AS next FROM incidents WHERE id LIKE $1`,
      [`INC-${day}-%`],
    );
    return rows[0]?.next ?? 1;
  }

  return {
    /**
     * Ties the workflow run to its INC id and returns it. An INC workflow keeps its own id
     * (the API reserved the row); an Alertmanager workflow claims the day's next free number.
     * Idempotent: a retried call finds its own row.
     */
    async registerIncident(input: RegisterIncidentInput): Promise<{ id: string }> {
      const { workflowId, runId, state } = input;
      const existing = await db.query<{ id: string }>(
        'SELECT id FROM incidents WHERE workflow_id = $1 AND run_id = $2',
        [workflowId, runId],
      );
      if (existing.rows[0]) return { id: existing.rows[0].id };

      const values = [
        state.type,
        state.severity,
        state.status,
        state.title,
        state.dataBreach,
        state.detectedAt,
        workflowId,
        runId,
        state.source,
      ];
      const insert = `INSERT INTO incidents (id, type, severity, status, title, data_breach, detected_at, workflow_id, run_id, source, alert_group, state)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                      ON CONFLICT (id) DO NOTHING RETURNING id`;
      const alertGroup = workflowId === state.id ? null : workflowId;
      if (state.id) {
        const claimed = await db.write<{ id: string }>(
          `UPDATE incidents SET run_id = $2, workflow_id = $3, source = $4, state = $5, updated_at = now()
           WHERE id = $1 AND run_id IS NULL RETURNING id`,
          [state.id, runId, workflowId, state.source, state],
        );
        const inserted = claimed.rows[0]
          ? claimed
          : await db.write<{ id: string }>(insert, [state.id, ...values, alertGroup, state]);
        if (inserted.rows[0]) metrics.incidentsStarted.inc({ type: state.type, severity: state.severity });
        return { id: state.id };
      }
      // a new number per attempt: a conflict means another incident took it a moment ago
      for (let attempt = 0; attempt < 50; attempt++) {
        const id = incidentId(input.day, (await nextSeq(input.day)) + attempt);
        const result = await db.write<{ id: string }>(insert, [id, ...values, alertGroup, { ...state, id }]);
        if (result.rows[0]) {
          metrics.incidentsStarted.inc({ type: state.type, severity: state.severity });
          return { id };
        }
      }
      throw new Error('could not claim an incident id');
    },

    /** Mirrors the state into the row; observes time-to-acknowledge/resolve on the transition. */
    async projectIncident(input: ProjectIncidentInput): Promise<void> {
      const s = input.state;
      const report = s.status === 'resolved' ? renderReport(s) : null;
      const { rows } = await db.write<{ old_ack: Date | null; old_resolved: Date | null }>(
        `WITH old AS (
           SELECT id, acknowledged_at, resolved_at FROM incidents WHERE workflow_id = $1 AND run_id = $2 FOR UPDATE
         )
         UPDATE incidents i SET type = $3, severity = $4, status = $5, title = $6, owner = $7, data_breach = $8,
           acknowledged_at = $9, resolved_at = $10, state = $11, report = COALESCE($12, i.report), updated_at = now()
         FROM old WHERE i.id = old.id
         RETURNING old.acknowledged_at AS old_ack, old.resolved_at AS old_resolved`,
        [
          input.workflowId,
          input.runId,
          s.type,
          s.severity,
          s.status,
          s.title,
          s.owner ?? null,
          s.dataBreach,
          s.acknowledgedAt ?? null,
          s.resolvedAt ?? null,
          s,
          report,
        ],
      );
      const old = rows[0];
      if (!old) return;
      if (!old.old_ack && s.acknowledgedAt)
        metrics.incidentTimeToAcknowledge.observe({ severity: s.severity }, seconds(s.detectedAt, s.acknowledgedAt));
      if (!old.old_resolved && s.resolvedAt)
        metrics.incidentTimeToResolve.observe({ severity: s.severity }, seconds(s.detectedAt, s.resolvedAt));
    },
  };
}
