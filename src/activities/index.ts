import type { Runtime } from '../runtime';
import { createDbOpsActivities } from './dbOps';

/**
 * Every activity the worker registers, built from the process's runtime. Workflows import
 * only the type: `proxyActivities<Activities>()`.
 */
export function createActivities(runtime: Runtime) {
  return {
    ...createDbOpsActivities(runtime),
  };
}

export type Activities = ReturnType<typeof createActivities>;
