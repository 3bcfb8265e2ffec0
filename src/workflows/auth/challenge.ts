import type { ChallengeInput, ChallengeResult } from '../../shared/auth';
import { ChallengeMachine } from './challengeMachine';

/**
 * One workflow per challenge, id `challenge-<uuid>`. The input holds ids and non-secret
 * settings only; the secret is created, hashed and sealed by the issueChallenge activity.
 * Messages: awaitIssueUpdate, verifyUpdate, resendUpdate, redeliverUpdate, revokeSignal,
 * deliveryReceiptSignal (a provider's report, which stops the send's receipt timer), challengeStateQuery.
 */
export async function challengeWorkflow(input: ChallengeInput): Promise<ChallengeResult> {
  return new ChallengeMachine(input).run();
}
