/**
 * The provider-outage runbook's parameters and decisions, kept pure so they are tested without
 * a workflow: the defaults of docs/incident-response.md (poll every 30 s), which provider the run is
 * about, and when a provider counts as down or as healthy again.
 */
import type { RateLimitSettings } from '../auth/settings';
import type { Channel, ProviderName, StatusIndicator } from '../providers/types';
import { channelOfProvider, PROVIDERS } from './delivery';

export interface OutageParams {
  /** the failing provider; default the incident's affected provider, else the scope's worst */
  provider?: ProviderName;
  /** narrows the scope when no provider is named */
  channel?: Channel;
  /** seconds between status checks */
  pollSeconds: number;
  /** consecutive "none" answers of the status page before the primary is restored */
  healthyChecks: number;
  /**
   * give up watching (the backup stays in use, the timeline says so) after this long: twice the
   * 4-hour recovery target, which also keeps the history near 10k events at 30 s polls
   */
  maxWatchHours: number;
  /** the outage window (ISO); default the hour before the run up to the resend */
  since?: string;
  until?: string;
  /** failures of the provider in the window that confirm an outage its status page does not show */
  confirmFailures: number;
  /** how many failures of the window are resent at most */
  resendLimit: number;
  /** the synthetic user of the recovery validation */
  validationUser: string;
  /**
   * raise the per-user limit for users retrying after failed deliveries:
   * false leaves the limits alone whatever the scope finds
   */
  retryRelief: boolean;
  /** users with failed deliveries in the window refused by the per-user limit that call for the relief */
  retryReliefUsers: number;
  /** the per-user maximum is multiplied by this while the run lasts (never lowered, per IP untouched) */
  retryReliefFactor: number;
}

export const DEFAULT_OUTAGE_PARAMS: OutageParams = {
  pollSeconds: 30,
  healthyChecks: 3,
  maxWatchHours: 8,
  confirmFailures: 5,
  resendLimit: 1000,
  validationUser: 'test-user',
  retryRelief: true,
  retryReliefUsers: 1,
  retryReliefFactor: 2,
};

/** At most this many refused users get their rate-limit state cleared by one run. */
export const RELIEF_MAX_USERS = 1000;
const MAX_ATTEMPTS_CAP = 1_000_000;

/** The default window reaches back an hour: a magic link lives 15 minutes, an OTP 5. */
export const DEFAULT_WINDOW_MS = 3_600_000;

export function outageParams(p: Partial<OutageParams> | undefined): OutageParams {
  const merged = { ...DEFAULT_OUTAGE_PARAMS };
  for (const [k, v] of Object.entries(p ?? {})) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  return merged;
}

export const isProvider = (p: unknown): p is ProviderName =>
  typeof p === 'string' && (PROVIDERS as readonly string[]).includes(p);

/** Named provider first (params, then the incident's affected providers), else the worst of the scope. */
export function pickProvider(
  params: Pick<OutageParams, 'provider' | 'channel'>,
  affected: readonly string[],
  failuresByProvider: ReadonlyArray<{ provider: string; failedCalls: number }>,
): ProviderName | undefined {
  if (params.provider) return params.provider;
  const fits = (p: string): p is ProviderName =>
    isProvider(p) && (!params.channel || channelOfProvider(p) === params.channel);
  const named = affected.find(fits);
  if (named) return named;
  return [...failuresByProvider]
    .filter((f) => fits(f.provider) && f.failedCalls > 0)
    .sort((a, b) => b.failedCalls - a.failedCalls)[0]?.provider as ProviderName | undefined;
}

export interface ProviderHealth {
  provider: ProviderName;
  /** the status page's indicator, or `unknown` when it could not be read */
  indicator: StatusIndicator | 'unknown';
  circuit: string;
  /** failed provider calls in the window */
  failedCalls: number;
}

/**
 * Down: the status page reports a major or critical outage, or Warden's own breaker is open
 * and the page does not say all is well (an open breaker only probes again on traffic, so it
 * can outlive a short outage the page has already closed).
 */
export function isDown(h: ProviderHealth): boolean {
  return h.indicator === 'major' || h.indicator === 'critical' || (h.circuit === 'open' && h.indicator !== 'none');
}

/** The outage is confirmed by the status page, the breaker, or enough failures in the window. */
export function outageConfirmed(h: ProviderHealth, confirmFailures: number): boolean {
  return isDown(h) || h.failedCalls >= confirmFailures;
}

/** One status check of the watch: the streak of healthy ("none") answers. */
export function nextStreak(streak: number, indicator: StatusIndicator | 'unknown'): number {
  return indicator === 'none' ? streak + 1 : 0;
}

/**
 * The retry relief: the per-user maximum times `factor` (rounded up, within the settings'
 * bound), never below what is in force; the per-user window and the per-IP rule stay as they are.
 */
export function relievedLimits(current: RateLimitSettings, factor: number): RateLimitSettings {
  const raised = Math.min(MAX_ATTEMPTS_CAP, Math.ceil(current.per_user.max_attempts * factor));
  return {
    per_user: {
      window_seconds: current.per_user.window_seconds,
      max_attempts: Math.max(current.per_user.max_attempts, raised),
    },
    per_ip: { ...current.per_ip },
  };
}

/** Why the run leaves the limits alone (undefined: the relief applies). */
export function reliefSkipReason(
  refusedUsers: number,
  p: Pick<OutageParams, 'retryRelief' | 'retryReliefUsers'>,
): string | undefined {
  if (!p.retryRelief) return 'turned off (params.retryRelief false): limits left as they are';
  if (refusedUsers < p.retryReliefUsers) {
    return `${refusedUsers} user(s) with failed deliveries refused by the per-user limit in the window (< ${p.retryReliefUsers}): limits left as they are`;
  }
  return undefined;
}
