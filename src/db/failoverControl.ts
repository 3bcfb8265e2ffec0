/**
 * The client side of the database control plane (src/workflows/runbooks/dbFailoverControl.ts):
 * reading the desired state, and changing it. The admin API and the failover runbook's
 * activities change it; every process's topology watcher reads it.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  changeDatabaseControlUpdate,
  DATABASE_CONTROL_INVALID,
  DATABASE_CONTROL_MEMO,
  DATABASE_CONTROL_WORKFLOW_TYPE,
  databaseControlQuery,
  databaseControlWorkflowId,
  type DatabaseControlChange,
  type DatabaseControlEvent,
  type DatabaseControlState,
} from '../shared/database';
import type { databaseControlWorkflow } from '../workflows/runbooks/dbFailoverControl';

export interface ControlDeps {
  client: Client;
  taskQueue: string;
}

export class InvalidControlChangeError extends Error {
  override name = 'InvalidControlChangeError';
}

/** The desired state, from the workflow's memo: null when no one has changed anything yet. */
export async function readDatabaseControl(deps: ControlDeps): Promise<DatabaseControlState | null> {
  try {
    const described = await deps.client.workflow.getHandle(databaseControlWorkflowId(deps.taskQueue)).describe();
    if (described.status.name !== 'RUNNING' && described.status.name !== 'CONTINUED_AS_NEW') return null;
    return (described.memo?.[DATABASE_CONTROL_MEMO] as DatabaseControlState | undefined) ?? null;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** The state with its recent changes (needs a worker to answer the query). */
export async function databaseControlHistory(
  deps: ControlDeps,
): Promise<{ state: DatabaseControlState; history: DatabaseControlEvent[] } | null> {
  try {
    return await deps.client.workflow.getHandle(databaseControlWorkflowId(deps.taskQueue)).query(databaseControlQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/**
 * Applies a change and returns the new state. The control workflow is started on first use
 * (start, then update: update-with-start would be one call, but not every server, e.g. the
 * time-skipping test server, takes it).
 */
export async function changeDatabaseControl(
  deps: ControlDeps,
  change: DatabaseControlChange,
): Promise<DatabaseControlState> {
  const workflowId = databaseControlWorkflowId(deps.taskQueue);
  try {
    await deps.client.workflow.start<typeof databaseControlWorkflow>(DATABASE_CONTROL_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [{}],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  try {
    return await deps.client.workflow
      .getHandle(workflowId)
      .executeUpdate(changeDatabaseControlUpdate, { args: [change] });
  } catch (err) {
    if (
      err instanceof WorkflowUpdateFailedError &&
      err.cause instanceof ApplicationFailure &&
      err.cause.type === DATABASE_CONTROL_INVALID
    ) {
      throw new InvalidControlChangeError(err.cause.message);
    }
    throw err;
  }
}
