/**
 * Incident operations as the REST API, Slack and Alertmanager perform them: errors come back
 * as ApiErrors with stable codes (the workflow's failure types in snake_case).
 */
import type { UpdateDefinition } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import {
  classifyUpdateError,
  findIncident,
  openIncident,
  readIncidentState,
  snakeCase,
  updateIncident,
  type IncidentDeps,
  type IncidentRef,
  type UpdateOutcome,
} from '../../incidents/client';
import type { IncidentInput, IncidentState } from '../../shared/incidents';
import { ApiError } from '../errors';

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

export function deps(app: FastifyInstance): IncidentDeps {
  return { client: app.warden.temporal.client, db: app.warden.db, taskQueue: app.warden.config.temporal.taskQueue };
}

export async function startIncident(
  app: FastifyInstance,
  input: IncidentInput,
): Promise<{ id: string; runId: string }> {
  return openIncident(deps(app), input);
}

/**
 * Sends an update. The validator's verdict comes back at once (a rejection throws an
 * ApiError); the result is awaited up to `waitMs`, after which `{ done: false }` says it is
 * still running.
 */
export async function sendUpdate<Arg>(
  app: FastifyInstance,
  id: string,
  def: UpdateDefinition<IncidentState, [Arg]>,
  arg: Arg,
  waitMs = 25_000,
): Promise<UpdateOutcome> {
  const ref = await resolveRef(app, id);
  try {
    return await updateIncident(deps(app), ref, def, arg, waitMs);
  } catch (err) {
    throw incidentApiError(err, ref.id) ?? err;
  }
}

export async function readState(app: FastifyInstance, id: string): Promise<IncidentState> {
  const state = await readIncidentState(deps(app), await resolveRef(app, id));
  if (!state) throw new ApiError(404, 'incident_not_found', `no incident ${id}`);
  return state;
}
