import type { Metrics } from './metrics';

export type AuthFlow = 'initiate' | 'verify' | 'resend' | 'confirm_page';
export type AuthStage =
  'blocklist' | 'rate_limit' | 'budget' | 'settings' | 'seal' | 'workflow' | 'hash' | 'db' | 'compare' | 'audit';

/**
 * Times one stage of an auth request into warden_auth_stage_duration_seconds, whether it
 * succeeds or throws (a refusal's time counts too). Labels are bounded sets, never ids.
 */
export async function timeStage<T>(
  metrics: Pick<Metrics, 'authStageDuration'>,
  flow: AuthFlow,
  stage: AuthStage,
  fn: () => Promise<T>,
): Promise<T> {
  const end = metrics.authStageDuration.startTimer({ flow, stage });
  try {
    return await fn();
  } finally {
    end();
  }
}
