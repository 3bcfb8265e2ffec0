import type { Runtime } from '../runtime';
import { createAuthActivities } from './auth';
import { createAuthAdminActivities } from './authAdmin';
import { createCanaryActivities } from './canary';
import { createDbOpsActivities } from './dbOps';
import { createDeliveryActivities } from './delivery';
import { createIncidentActivities } from './incidents';
import { createPrivacyActivities } from './privacy';
import { createRetentionActivities } from './retention';
import { createRunbookActivities } from './runbook';
import { createRunbookOutageActivities } from './runbookOutage';
import { createSmsPumpingActivities } from './smsPumping';

/**
 * Every activity the worker registers, built from the process's runtime. Workflows import
 * only the type: `proxyActivities<Activities>()`.
 */
export function createActivities(runtime: Runtime) {
  return {
    ...createDbOpsActivities(runtime),
    ...createAuthActivities(runtime),
    ...createAuthAdminActivities(runtime),
    ...createCanaryActivities(runtime),
    ...createDeliveryActivities(runtime),
    ...createIncidentActivities(runtime),
    ...createPrivacyActivities(runtime),
    ...createRetentionActivities(runtime),
    ...createRunbookActivities(runtime),
    ...createRunbookOutageActivities(runtime),
    ...createSmsPumpingActivities(runtime),
  };
}

export type Activities = ReturnType<typeof createActivities>;
