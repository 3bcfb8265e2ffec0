import { sleep } from '@temporalio/workflow';
import { PrivacyErrorType, type UserExportInput, type UserExportResult } from '../../shared/privacy';
import { opsActivities } from '../opsActivities';

/**
 * One user's export (docs/privacy.md#export), started by the admin API as
 * `user-export-<id>`: the artifact is written in one snapshot, then kept until it expires and
 * deleted, so an export never outlives its expiry even if nobody downloads it. Its history
 * holds the export's id and the artifact's size and checksum, never its content.
 */
export async function userExportWorkflow(input: UserExportInput): Promise<UserExportResult> {
  // building reads a user's rows and writes the artifact: minutes at most, retried until it lands
  const { buildUserExport, expireUserExport } = opsActivities({
    startToCloseTimeout: '5 minutes',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: [PrivacyErrorType.notFound],
    },
  });
  const built = await buildUserExport(input);
  if (built.status !== 'ready') return built;
  const remaining = Date.parse(built.expiresAt) - Date.now();
  if (remaining > 0) await sleep(remaining);
  await expireUserExport(input);
  return { ...built, status: 'expired' };
}
