/**
 * The client side of incidents, shared by the REST API, Slack and Alertmanager: opening an
 * INC workflow (or an alert group's, by signal-with-start), finding an incident's run,
 * listing incidents, reading their state, sending updates, and turning message failures into
 * stable codes.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type UpdateDefinition } from '@temporalio/common';
import type { Database } from '../db/database';
import {
  alertNotificationSignal,
  INCIDENT_ERRORS,
  INCIDENT_ID_PATTERN,
  INCIDENT_WORKFLOW_TYPE,
  incidentId,
  incidentStateQuery,
  type AlertNotificationInput,
  type IncidentInput,
  type IncidentState,
  type IncidentStatus,
  type IncidentType,
  type Severity,
} from '../shared/incidents';
import { incidentSearchAttributes, operatorKeywords } from '../shared/searchAttributes';
import type { incidentWorkflow } from '../workflows/incidents/incident';

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
 * conflict (another replica, or another deployment sharing the namespace) a later NN is tried.
 * A replica's conflict is the next number; a namespace conflict means numbers this database
 * never saw are taken, as many as the other deployments opened that day, so each one in a row
 * skips one number more than the last (1, 2, 3...): 50 tries reach past 1,200 numbers.
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
  let skip = 0;
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
        typedSearchAttributes: incidentSearchAttributes({
          type: input.type,
          severity: input.severity,
          status: 'investigating',
          id,
          operators: operatorKeywords([input.openedBy]),
        }),
      });
      return { id, runId: handle.firstExecutionRunId };
    } catch (err) {
      // the reservation is ours and nothing runs under it: release it either way
      await deps.db.write('DELETE FROM incidents WHERE id = $1 AND run_id IS NULL', [id]).catch(() => {});
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      seq += skip++;
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

/**
 * One alert group's notification to its incident, `alert-<hash>`: a firing one by
 * signal-with-start (repeats land on the open incident), an all-clear only to an incident that
 * is open (`runId` null: there was none). `incidentId` is the INC id the run claimed, once it has.
 */
export async function notifyAlertGroup(
  deps: IncidentDeps,
  workflowId: string,
  signal: AlertNotificationInput,
  input: () => IncidentInput,
): Promise<{ runId: string | null; incidentId: string | null }> {
  const incidentOf = async (runId: string) => {
    const { rows } = await deps.db.query<{ id: string }>(
      'SELECT id FROM incidents WHERE workflow_id = $1 AND run_id = $2',
      [workflowId, runId],
    );
    return rows[0]?.id ?? null;
  };
  if (signal.firing.length === 0) {
    const handle = deps.client.workflow.getHandle(workflowId);
    let runId: string;
    try {
      await handle.signal(alertNotificationSignal, signal);
      runId = (await handle.describe()).runId;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      return { runId: null, incidentId: null };
    }
    return { runId, incidentId: await incidentOf(runId) };
  }
  const start = input();
  const handle = await deps.client.workflow.signalWithStart<typeof incidentWorkflow, [AlertNotificationInput]>(
    INCIDENT_WORKFLOW_TYPE,
    {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [start],
      signal: alertNotificationSignal,
      signalArgs: [signal],
      // the INC id is claimed inside the workflow, which then sets IncidentId
      typedSearchAttributes: incidentSearchAttributes({
        type: start.type,
        severity: start.severity,
        status: 'investigating',
        operators: [],
      }),
    },
  );
  return { runId: handle.signaledRunId, incidentId: await incidentOf(handle.signaledRunId) };
}

export interface IncidentSummary {
  id: string;
  workflow_id: string;
  run_id: string;
  type: string;
  severity: string;
  status: string;
  title: string | null;
  started_at: string;
  closed: boolean;
}

/** The newest incidents on this task queue, by their search attributes, with the projection's id and title. */
export async function listIncidents(
  deps: IncidentDeps,
  filter: { type?: IncidentType; severity?: Severity; status?: IncidentStatus; limit: number },
): Promise<IncidentSummary[]> {
  // every value is one of the enums: nothing user-typed reaches the query text
  const query = [
    `WorkflowType = '${INCIDENT_WORKFLOW_TYPE}'`,
    `TaskQueue = '${deps.taskQueue.replace(/'/g, '')}'`,
    ...(filter.type ? [`IncidentType = '${filter.type}'`] : []),
    ...(filter.severity ? [`Severity = '${filter.severity}'`] : []),
    ...(filter.status ? [`IncidentStatus = '${filter.status}'`] : []),
  ].join(' AND ');
  const found: Array<Omit<IncidentSummary, 'id' | 'title'>> = [];
  for await (const wf of deps.client.workflow.list({ query })) {
    const attribute = (name: string) =>
      String(wf.typedSearchAttributes.getAll().find((p) => p.key.name === name)?.value ?? '');
    found.push({
      workflow_id: wf.workflowId,
      run_id: wf.runId,
      type: attribute('IncidentType'),
      severity: attribute('Severity'),
      status: attribute('IncidentStatus'),
      started_at: wf.startTime.toISOString(),
      closed: wf.status.name !== 'RUNNING',
    });
    if (found.length >= filter.limit) break;
  }
  const { rows } = await deps.db.query<{ id: string; workflow_id: string; run_id: string; title: string }>(
    // a run not yet registered is found by its INC workflow id
    'SELECT id, workflow_id, run_id, title FROM incidents WHERE run_id = ANY($1) OR (run_id IS NULL AND workflow_id = ANY($2))',
    [found.map((f) => f.run_id), found.map((f) => f.workflow_id)],
  );
  const byRun = new Map(rows.map((r) => [r.run_id ?? r.workflow_id, r]));
  return found.map((f) => {
    const row = byRun.get(f.run_id) ?? byRun.get(f.workflow_id);
    return { ...f, id: row?.id ?? f.workflow_id, title: row?.title ?? null };
  });
}

/** The live state from the workflow, or the projection's last copy once the history is gone. */
export async function readIncidentState(deps: IncidentDeps, ref: IncidentRef): Promise<IncidentState | undefined> {
  try {
    return await incidentHandle(deps.client, ref).query(incidentStateQuery);
  } catch (err) {
    if (classifyUpdateError(err)?.kind !== 'not_found') throw err;
    const { rows } = await deps.db.query<{ state: IncidentState | null }>('SELECT state FROM incidents WHERE id = $1', [
      ref.id,
    ]);
    return rows[0]?.state ?? undefined;
  }
}

export type UpdateOutcome = { done: true; state: IncidentState } | { done: false };

/**
 * Sends an update. The validator's verdict comes back at once (a rejection throws); the result
 * is awaited up to `waitMs` (updates that run the checklist can take longer than a request
 * should), after which `{ done: false }` says it is still running.
 */
export async function updateIncident<Arg>(
  deps: IncidentDeps,
  ref: IncidentRef,
  def: UpdateDefinition<IncidentState, [Arg]>,
  arg: Arg,
  waitMs: number,
): Promise<UpdateOutcome> {
  const update = await incidentHandle(deps.client, ref).startUpdate(def, {
    args: [arg],
    waitForStage: WorkflowUpdateStage.ACCEPTED,
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'pending'>((resolve) => {
    timer = setTimeout(() => resolve('pending'), waitMs);
  });
  const outcome = update.result();
  // past the wait nobody awaits it: a late failure is on the incident's timeline, not here
  outcome.catch(() => {});
  const result = await Promise.race([outcome, timeout]).finally(() => clearTimeout(timer));
  return result === 'pending' ? { done: false } : { done: true, state: result };
}
