import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import {
  changeDatabaseControlUpdate,
  DATABASE_CONTROL_INVALID,
  DATABASE_CONTROL_MEMO,
  databaseControlQuery,
  INITIAL_DATABASE_CONTROL,
  invalidControlChange,
  type DatabaseControlChange,
  type DatabaseControlEvent,
  type DatabaseControlState,
} from '../../shared/database';

const HISTORY = 100;
/** changes per run before continue-as-new keeps the history short */
const CHANGES_PER_RUN = 500;

export interface DatabaseControlInput {
  state?: DatabaseControlState;
  history?: DatabaseControlEvent[];
}

function describe(change: DatabaseControlChange): string {
  const parts: string[] = [];
  if (change.readOnly !== undefined) parts.push(change.readOnly ? 'read-only on' : 'read-only off');
  if (change.pool !== undefined)
    parts.push(change.pool ? `pool ${change.pool.max}/${change.pool.maxIdle} idle` : 'pool defaults');
  if (change.primary !== undefined)
    parts.push(change.primary ? `primary pinned to ${change.primary}` : 'primary unpinned');
  return parts.join(', ') + (change.reason ? ` (${change.reason})` : '');
}

/**
 * The desired database state of a deployment, one long-lived workflow per task queue. Every
 * process reads it from this workflow's memo (DescribeWorkflowExecution answers without a
 * worker, and Temporal is up when Postgres is not) and applies it to its own pool.
 */
export async function databaseControlWorkflow(input: DatabaseControlInput = {}): Promise<void> {
  let state: DatabaseControlState = input.state ?? INITIAL_DATABASE_CONTROL;
  const history: DatabaseControlEvent[] = input.history ?? [];
  let changes = 0;
  upsertMemo({ [DATABASE_CONTROL_MEMO]: state });

  setHandler(
    changeDatabaseControlUpdate,
    (change) => {
      const at = new Date().toISOString();
      state = {
        readOnly:
          change.readOnly === undefined
            ? state.readOnly
            : change.readOnly
              ? { on: true, reason: change.reason, by: change.by, since: state.readOnly.on ? state.readOnly.since : at }
              : { on: false },
        pool: change.pool === undefined ? state.pool : change.pool,
        primary: change.primary === undefined ? state.primary : change.primary,
        generation: state.generation + 1,
        updatedAt: at,
        updatedBy: change.by,
      };
      history.push({ at, by: change.by, change: describe(change) });
      if (history.length > HISTORY) history.splice(0, history.length - HISTORY);
      changes += 1;
      upsertMemo({ [DATABASE_CONTROL_MEMO]: state });
      return state;
    },
    {
      validator: (change) => {
        const why = invalidControlChange(change);
        if (why) throw ApplicationFailure.nonRetryable(why, DATABASE_CONTROL_INVALID);
      },
    },
  );
  setHandler(databaseControlQuery, () => ({ state, history }));

  await condition(() => changes >= CHANGES_PER_RUN || workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  await continueAsNew<typeof databaseControlWorkflow>({ state, history });
}
