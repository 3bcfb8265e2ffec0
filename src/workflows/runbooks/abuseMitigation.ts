/**
 * Abuse (docs/incident-response.md): find the top IPs and users by rate-limit violations, block
 * the worst IPs for a while, tighten the limits (per user 3, per IP 10 per 5 min) and require
 * a CAPTCHA after 3 failed attempts while the attack lasts, watch the violation rate on a
 * durable timer until it stays low for `quietMinutes`, then put the limits and the CAPTCHA
 * setting back as they were. Users marked as false positives (input or the
 * markFalsePositives update) get their rate-limit state cleared at once. The IP blocks stay
 * until they expire.
 */
import { condition, setHandler, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { abuseParams, quietClock, type AbuseParams } from '../../shared/runbookAbuse';
import type { RunbookParams } from '../../shared/runbookRegistry';
import { markFalsePositivesUpdate, type RunbookResult, type RunbookStartInput } from '../../shared/runbooks';
import { fail, runRunbook, type Runbook, type StepDef } from './framework';

const STEPS: StepDef[] = [
  { name: 'top_violators', title: 'Identify abusive patterns' },
  {
    name: 'block_ips',
    title: 'Temporary IP blocks',
    destructive: true,
    containment: true,
    compensable: 'the blocks this run added are lifted',
  },
  {
    name: 'tighten_limits',
    title: 'Tighten rate limits',
    destructive: true,
    containment: true,
    compensable: 'the limits in force before the run are put back',
    undoOnFailure: true,
  },
  {
    name: 'enable_captcha',
    title: 'Require CAPTCHA after failed attempts',
    destructive: true,
    containment: true,
    compensable: 'the CAPTCHA setting in force before the run is put back',
    undoOnFailure: true,
  },
  { name: 'clear_false_positives', title: 'Clear rate-limit state of false positives', repeatable: true },
  { name: 'watch', title: 'Watch the violation rate' },
  { name: 'restore_limits', title: 'Restore normal limits' },
];

const quick: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '20 seconds', maximumAttempts: 10 },
};
// a missed sample only delays the verdict: few retries, the next poll tries again
const sample: ActivityOptions = {
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
};

export async function abuseMitigationRunbook(
  input: RunbookStartInput<RunbookParams<'abuse-mitigation'>>,
): Promise<RunbookResult> {
  const p = abuseParams(input.params);
  const incidentId = input.incidentId || undefined;
  const falsePositives: string[] = [...p.falsePositives];

  return runRunbook('abuse-mitigation', input, STEPS, async (rb) => {
    setHandler(
      markFalsePositivesUpdate,
      (i) => {
        falsePositives.push(...i.users);
        return rb.state;
      },
      {
        validator: (i) => {
          if (
            !i ||
            typeof i.by !== 'string' ||
            !i.by.trim() ||
            !Array.isArray(i.users) ||
            i.users.length === 0 ||
            i.users.length > 500 ||
            !i.users.every((u: unknown) => typeof u === 'string' && u.length > 0 && u.length <= 128)
          ) {
            throw fail('InvalidInput', '`by` and `users` (1 to 500 user ids) are required');
          }
          if (rb.state.status !== 'running') throw fail('RunbookFinished', `runbook is ${rb.state.status}`);
        },
      },
    );
    const clearPending = async () => {
      const users = falsePositives.splice(0);
      if (!users.length) return;
      await rb.step('clear_false_positives', async (ctx) => {
        const r = await ctx.activities(quick).clearFalsePositives({ key: ctx.key, userIds: users, incidentId });
        return {
          summary: `cleared ${r.cleared} rate-limit row(s) of ${r.users} user(s) marked as false positives: ${users.slice(0, 20).join(', ')}`,
          result: r,
        };
      });
    };

    await rb.step('top_violators', async (ctx) => {
      const r = await ctx.activities(quick).topViolators({ top: p.top, hours: 1 });
      const ips = r.ips.map((x) => `${x.ip} (${x.violations})`).join(', ') || 'none';
      const users = r.users.map((x) => `${x.user_id} (${x.violations})`).join(', ') || 'none';
      return {
        summary: `${r.violations} rate-limit violation(s) in the last hour; top IPs: ${ips}; top users: ${users}`,
        result: r,
      };
    });
    await clearPending();

    await rb.step(
      'block_ips',
      async (ctx) => {
        const found = await ctx
          .activities(quick, 'find')
          .abusiveIps({ threshold: p.blockThreshold, neverBlock: p.neverBlock });
        if (!found.ips.length)
          return {
            summary: `no IP reached ${p.blockThreshold} violations in the last hour${found.spared.length ? ` (spared: ${found.spared.join(', ')})` : ''}`,
            result: { blocked: [], spared: found.spared },
          };
        const expiresAt = new Date(Date.now() + p.blockTtlMinutes * 60_000).toISOString();
        const r = await ctx.activities(quick).blockIps({
          key: ctx.key,
          ips: found.ips,
          reason: `abuse mitigation (${incidentId ?? ctx.workflowId}): >= ${p.blockThreshold} rate-limit violations in an hour`,
          expiresAt,
          incidentId,
        });
        return {
          summary: `blocked ${r.blocked.length} IP(s) until ${expiresAt}: ${r.blocked.slice(0, 20).join(', ')}${r.alreadyBlocked.length ? `; ${r.alreadyBlocked.length} already blocked` : ''}${found.spared.length ? `; spared ${found.spared.join(', ')}` : ''}`,
          result: { ...r, spared: found.spared },
        };
      },
      {
        compensate: async (ctx) =>
          `lifted ${(await ctx.activities(quick, 'undo').unblockIps({ key: ctx.key, incidentId })).unblocked.length} block(s)`,
      },
    );

    const tightened = await rb.step(
      'tighten_limits',
      async (ctx) => {
        const r = await ctx.activities(quick).tightenRateLimits({ workflowId: ctx.workflowId, tightened: p.tightened });
        const a = r.applied;
        return {
          summary: `per user ${a.per_user.max_attempts}, per IP ${a.per_ip.max_attempts} per ${a.per_ip.window_seconds / 60} min (were ${r.previous.per_user.max_attempts} / ${r.previous.per_ip.max_attempts})`,
          result: r,
          value: r,
        };
      },
      { compensate: (ctx) => restore(ctx.activities(quick, 'undo'), ctx.workflowId, 'rate_limiting') },
    );
    const captcha = await rb.step(
      'enable_captcha',
      async (ctx) => {
        const r = await ctx.activities(quick).enableCaptcha({
          workflowId: ctx.workflowId,
          threshold: p.captchaThreshold,
          windowSeconds: p.captchaWindowSeconds,
        });
        return {
          summary: `hCaptcha required after ${p.captchaThreshold} failed attempts in ${p.captchaWindowSeconds / 60} min`,
          result: r,
          value: r,
        };
      },
      { compensate: (ctx) => restore(ctx.activities(quick, 'undo'), ctx.workflowId, 'auth.captcha') },
    );

    const subsided = await watch(rb, p, clearPending, () => falsePositives.length > 0);
    if (!subsided) return;
    if (!tightened && !captcha) return rb.skip('restore_limits', 'nothing was changed');
    await rb.step('restore_limits', async (ctx) => {
      const acts = ctx.activities(quick);
      const parts = [
        tightened ? await restore(acts, ctx.workflowId, 'rate_limiting') : '',
        captcha ? await restore(acts, ctx.workflowId, 'auth.captcha') : '',
      ];
      return { summary: parts.filter(Boolean).join('; ') };
    });
  });
}

async function restore(acts: Activities, workflowId: string, key: string): Promise<string> {
  const r = await acts.restoreSetting({ workflowId, key });
  return r.restored ? `${key} restored to ${JSON.stringify(r.value)}` : `${key} not restored: ${r.reason}`;
}

/** Polls the violation rate on a durable timer; true once it stayed low for quietMinutes. */
async function watch(
  rb: Runbook,
  p: AbuseParams,
  clearPending: () => Promise<void>,
  pending: () => boolean,
): Promise<boolean> {
  const outcome = await rb.step('watch', async (ctx) => {
    const acts = ctx.activities(sample);
    const started = Date.now();
    let cursor = (await acts.violationsSince({ cursor: null })).cursor;
    let sampleStart = Date.now();
    let quietSince: number | undefined;
    let samples = 0;
    for (;;) {
      await clearPending();
      const due = sampleStart + p.pollSeconds * 1000;
      if (Date.now() < due) {
        // a false positive marked meanwhile is cleared at once, then the wait goes on
        await condition(pending, due - Date.now());
        if (Date.now() < due) continue;
      }
      const now = Date.now();
      const s = await acts.violationsSince({ cursor });
      cursor = s.cursor;
      const rate = (s.violations * 60_000) / Math.max(1000, now - sampleStart);
      const clock = quietClock(quietSince, sampleStart, now, rate, p);
      quietSince = clock.quietSince;
      sampleStart = now;
      samples++;
      rb.state.detail = {
        watch: {
          ratePerMinute: Math.round(rate * 10) / 10,
          quietSince: quietSince ? new Date(quietSince).toISOString() : null,
          samples,
        },
      };
      if (clock.subsided) {
        return {
          summary: `violation rate below ${p.quietRatePerMinute}/min for ${p.quietMinutes} min (${samples} samples)`,
          result: rb.state.detail,
          value: true,
        };
      }
      if (now - started >= p.maxWatchHours * 3_600_000) {
        return {
          summary: `attack not subsided after ${p.maxWatchHours} h (last ${Math.round(rate)}/min): limits and CAPTCHA stay as tightened and this run ends here (nothing left to cancel): restore them through PUT /admin/api/v1/ratelimits and the auth.captcha runtime setting`,
          result: rb.state.detail,
          value: false,
        };
      }
    }
  });
  return outcome === true;
}
