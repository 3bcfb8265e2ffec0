import { Context } from '@temporalio/activity';
import {
  adminDeps,
  clearRateLimits,
  forcePasswordReset,
  revokeUserChallenges,
  rotateKeys,
  type AdminDeps,
  type RotationResult,
} from '../auth/admin';
import type { Runtime } from '../runtime';
import type { RevokeReason } from '../shared/auth';

/**
 * The auth containment steps as activities, for the runbook workflows: the same
 * functions the admin API calls. The actor recorded is the calling workflow's id.
 */
export function createAuthAdminActivities(
  runtime: Pick<Runtime, 'db' | 'logger' | 'temporal' | 'keys' | 'tokenKeys' | 'metrics'>,
) {
  const deps = (): AdminDeps => adminDeps(runtime);
  const actor = () => `workflow:${Context.current().info.workflowExecution?.workflowId ?? 'standalone'}`;

  return {
    async revokeUserChallenges(input: {
      userIds: string[];
      reason: Extract<RevokeReason, 'manual_revoke' | 'security_incident'>;
      incidentId?: string;
    }) {
      return revokeUserChallenges(deps(), { ...input, actor: actor() });
    },
    async forcePasswordReset(input: { userIds: string[]; incidentId?: string }) {
      return forcePasswordReset(deps(), { ...input, actor: actor() });
    },
    async clearUserRateLimits(input: { userIds: string[]; incidentId?: string }) {
      return clearRateLimits(deps(), { ...input, actor: actor() });
    },
    /**
     * Each call would make a new key, so the rotation is keyed by the calling activity: a retry
     * finds the rotation its first attempt recorded and answers with it.
     */
    async rotateDataKeys(input: {
      reason: string;
      revokeOutstanding: boolean;
      incidentId?: string;
    }): Promise<RotationResult> {
      const info = Context.current().info;
      const rotatedBy = `${actor()}/activity:${info.activityId}`;
      const { rows } = await runtime.db.query<{
        id: number;
        from_key_id: string | null;
        to_key_id: string;
        revoked_challenges: number;
        rotated_at: Date;
        from_token_kid: string | null;
        /** null for a rotation recorded before token signing keys existed */
        to_token_kid: string | null;
      }>(
        'SELECT id::int AS id, from_key_id, to_key_id, revoked_challenges, rotated_at, from_token_kid, to_token_kid FROM key_rotations WHERE rotated_by = $1',
        [rotatedBy],
      );
      const done = rows[0];
      if (done) {
        return {
          keyId: done.to_key_id,
          previousKeyId: done.from_key_id,
          tokenKid: done.to_token_kid,
          previousTokenKid: done.from_token_kid,
          rotationId: done.id,
          rotatedAt: done.rotated_at.toISOString(),
          revokedChallenges: done.revoked_challenges,
        };
      }
      return rotateKeys(deps(), { ...input, actor: rotatedBy });
    },
  };
}
