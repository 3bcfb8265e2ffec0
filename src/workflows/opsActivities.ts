import { proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { opsTaskQueue } from '../shared/taskQueues';

/**
 * Activities on the ops task queue of this workflow's own queue (src/shared/taskQueues.ts).
 * Call it inside a workflow, never at module load: the name comes from workflowInfo().
 */
export function opsActivities(options: ActivityOptions): Activities {
  return proxyActivities<Activities>({ ...options, taskQueue: opsTaskQueue(workflowInfo().taskQueue) });
}
