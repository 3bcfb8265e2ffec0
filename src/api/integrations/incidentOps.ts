import { WorkflowUpdateStage } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import {
  classifyUpdateError,
  findIncident,
  incidentHandle,
  openIncident,
  snakeCase,
  type IncidentRef,
} from '../../incidents/client';
import type { UpdateDefinition } from '@temporalio/common';
import { incidentStateQuery, type IncidentInput, type IncidentState } from '../../shared/incidents';
import { ApiError } from '../errors';

/**
 * Incident operations as the REST API, Slack and Alertmanager perform them: errors come back
 * as ApiErrors with stable codes (the workflow's failure types in snake_case).
 */

const NOT_FOUND_TYPES = new Set(['UnknownTask', 'UnknownChecklistItem']);

export function incidentApiError(err: unknown, id: string): ApiError | undefined {
  const c = classifyUpdateError(err);
  if (!c) return undefined;
  if (c.kind === 'not_found') return new ApiError(404, 'incident_not_found', `no incident ${id}`);
  if (c.kind === 'closed') return new ApiError(409, 'incident_closed', `${id} is closed`);
  if (c.type === 'InvalidInput') return new ApiError(400, 'invalid_request', c.message);
  return new ApiError(NOT_FOUND_TYPES.has(c.type) ? 404 : 409, snakeCase(c.type), c.message);
}

export async function resolveRef(app: FastifyInstance, id: string): Promise<IncidentRef> {
  const ref = await findIncident(app.warden.db, id);
  if (!ref) throw new ApiError(404, 'incident_not_found', `no incident ${id}`);
  return ref;
}

export function deps(app: FastifyInstance) {
  return { client: app.warden.temporal.client, db: app.warden.db, taskQueue: app.warden.config.temporal.taskQueue };
}

export async function startIncident(
  app: FastifyInstance,
  input: IncidentInput,
): Promise<{ id: string; runId: string }> {
  return openIncident(deps(app), input);
}

export type UpdateOutcome = { done: true; state: IncidentState } | { done: false };

/**
 * Sends an update. The validator's verdict comes back at once (a rejection throws an
 * ApiError); the result is awaited up to `waitMs` (updates that run the checklist can take
 * longer than a request should), after which `{ done: false }` says it is still running.
 */
export async function sendUpdate<Arg>(
  app: FastifyInstance,
  id: string,
  def: UpdateDefinition<IncidentState, [Arg]>,
  arg: Arg,
  waitMs = 25_000,
): Promise<UpdateOutcome> {
  const ref = await resolveRef(app, id);
  const handle = incidentHandle(app.warden.temporal.client, ref);
  try {
    const update = await handle.startUpdate(def, { args: [arg], waitForStage: WorkflowUpdateStage.ACCEPTED });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'pending'>((resolve) => {
      timer = setTimeout(() => resolve('pending'), waitMs);
    });
    const outcome = update.result();
    // past the wait nobody awaits it: a late failure is on the incident's timeline, not here
    outcome.catch(() => {});
    const result = await Promise.race([outcome, timeout]).finally(() => clearTimeout(timer));
    return result === 'pending' ? { done: false } : { done: true, state: result };
  } catch (err) {
    throw incidentApiError(err, ref.id) ?? err;
  }
}

/** The live state from the workflow, or the projection's last copy once the history is gone. */
export async function readState(app: FastifyInstance, id: string): Promise<IncidentState> {
  const ref = await resolveRef(app, id);
  try {
    return await incidentHandle(app.warden.temporal.client, ref).query(incidentStateQuery);
  } catch (err) {
    const c = classifyUpdateError(err);
    if (c?.kind !== 'not_found') throw err;
    const { rows } = await app.warden.db.query<{ state: IncidentState | null }>(
      'SELECT state FROM incidents WHERE id = $1',
      [ref.id],
    );
    if (!rows[0]?.state) throw new ApiError(404, 'incident_not_found', `no incident ${id}`);
    return rows[0].state;
  }
}
