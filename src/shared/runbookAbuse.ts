/**
 * The abuse runbook's arithmetic, kept pure so it is tested without a workflow: its defaults
 * (docs/incident-response.md), the tightened limits, and the watch's quiet clock.
 */
import type { RateLimitSettings } from '../auth/settings';
import type { RunbookParams } from './runbookRegistry';

export interface AbuseParams {
  /** violations in the last hour at which an IP is blocked */
  blockThreshold: number;
  blockTtlMinutes: number;
  /** how many top IPs and users to report (20 by default) */
  top: number;
  /** the tightened limits: per user 3, per IP 10, per 5 minutes */
  tightened: { perUser: number; perIp: number; windowSeconds: number };
  /** the CAPTCHA threshold: after 3 failed attempts */
  captchaThreshold: number;
  captchaWindowSeconds: number;
  /** violations per minute below which the attack counts as subsided */
  quietRatePerMinute: number;
  /** minutes the rate must stay below it before limits are restored */
  quietMinutes: number;
  pollSeconds: number;
  /** give up watching (limits stay tightened, the timeline says so) after this long */
  maxWatchHours: number;
  /** users whose rate-limit state is cleared (false positives known at start) */
  falsePositives: string[];
  /** addresses never blocked (a load balancer, the office) besides the trusted proxies */
  neverBlock: string[];
}

export const DEFAULT_ABUSE_PARAMS: AbuseParams = {
  blockThreshold: 20,
  blockTtlMinutes: 60,
  top: 20,
  tightened: { perUser: 3, perIp: 10, windowSeconds: 300 },
  captchaThreshold: 3,
  captchaWindowSeconds: 900,
  quietRatePerMinute: 5,
  quietMinutes: 30,
  pollSeconds: 60,
  maxWatchHours: 24,
  falsePositives: [],
  neverBlock: [],
};

export function abuseParams(p: RunbookParams<'abuse-mitigation'> | undefined): AbuseParams {
  return { ...DEFAULT_ABUSE_PARAMS, ...p, tightened: { ...DEFAULT_ABUSE_PARAMS.tightened, ...p?.tightened } };
}

/** Tightening never loosens: a limit already stricter than the tightened one stays as it is. */
export function tightenLimits(current: RateLimitSettings, t: AbuseParams['tightened']): RateLimitSettings {
  return {
    per_user: { window_seconds: t.windowSeconds, max_attempts: Math.min(current.per_user.max_attempts, t.perUser) },
    per_ip: { window_seconds: t.windowSeconds, max_attempts: Math.min(current.per_ip.max_attempts, t.perIp) },
  };
}

/**
 * The watch: one sample per poll, the violations per minute over [sampleStart, now]. Returns
 * the start of the quiet stretch (undefined while the attack goes on) and whether it has
 * lasted long enough.
 */
export function quietClock(
  quietSince: number | undefined,
  sampleStart: number,
  now: number,
  ratePerMinute: number,
  p: Pick<AbuseParams, 'quietRatePerMinute' | 'quietMinutes'>,
) {
  if (ratePerMinute >= p.quietRatePerMinute) return { quietSince: undefined, subsided: false };
  const since = quietSince ?? sampleStart;
  return { quietSince: since, subsided: now - since >= p.quietMinutes * 60_000 };
}
