/**
 * The incident workflow's activities, each with options chosen for what a failure costs.
 * Pages must go out even while Slack, the email provider or the database struggle (any of
 * them may be the incident): bounded retries, then the failure lands on the timeline and the
 * incident moves on; nothing blocks the escalation clock for long.
 */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { DeliveryErrorType } from '../../shared/delivery';
import { opsActivities } from '../opsActivities';

// About a minute of retries; a permanent refusal (channel_not_found, bad address) is final.
const notifyOptions: ActivityOptions = {
  startToCloseTimeout: '15 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '15 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [DeliveryErrorType.permanent],
  },
};

// The projection may lag during a database incident; the workflow tries again on its next
// turn (it stays dirty) instead of holding pages behind it.
const storeOptions: ActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: 4 },
};

// A check's verdict is its result; a throw is an infrastructure error worth one more try.
// The synthetic flows wait for deliveries, hence the long timeout, and the ops task queue.
const checkOptions: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 2 },
};

export const notify = proxyActivities<Activities>(notifyOptions);
export const store = proxyActivities<Activities>(storeOptions);
export const checks = (): Activities => opsActivities(checkOptions);
