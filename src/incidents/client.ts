import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Database } from '../db/database';
import {
  INCIDENT_ERRORS,
  INCIDENT_ID_PATTERN,
  INCIDENT_WORKFLOW_TYPE,
  incidentId,
  type IncidentInput,
  type IncidentState,
} from '../shared/incidents';
import { IncidentStatusKey, IncidentTypeKey, SeverityKey } from '../shared/searchAttributes';
import type { incidentWorkflow } from '../workflows/incidents/incident';

/**
 * The client side of incidents, shared by the REST API, Slack and Alertmanager: opening an
 * INC workflow, finding an incident's run, and turning message failures into stable codes.
 */
export interface IncidentDeps {
  client: Client;
  db: Database;
  taskQueue: string;
}

const MAX_ATTEMPTS = 50;

export class IncidentStartError extends Error {
  override name = 'IncidentStartError';
}

/**
 * Opens an incident as workflow `INC-YYYY-MM-DD-NN`. NN is the day's next number in the
 * `incidents` table, reserved there by a row insert (unique per database), and the workflow is
 * started with REJECT_DUPLICATE, which makes it unique in the namespace too: on either
 * conflict (another replica, or another deployment sharing the namespace) the next NN is tried.
 */
export async function openIncident(
  deps: IncidentDeps,
  input: IncidentInput,
  now = new Date(),
): Promise<{ id: string; runId: string }> {
  const day = now.toISOString().slice(0, 10);
  const { rows } = await deps.db.query<{ next: number }>(
    `SELECT COALESCE(MAX(substring(id FROM '(\\d+)$')::int), 0) + 1 AS next FROM incidents WHERE id LIKE $1`,
    [`INC-${day}-%`],
  );
  let seq = rows[0]?.next ?? 1;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++, seq++) {
    const id = incidentId(day, seq);
    const reserved = await deps.db.write(
      `INSERT INTO incidents (id, type, severity, status, title, data_breach, detected_at, workflow_id, source)
       VALUES ($1, $2, $3, 'investigating', $4, $5, $6, $1, $7) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [
        id,
        input.type,
        input.severity,
        input.title,
        Boolean(input.dataBreach),
        input.detectedAt ?? now.toISOString(),
        input.source,
      ],
    );
    if (!reserved.rows[0]) continue;
    try {
      const handle = await deps.client.workflow.start<typeof incidentWorkflow>(INCIDENT_WORKFLOW_TYPE, {
        workflowId: id,
        taskQueue: deps.taskQueue,
        args: [input],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: IncidentTypeKey, value: input.type },
          { key: SeverityKey, value: input.severity },
          { key: IncidentStatusKey, value: 'investigating' },
        ],
      });
      return { id, runId: handle.firstExecutionRunId };
    } catch (err) {
      // the reservation is ours and nothing runs under it: release it either way
      await deps.db.write('DELETE FROM incidents WHERE id = $1 AND run_id IS NULL', [id]).catch(() => {});
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
  throw new IncidentStartError(`no free incident number for ${day} after ${MAX_ATTEMPTS} attempts`);
}

export interface IncidentRef {
  id: string;
  workflowId: string;
  runId?: string;
}

/** An INC id names its run through the projection; a workflow id (`alert-...`) names its latest run. */
export async function findIncident(db: Database, idOrWorkflowId: string): Promise<IncidentRef | undefined> {
  const { rows } = await db.query<{ id: string; workflow_id: string; run_id: string | null }>(
    'SELECT id, workflow_id, run_id FROM incidents WHERE id = $1 OR (workflow_id = $1 AND run_id IS NOT NULL) ORDER BY detected_at DESC LIMIT 1',
    [idOrWorkflowId],
  );
  const row = rows[0];
  if (row) return { id: row.id, workflowId: row.workflow_id, runId: row.run_id ?? undefined };
  if (INCIDENT_ID_PATTERN.test(idOrWorkflowId) || idOrWorkflowId.startsWith('alert-'))
    return { id: idOrWorkflowId, workflowId: idOrWorkflowId };
  return undefined;
}

export function incidentHandle(client: Client, ref: IncidentRef): WorkflowHandle<typeof incidentWorkflow> {
  return client.workflow.getHandle<typeof incidentWorkflow>(ref.workflowId, ref.runId);
}

export type IncidentErrorCode =
  { kind: 'rejected'; type: string; message: string } | { kind: 'not_found' } | { kind: 'closed' };

/** What went wrong with an update, in the terms the API answers with. */
export function classifyUpdateError(err: unknown): IncidentErrorCode | undefined {
  if (err instanceof WorkflowNotFoundError) return { kind: 'not_found' };
  const failure = err instanceof WorkflowUpdateFailedError ? err.cause : err;
  if (
    failure instanceof ApplicationFailure &&
    failure.type &&
    (INCIDENT_ERRORS as readonly string[]).includes(failure.type)
  ) {
    return { kind: 'rejected', type: failure.type, message: failure.message };
  }
  const message = err instanceof Error ? err.message : '';
  if (/workflow execution already completed|already completed/i.test(message)) return { kind: 'closed' };
  return undefined;
}

export function snakeCase(type: string): string {
  return type.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

export type { IncidentState };
