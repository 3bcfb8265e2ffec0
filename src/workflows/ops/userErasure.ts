import { sleep } from '@temporalio/workflow';
import {
  ERASED_TABLES,
  ERASURE_BATCH,
  PrivacyErrorType,
  SCRUBBED_COLUMNS,
  SUBJECT_KEY_CACHE_MS,
  type ErasureReport,
  type UserErasureInput,
} from '../../shared/privacy';
import { opsActivities } from '../opsActivities';

/** Calls `batch` until a call does less than a full batch: nothing of the user is left there. */
async function untilShort(batch: () => Promise<number>): Promise<void> {
  while ((await batch()) >= ERASURE_BATCH) {
    // the next batch
  }
}

/**
 * One user's erasure (docs/privacy.md#erasure), started by the admin API as
 * `user-erasure-<id>`, as the procedure it runs: revoke the live challenges, delete the user's
 * rows table by table (a batch per call until one comes back short), scrub free text, rewrite
 * the audit rows to a pseudonym, destroy the user's payload key, and, once no process can still
 * hold that key in memory, record the report and forget the user. Every step is idempotent and
 * reads the user from the erasure's row, so a worker lost mid-way resumes where the history
 * says, and the history itself holds ids and counts only.
 */
export async function userErasureWorkflow(input: UserErasureInput): Promise<ErasureReport> {
  // an erasure must complete: each step is retried until it lands (a locked row, a database
  // failover), backing off to a minute between tries
  const steps = opsActivities({
    startToCloseTimeout: '2 minutes',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: [PrivacyErrorType.notFound],
    },
  });
  await steps.revokeErasedChallenges(input);
  for (const table of ERASED_TABLES)
    await untilShort(() => steps.eraseUserRows({ ...input, table, limit: ERASURE_BATCH }));
  for (const { table, column } of SCRUBBED_COLUMNS) await steps.scrubUserText({ ...input, table, column });
  await untilShort(() => steps.pseudonymizeUserAudit({ ...input, limit: ERASURE_BATCH }));
  if ((await steps.destroyUserPayloadKey(input)) === 'destroyed') await sleep(SUBJECT_KEY_CACHE_MS);
  return steps.finishErasure(input);
}
