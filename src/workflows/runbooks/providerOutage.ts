/**
 * SMS or email provider outage (docs/incident-response.md): scope the failures per provider, read the
 * provider's status page, route the channel to its backup (or, with both providers down,
 * turn the channel off: SMS OTP answers 503 channel_disabled while magic links keep working,
 * and the other way round), poll the status page on a durable timer (every 30 s) until it says
 * "none" for N checks in a row, put back what this run changed, resend the failures of the
 * outage window whose challenges are still open (each once, through the challenge workflows),
 * and validate with a synthetic OTP and magic-link flow for test-user. Users whose deliveries
 * failed and who were then refused by the per-user rate limit (retrying) get the limit raised
 * for the run and their rate-limit state cleared; the limits go back before the validation.
 */
import {
  DEFAULT_WINDOW_MS,
  isDown,
  outageConfirmed,
  outageParams,
  pickProvider,
  type ProviderHealth,
} from '../../shared/runbookOutage';
import type { RunbookParams } from '../../shared/runbookRegistry';
import { channelOfProvider } from '../../shared/delivery';
import type { RunbookResult, RunbookStartInput } from '../../shared/runbooks';
import { opsActivities } from '../opsActivities';
import { runRunbook, type StepDef } from './framework';
import { OutageRun, quick, type Scope } from './providerOutageSteps';

const STEPS: StepDef[] = [
  { name: 'scope', title: 'Verify outage scope' },
  // a step entry, not a root cause: the status page is evidence, and the responder's root cause must not be overwritten
  { name: 'status_page', title: 'Provider status page', optional: true },
  {
    name: 'switch_to_backup',
    title: 'Switch to backup provider',
    destructive: true,
    containment: true,
    compensable: 'the channel is routed back to its primary (only if this run switched it and nobody changed it since)',
  },
  {
    name: 'disable_channel',
    title: 'Graceful degradation (channel off)',
    destructive: true,
    containment: true,
    compensable: 'the channel this run turned off is turned back on',
  },
  {
    name: 'relieve_retries',
    title: 'Temporarily raise the per-user rate limit for users retrying failed deliveries',
    destructive: true,
    compensable:
      'the rate limits in force before the run are put back (only if nobody changed them since); the cleared rate-limit state stays cleared',
    undoOnFailure: true,
    // a step entry: relief for users does not mitigate the outage (a mitigation entry would move the incident to mitigating)
  },
  { name: 'watch', title: 'Poll the provider status until healthy' },
  { name: 'restore_primary', title: 'Re-enable primary provider' },
  {
    name: 'resend_failed',
    title: 'Resend failed notifications',
    destructive: true,
    notCompensable: 'a sent message cannot be unsent: the resends stay sent',
  },
  { name: 'restore_limits', title: 'Restore normal rate limits' },
  { name: 'validate', title: 'Validate service recovery' },
];

export async function providerOutageRunbook(
  input: RunbookStartInput<RunbookParams<'provider-outage'>>,
): Promise<RunbookResult> {
  const p = outageParams(input.params);
  const incidentId = input.incidentId || undefined;
  const since = p.since ?? new Date(Date.now() - DEFAULT_WINDOW_MS).toISOString();

  return runRunbook('provider-outage', input, STEPS, async (rb) => {
    rb.state.detail = { params: { ...p, since } };
    const channel = p.channel ?? (p.provider ? channelOfProvider(p.provider) : undefined);
    const scope = (await rb.step('scope', async (ctx) => {
      const s = await ctx.activities(quick).outageScope({ since, until: p.until ?? new Date().toISOString(), channel });
      const provider = pickProvider(p, input.affected.providers, s.attempts);
      const calls =
        s.attempts
          .map((a) => `${a.provider} ${a.failedCalls} failed call(s), ${a.failedSends}/${a.sends} send(s) failed`)
          .join('; ') || 'no sends';
      const failures =
        s.failures
          .map((f) => `${f.provider} ${f.failures} (${f.unresolved} unresolved, ${f.users} user(s))`)
          .join('; ') || 'none';
      const routes = s.routes
        .map((r) => `${r.channel} ${r.primary}->${r.backup ?? '-'} ${r.mode}${r.enabled ? '' : ' OFF'}`)
        .join(', ');
      return {
        summary: `since ${since}: ${calls}; delivery_failures: ${failures}; routes: ${routes}; ${s.rateLimited.refusals} rate-limit refusal(s) of ${s.rateLimited.users} user(s) with failed deliveries (likely retries; ${s.rateLimited.perUser} user(s) refused by the per-user limit); provider: ${provider ?? 'none found'}`,
        result: { ...s, provider: provider ?? null },
        value: { ...s, provider } as Scope,
      };
    }))!;

    const provider = scope.provider;
    if (!provider) {
      await rb.progress(
        'step',
        'no provider named (params, incident) and no failed provider call in the window: nothing to switch',
      );
      return;
    }
    const run = new OutageRun(rb, p, provider, scope, incidentId);
    const statuses = await rb.step('status_page', async (ctx) => {
      const s = await ctx.activities(quick).outageStatus({ providers: run.other ? [provider, run.other] : [provider] });
      return {
        summary: s
          .map((x) => `${x.provider} status page: ${x.indicator}${x.description ? ` (${x.description})` : ''}`)
          .join('; '),
        result: s,
        value: s,
      };
    });
    const health = (name: string | null): ProviderHealth | undefined => {
      if (!name) return undefined;
      const circuit = scope.routes.flatMap((r) => r.circuits).find((c) => c.provider === name)?.state ?? 'closed';
      const failedCalls = scope.attempts.filter((a) => a.provider === name).reduce((n, a) => n + a.failedCalls, 0);
      return {
        provider: name as ProviderHealth['provider'],
        indicator: statuses?.find((x) => x.provider === name)?.indicator ?? 'unknown',
        circuit,
        failedCalls,
      };
    };
    const mine = health(provider)!;
    const theirs = health(run.other);
    const confirmed = outageConfirmed(mine, p.confirmFailures);
    const otherDown = !theirs || isDown(theirs);

    if (!confirmed) {
      await rb.progress(
        'step',
        `no outage confirmed for ${provider}: status ${mine.indicator}, circuit ${mine.circuit}, ${mine.failedCalls} failed call(s) (< ${p.confirmFailures}); routing left as it is`,
      );
    } else if (otherDown) {
      await run.degrade(
        theirs
          ? `${provider} and ${theirs.provider} are both down (${theirs.provider}: status ${theirs.indicator}, circuit ${theirs.circuit})`
          : `${provider} is down and the ${run.channel} route has no other provider`,
      );
    } else if (run.isPrimary) {
      await run.switchToBackup(
        `${provider} down: status ${mine.indicator}, circuit ${mine.circuit}, ${mine.failedCalls} failed call(s)`,
      );
    } else {
      await rb.progress(
        'step',
        `${provider} is the ${run.channel} backup; the primary ${run.other} carries the traffic: no switch`,
      );
    }

    // the rate-limit impact analysis: users refused while retrying get room to retry
    await run.relieve(scope.rateLimited.perUser, { since, until: p.until, channel });

    const healthy = await run.watch(confirmed && !otherDown);
    if (!healthy) {
      // the route may stay as the run left it, the relief does not outlive the run
      await run.restoreLimits();
      return;
    }
    await run.restore();

    const resendable = await opsActivities(quick).resendableFailures({
      since,
      until: p.until ?? new Date().toISOString(),
      channel: run.channel,
      limit: p.resendLimit,
    });
    if (resendable.length === 0)
      await rb.skip(
        'resend_failed',
        `no ${run.channel} failure since ${since} can still be resent (challenge open and unexpired, not resent before)`,
      );
    else
      await run.resend(
        since,
        resendable.map((f) => f.id),
      );
    // after the primary is back and the resends are out: validation runs under the normal limits
    await run.restoreLimits();
    await run.validate();
  });
}
