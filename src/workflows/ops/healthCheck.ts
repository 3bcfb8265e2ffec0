import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { DatabaseHealth } from '../../activities/dbOps';

// A health probe should answer fast or not at all: no long retries hiding an outage.
const probeOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
} as const;

const { checkDatabaseHealth } = proxyActivities<Activities>(probeOptions);

/** Round trip through Temporal, a worker and Postgres; used by smoke tests and synthetic checks. */
export async function healthCheckWorkflow(): Promise<DatabaseHealth> {
  return checkDatabaseHealth();
}
