/**
 * The client side of runbooks, used by the admin API: starting a run (standalone, or attached to
 * an open incident), finding and reading it, steering it through its updates, and its
 * artifacts. Failures come out as RunbookError with a stable code; the API maps each to a status.
 */
import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Database } from '../db/database';
import { classifyUpdateError, findIncident, incidentHandle, snakeCase } from '../incidents/client';
import { incidentStateQuery, type IncidentState, type Severity } from '../shared/incidents';
import {
  approveStepUpdate,
  cancelRunbookUpdate,
  markFalsePositivesUpdate,
  RUNBOOK_ERRORS,
  runbookStateQuery,
  type ApproveStepInput,
  type CancelRunbookInput,
  type MarkFalsePositivesInput,
  type RunbookStartInput,
  type RunbookState,
} from '../shared/runbooks';
import { tooBroad, type BlockLimits } from '../auth/blocklist';
import { parseCidr } from '../auth/clientIp';
import type { Authority } from '../shared/roles';
import { runbookSearchAttributes } from '../shared/searchAttributes';
import { checkRunbookParams } from './params';
import { bestEffort, insertRun, listArtifacts, projectedRun, runbookOfRun } from './projection';
import { RUNBOOK_NAMES, RUNBOOKS, runbookOfWorkflowType, type RunbookName } from '../shared/runbookRegistry';

export interface RunbookDeps {
  client: Client;
  db: Database;
  taskQueue: string;
  /** a run naming a broader block is refused at the door (its step would refuse it anyway) */
  blockLimits: BlockLimits;
}

export type RunbookErrorCode =
  | 'unknown_runbook'
  | 'invalid_request'
  | 'runbook_not_found'
  | 'incident_not_found'
  | 'incident_closed'
  | 'runbook_already_running'
  | 'runbook_finished'
  | 'not_supported'
  | 'unknown_step'
  | 'not_awaiting_approval'
  | 'already_cancelling'
  | 'block_too_broad';

export class RunbookError extends Error {
  override name = 'RunbookError';
  constructor(
    readonly code: RunbookErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** An update's failure in the terms above: the run has ended, or the workflow refused the input. */
function updateError(err: unknown, id: string): RunbookError | undefined {
  const c = classifyUpdateError(err);
  if (c?.kind === 'not_found' || c?.kind === 'closed')
    return new RunbookError('runbook_finished', `runbook ${id} has finished`);
  const failure = (err as { cause?: { type?: string; message?: string } }).cause;
  const type = failure?.type ?? (err as { type?: string }).type;
  if (!type || !(RUNBOOK_ERRORS as readonly string[]).includes(type)) return undefined;
  const code = type === 'InvalidInput' ? 'invalid_request' : (snakeCase(type) as RunbookErrorCode);
  return new RunbookError(code, failure?.message ?? type);
}

export interface StartRequest {
  name: string;
  severity: Severity;
  by: string;
  /** the starter's role: at P0, whether containment waits for an admin */
  role?: Authority;
  incidentId?: string;
  users?: string[];
  ips?: string[];
  params?: Record<string, unknown>;
  approve?: string[];
  approvalSeverities?: Severity[];
  /** names the run: the same request id starts nothing twice */
  requestId?: string;
}

export interface Started {
  workflowId: string;
  runbook: RunbookName;
  incidentId: string | null;
  /** the request id named a run that already exists */
  existing: boolean;
}

/** The open incident a run attaches to; refuses a resolved one and a second run of the same runbook. */
async function attachTo(deps: RunbookDeps, id: string, workflowType: string, name: string) {
  const ref = await findIncident(deps.db, id);
  if (!ref) throw new RunbookError('incident_not_found', `no incident ${id}`);
  let state: IncidentState;
  try {
    state = await incidentHandle(deps.client, ref).query(incidentStateQuery);
  } catch (err) {
    if (classifyUpdateError(err)?.kind === 'not_found')
      throw new RunbookError('incident_not_found', `no incident ${id}`);
    throw err;
  }
  if (state.status === 'resolved') throw new RunbookError('incident_closed', `${id} is resolved`);
  if (state.runbook?.workflowType === workflowType && state.runbook.status === 'running')
    throw new RunbookError('runbook_already_running', `${id} already runs ${name} as ${state.runbook.workflowId}`);
  return { incidentId: state.id || ref.id, workflowId: ref.workflowId, state };
}

/**
 * Starts `runbook-<name>-<request id or uuid>`. Its projection row is written first, so the run
 * can be read at once; while Postgres refuses writes the run still starts (the db-failover
 * runbook has to) and is found through Temporal until its row exists. REJECT_DUPLICATE makes a
 * repeated request id name the existing run instead of starting a second.
 */
export async function startRunbook(deps: RunbookDeps, req: StartRequest): Promise<Started> {
  const name = req.name as RunbookName;
  if (!RUNBOOK_NAMES.includes(name))
    throw new RunbookError('unknown_runbook', `no runbook ${req.name}; runbooks: ${RUNBOOK_NAMES.join(', ')}`);
  const { incidentType: type, workflowType } = RUNBOOKS[name];
  const checked = checkRunbookParams(name, req.params ?? {});
  if (!checked.ok) throw new RunbookError('invalid_request', checked.message);
  for (const ip of req.ips ?? []) {
    const cidr = parseCidr(ip);
    const refused = cidr && tooBroad(cidr, deps.blockLimits);
    if (refused) throw new RunbookError('block_too_broad', refused.message);
  }

  const incident = req.incidentId ? await attachTo(deps, req.incidentId, workflowType, name) : undefined;
  const incidentId = incident?.incidentId ?? '';
  const input: RunbookStartInput = {
    incidentId,
    incidentWorkflowId: incident?.workflowId ?? '',
    type,
    severity: req.severity,
    // what the request names, else what the incident it attaches to says is affected
    affected: {
      users: req.users ?? incident?.state.affected.users ?? [],
      ips: req.ips ?? incident?.state.affected.ips ?? [],
      providers: incident?.state.affected.providers ?? [],
    },
    dataBreach: incident?.state.dataBreach ?? false,
    ddos: incident?.state.ddos ?? false,
    startedBy: req.by,
    ...(req.role ? { startedByRole: req.role } : {}),
    params: checked.value,
    preApproved: req.approve,
    ...(req.approvalSeverities ? { approvalSeverities: req.approvalSeverities } : {}),
  };
  const workflowId = `runbook-${name}-${req.requestId ?? randomUUID()}`;
  await bestEffort(() =>
    insertRun(deps.db.writer, { workflowId, runbook: name, incidentId, severity: req.severity, startedBy: req.by }),
  );
  const started: Started = { workflowId, runbook: name, incidentId: incidentId || null, existing: false };
  try {
    await deps.client.workflow.start(workflowType, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: runbookSearchAttributes(name, type, req.severity, {
        incidentId: input.incidentId,
        startedBy: req.by,
      }),
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError) || !req.requestId) throw err;
    return { ...started, existing: true };
  }
  return started;
}

/**
 * A run's handle and runbook. Without a projection row (a run started while Postgres refused
 * writes) the run is still found in Temporal, by its workflow type.
 */
export async function findRun(deps: RunbookDeps, id: string): Promise<{ handle: WorkflowHandle; runbook: string }> {
  const handle = deps.client.workflow.getHandle(id);
  const projected = await runbookOfRun(deps.db, id);
  if (projected) return { handle, runbook: projected };
  const type = await handle.describe().then(
    (d) => d.type,
    (err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    },
  );
  const runbook = type === undefined ? undefined : runbookOfWorkflowType(type);
  if (!runbook) throw new RunbookError('runbook_not_found', `no runbook run ${id}`);
  return { handle, runbook };
}

/** The run's live state; after Temporal's retention, what the projection kept. */
export async function readRun(deps: RunbookDeps, id: string): Promise<RunbookState | Record<string, unknown>> {
  const { handle } = await findRun(deps, id);
  try {
    return await handle.query(runbookStateQuery);
  } catch (err) {
    if (classifyUpdateError(err)?.kind !== 'not_found') throw err;
    const projected = await projectedRun(deps.db, id);
    if (!projected) throw new RunbookError('runbook_not_found', `no runbook run ${id}`);
    return projected;
  }
}

async function update<Arg>(
  deps: RunbookDeps,
  id: string,
  def: UpdateDefinition<RunbookState, [Arg]>,
  arg: Arg,
  handle?: WorkflowHandle,
): Promise<RunbookState> {
  const h = handle ?? (await findRun(deps, id)).handle;
  try {
    return await h.executeUpdate(def, { args: [arg] });
  } catch (err) {
    throw updateError(err, id) ?? err;
  }
}

export const decideStep = (deps: RunbookDeps, id: string, input: ApproveStepInput) =>
  update(deps, id, approveStepUpdate, input);

export const cancelRun = (deps: RunbookDeps, id: string, input: CancelRunbookInput) =>
  update(deps, id, cancelRunbookUpdate, input);

export async function markFalsePositives(
  deps: RunbookDeps,
  id: string,
  input: MarkFalsePositivesInput,
): Promise<RunbookState> {
  const { handle, runbook } = await findRun(deps, id);
  const entry = RUNBOOKS[runbook as RunbookName] as { falsePositives?: boolean } | undefined;
  if (!entry?.falsePositives) throw new RunbookError('not_supported', `runbook ${runbook} takes no false positives`);
  return update(deps, id, markFalsePositivesUpdate, input, handle);
}

export async function runArtifacts(deps: RunbookDeps, id: string): Promise<Record<string, unknown>[]> {
  await findRun(deps, id);
  return listArtifacts(deps.db, id);
}
