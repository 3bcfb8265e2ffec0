/**
 * The provider-outage runbook's steps after the scope (providerOutage.ts is the script). The
 * run remembers what it changed (switched, disabled): restore and cancellation put back only
 * that, through restoreOutageChange, which also leaves alone what someone changed since.
 */
import { ApplicationFailure, sleep, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { RateLimitSettings } from '../../auth/settings';
import { isDown, nextStreak, RELIEF_MAX_USERS, reliefSkipReason, type OutageParams } from '../../shared/runbookOutage';
import type { Channel, ProviderName } from '../../providers/types';
import { channelOfProvider } from '../../shared/delivery';
import type { Runbook, StepContext } from './framework';
import { chunks } from './util';

export const quick: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '20 seconds', maximumAttempts: 10 },
};
// one status check: the activity answers `unknown` for an unreadable page, so retries are for lost workers only
const check: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
};
// each synthetic flow waits up to 15 s for its message; a retry spends two more initiations of test-user
const synthetic: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', maximumAttempts: 2 },
};

export type Scope = Awaited<ReturnType<Activities['outageScope']>> & { provider?: ProviderName };
type Change = 'backup' | 'disable';
// the runtime_settings key of the rate limits (src/auth/settings.ts RATE_LIMITING_KEY; not imported: workflow bundle)
const RATE_LIMITING = 'rate_limiting';

const METHOD: Record<Channel, string> = { sms: 'SMS OTP', email: 'magic link' };
const OTHER: Record<Channel, Channel> = { sms: 'email', email: 'sms' };

export class OutageRun {
  readonly channel: Channel;
  /** the channel's other provider: the backup when the run is about the primary, and the other way round */
  readonly other: ProviderName | null;
  readonly isPrimary: boolean;
  switched = false;
  disabled = false;
  /** the retry relief ran: the end of the run (or a cancellation) puts the limits back */
  relieved = false;
  private degradeTried = false;

  constructor(
    private readonly rb: Runbook,
    private readonly p: OutageParams,
    readonly provider: ProviderName,
    scope: Scope,
    private readonly incidentId: string | undefined,
  ) {
    this.channel = channelOfProvider(provider);
    const route = scope.routes.find((r) => r.channel === this.channel);
    this.isPrimary = route?.primary === provider;
    this.other = ((this.isPrimary ? route?.backup : route?.primary) ?? null) as ProviderName | null;
  }

  private reason(what: string): string {
    return `provider outage of ${this.provider}${this.incidentId ? ` (${this.incidentId})` : ''}: ${what}`;
  }

  private async undo(ctx: StepContext, change: Change, suffix: string): Promise<string> {
    const r = await ctx.activities(quick, suffix).restoreOutageChange({
      workflowId: ctx.workflowId,
      channel: this.channel,
      change,
      reason: this.reason('restore'),
      incidentId: this.incidentId,
    });
    const what = change === 'backup' ? `${this.channel} routed back to its primary` : `${METHOD[this.channel]} back on`;
    return r.restored ? what : `${what.split(' ')[0]} left as it is: ${r.reason}`;
  }

  async switchToBackup(why: string): Promise<void> {
    const r = await this.rb.step(
      'switch_to_backup',
      async (ctx) => {
        const r = await ctx.activities(quick).applyOutageChange({
          workflowId: ctx.workflowId,
          channel: this.channel,
          change: 'backup',
          reason: this.reason(why),
          incidentId: this.incidentId,
        });
        return {
          summary: r.changed
            ? `${this.channel} now sent through ${this.other} (${why})`
            : `${this.channel} was already on its backup before this run`,
          result: r,
          value: r,
        };
      },
      { compensate: (ctx) => this.undo(ctx, 'backup', 'undo') },
    );
    this.switched = Boolean(r?.changed);
  }

  async degrade(why: string): Promise<void> {
    if (this.degradeTried) return;
    this.degradeTried = true;
    const r = await this.rb.step(
      'disable_channel',
      async (ctx) => {
        const r = await ctx.activities(quick).applyOutageChange({
          workflowId: ctx.workflowId,
          channel: this.channel,
          change: 'disable',
          reason: this.reason(why),
          incidentId: this.incidentId,
        });
        const effect = `${METHOD[this.channel]} off (initiate answers 503 channel_disabled), ${METHOD[OTHER[this.channel]]} stays on`;
        return {
          summary: r.changed ? `${effect}: ${why}` : `${METHOD[this.channel]} was already off before this run`,
          result: r,
          value: r,
        };
      },
      { compensate: (ctx) => this.undo(ctx, 'disable', 'undo') },
    );
    this.disabled = Boolean(r?.changed);
  }

  /**
   * Room to retry for users whose deliveries failed (docs/incident-response.md):
   * when the scope found at least retryReliefUsers users with failed deliveries refused by the
   * per-user limit, the per-user maximum is raised for the run (saved first in
   * runbook_saved_settings by the abuse runbook's machinery) and exactly those users' rate-limit
   * state is cleared, so they can retry at once. `window` is the scope's (since, channel).
   */
  async relieve(refusedUsers: number, window: { since: string; until?: string; channel?: Channel }): Promise<void> {
    const skip = reliefSkipReason(refusedUsers, this.p);
    if (skip) return this.rb.skip('relieve_retries', skip);
    const r = await this.rb.step(
      'relieve_retries',
      async (ctx) => {
        const found = await ctx.activities(quick, 'find').retryingUsers({
          since: window.since,
          until: window.until ?? new Date().toISOString(),
          channel: window.channel,
          limit: RELIEF_MAX_USERS,
        });
        const limits = await ctx
          .activities(quick)
          .relieveRateLimits({ workflowId: ctx.workflowId, factor: this.p.retryReliefFactor });
        const cleared = found.users.length
          ? await ctx.activities(quick, 'clear').clearFalsePositives({
              key: ctx.key,
              userIds: found.users,
              incidentId: this.incidentId,
              reason: this.reason('refused by the per-user rate limit while retrying failed deliveries'),
            })
          : { cleared: 0, users: 0 };
        const [was, now] = [limits.previous.per_user, limits.applied.per_user];
        const raised =
          now.max_attempts > was.max_attempts
            ? `per-user limit ${was.max_attempts} -> ${now.max_attempts} per ${now.window_seconds} s until the end of the run`
            : `per-user limit already at ${now.max_attempts}: not raised`;
        const users = `${found.users.slice(0, 20).join(', ')}${found.users.length > 20 ? ', ...' : ''}${found.truncated ? ` (first ${RELIEF_MAX_USERS} only)` : ''}`;
        return {
          summary: `${raised} (per IP unchanged); rate-limit state of ${cleared.users} user(s) refused while retrying cleared (${cleared.cleared} row(s)): ${users || 'none'}`,
          result: {
            users: found.users,
            truncated: found.truncated,
            cleared: cleared.cleared,
            previous: limits.previous,
            applied: limits.applied,
          },
          value: true,
        };
      },
      { compensate: (ctx) => this.restoreLimitsText(ctx.activities(quick, 'undo'), ctx.workflowId) },
    );
    this.relieved = r === true; // undefined: rejected by a responder
  }

  private async restoreLimitsText(acts: Activities, workflowId: string): Promise<string> {
    const r = await acts.restoreSetting({ workflowId, key: RATE_LIMITING });
    if (!r.restored) return `rate limits left as they are: ${r.reason ?? 'not restored'}`;
    const v = r.value as RateLimitSettings | null;
    return v
      ? `rate limits back to per user ${v.per_user.max_attempts}, per IP ${v.per_ip.max_attempts} (as before the run)`
      : 'rate limits back to the defaults (no setting before the run)';
  }

  /** Puts back the limits the relief raised (only if nobody changed them since); the cleared state stays cleared. */
  async restoreLimits(): Promise<void> {
    if (!this.relieved) return this.rb.skip('restore_limits', 'this run did not raise the rate limits');
    await this.rb.step('restore_limits', async (ctx) => ({
      summary: await this.restoreLimitsText(ctx.activities(quick), ctx.workflowId),
    }));
  }

  /**
   * The status-page watch: one check per pollSeconds on a
   * durable timer until the page says "none" healthyChecks times in a row. While the channel
   * still runs, a backup that goes down meanwhile turns the channel off. False: gave up.
   */
  async watch(degradeIfOtherDown: boolean): Promise<boolean> {
    const { p, provider, other, rb } = this;
    const outcome = await rb.step('watch', async (ctx) => {
      const started = Date.now();
      let streak = 0;
      for (let checks = 1; ; checks++) {
        const watchOther = degradeIfOtherDown && other !== null && !this.degradeTried;
        const s = await ctx
          .activities(check, `check-${checks}`)
          .outageStatus({ providers: watchOther ? [provider, other] : [provider] });
        const mine = s[0]!;
        streak = nextStreak(streak, mine.indicator);
        const last = Date.now();
        rb.state.detail = {
          ...rb.state.detail,
          watch: {
            provider,
            indicator: mine.indicator,
            streak,
            checks,
            healthyChecks: p.healthyChecks,
            pollSeconds: p.pollSeconds,
            lastCheckAt: new Date(last).toISOString(),
            nextCheckAt: new Date(last + p.pollSeconds * 1000).toISOString(),
          },
        };
        if (streak >= p.healthyChecks) {
          return {
            summary: `${provider} status page "none" for ${streak} consecutive checks (${checks} checks, every ${p.pollSeconds} s)`,
            result: rb.state.detail.watch,
            value: true,
          };
        }
        const theirs = s[1];
        if (
          watchOther &&
          theirs &&
          isDown({ provider: other, indicator: theirs.indicator, circuit: 'closed', failedCalls: 0 })
        ) {
          await this.degrade(`${other} went down too during the watch (status ${theirs.indicator})`);
        }
        if (last - started >= p.maxWatchHours * 3_600_000) {
          return {
            summary: `${provider} not healthy after ${p.maxWatchHours} h (last status ${mine.indicator}): the ${this.channel} route stays as this run left it; this run ends here (nothing left to cancel): restore it through PUT /admin/api/v1/delivery/routes/${this.channel} once ${provider} is healthy`,
            result: rb.state.detail.watch,
            value: false,
          };
        }
        await sleep(p.pollSeconds * 1000);
      }
    });
    return outcome === true;
  }

  /** Routes back to the primary first, then turns the channel back on: new codes go to the healthy provider. */
  async restore(): Promise<void> {
    await this.rb.step('restore_primary', async (ctx) => {
      const parts: string[] = [];
      if (this.switched) parts.push(await this.undo(ctx, 'backup', 'route'));
      if (this.disabled) parts.push(await this.undo(ctx, 'disable', 'channel'));
      return {
        summary: parts.length ? parts.join('; ') : `nothing to restore: this run changed no ${this.channel} setting`,
      };
    });
  }

  /** Each failure through resendFailedDelivery (the admin API's path): at most once ever, only while its challenge is open. */
  async resend(since: string, failureIds: string[]): Promise<void> {
    await this.rb.step('resend_failed', async (ctx) => {
      const outcomes: Record<string, number> = {};
      for (const batch of chunks(failureIds, 10)) {
        const results = await Promise.all(
          batch.map((id) =>
            ctx.activities(quick, `failure-${id}`).resendFailedDelivery({ failureId: id, incidentId: this.incidentId }),
          ),
        );
        for (const r of results) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
      }
      const detail = Object.entries(outcomes)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      return {
        summary: `${outcomes.queued ?? 0} of ${failureIds.length} ${this.channel} failure(s) since ${since} resent (${detail})`,
        result: { failures: failureIds.length, outcomes },
      };
    });
  }

  /** Recovery validation: an OTP and a magic-link flow for test-user through the public API. */
  async validate(): Promise<void> {
    await this.rb.step('validate', async (ctx) => {
      const r = await ctx.activities(synthetic).syntheticAuthFlows({ seed: ctx.key, user: this.p.validationUser });
      if (!r.sandbox)
        throw ApplicationFailure.create({
          type: 'RecoveryNotValidated',
          nonRetryable: true,
          message: 'live providers: the synthetic flows read codes from the sandbox outbox only; validate by hand',
        });
      const failed = r.rounds.filter((x) => !x.verified);
      if (failed.length)
        throw ApplicationFailure.create({
          type: 'RecoveryNotValidated',
          nonRetryable: true,
          message: failed.map((x) => x.problem).join('; '),
        });
      return {
        summary: `${this.p.validationUser}: ${r.rounds.map((x) => `${METHOD[x.method === 'sms_otp' ? 'sms' : 'email']} delivered and verified`).join(', ')}`,
        result: r.rounds,
      };
    });
  }
}
