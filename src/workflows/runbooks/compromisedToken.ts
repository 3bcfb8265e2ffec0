/**
 * Compromised token (docs/incident-response.md): isolate the users (a cut-off makes their
 * live challenges unverifiable at once; force a password reset), block the IPs, rotate the
 * data keys, end the revoked challenges and their workflows, then investigate
 * (forensic export, anomaly queries, leak scan) and notify the users. The incident renders
 * the post-incident report from the timeline this writes.
 */
import type { ActivityOptions } from '@temporalio/workflow';
import type { RunbookParams } from '../../shared/runbookRegistry';
import type { RunbookResult, RunbookStartInput } from '../../shared/runbooks';
import { runRunbook, type StepDef } from './framework';
import { chunks, windowOf } from './util';

const STEPS: StepDef[] = [
  {
    name: 'revoke_challenges',
    title: 'Revoke active challenges of the affected users',
    destructive: true,
    containment: true,
    notCompensable: 'a revoked challenge stays revoked: reviving it would revive a code that may be compromised',
  },
  {
    name: 'force_password_reset',
    title: 'Force password reset',
    destructive: true,
    containment: true,
    notCompensable: 'clearing the flag would let a possibly compromised password stand',
  },
  {
    name: 'block_ips',
    title: 'Block suspicious IPs',
    destructive: true,
    containment: true,
    compensable: 'the blocks this run added are lifted (blocks others made stay)',
  },
  {
    name: 'rotate_keys',
    title: 'Emergency key rotation',
    destructive: true,
    containment: true,
    notCompensable:
      'the retired key may be compromised: it is never made active again, and the challenges revoked under it stay revoked',
  },
  // the approved cut-off decided it: this only ends the covered rows and their workflows
  { name: 'end_challenges', title: 'End the revoked challenges and their workflows' },
  { name: 'forensic_export', title: 'Forensic export of audit events', optional: true },
  { name: 'anomaly_queries', title: 'Database forensics (anomaly queries)', optional: true },
  { name: 'leak_scan', title: 'Validate no token leakage', optional: true },
  {
    name: 'notify_users',
    title: 'Notify affected users',
    destructive: true,
    notCompensable: 'an email cannot be unsent',
  },
];

const containment: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
};
// ends rows in bulk and terminates workflows, heartbeating as it goes; retried while a covered
// challenge is still open (one issued as the cut-off committed)
const cleanup: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 5 },
};
const forensic: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
};
const scan: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumAttempts: 2 },
};
const notify: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 8 },
};

const USER_BATCH = 250;

export async function compromisedTokenRunbook(
  input: RunbookStartInput<RunbookParams<'compromised-token'>>,
): Promise<RunbookResult> {
  const p = input.params ?? {};
  const users = [...new Set(input.affected.users)];
  const ips = [...new Set(input.affected.ips)];
  const incidentId = input.incidentId || undefined;
  const started = Date.now();

  return runRunbook('compromised-token', input, STEPS, async (rb) => {
    if (users.length === 0) {
      await rb.skip('revoke_challenges', 'no affected users named');
      await rb.skip('force_password_reset', 'no affected users named');
    } else {
      await rb.step('revoke_challenges', async (ctx) => {
        // containment first: one cut-off, and no affected code verifies from its commit on
        const cut = await ctx.activities(containment, 'cut-off').cutOffUsersChallenges({
          key: ctx.key,
          userIds: users,
          incidentId,
        });
        await rb.progress(
          'mitigation',
          `Containment: challenges of ${users.length} user(s) unverifiable from ${cut.revokedBefore}`,
        );
        return {
          summary: `${cut.covered} active challenge(s) of ${users.length} user(s) unverifiable from ${cut.revokedBefore}; ended with their workflows after the other containment steps`,
          result: { users: users.length, revokedBefore: cut.revokedBefore, covered: cut.covered },
        };
      });
      await rb.step('force_password_reset', async (ctx) => {
        const r = await ctx.activities(containment).forcePasswordResets({ key: ctx.key, userIds: users, incidentId });
        return {
          summary: `password reset required for ${r.flagged} user(s)${r.unknownUsers ? ` (${r.unknownUsers} unknown user id(s))` : ''}`,
          result: r,
        };
      });
    }

    if (ips.length === 0) await rb.skip('block_ips', 'no suspicious IPs named');
    else {
      await rb.step(
        'block_ips',
        async (ctx) => {
          const expiresAt = new Date(Date.now() + (p.blockMinutes ?? 24 * 60) * 60_000).toISOString();
          const r = await ctx.activities(containment).blockIps({
            key: ctx.key,
            ips,
            reason: `compromised token response (${incidentId ?? ctx.workflowId})`,
            expiresAt,
            incidentId,
          });
          const extra = [
            r.alreadyBlocked.length ? `${r.alreadyBlocked.length} already blocked` : '',
            r.invalid.length ? `${r.invalid.length} invalid: ${r.invalid.join(', ')}` : '',
            r.tooBroad?.length ? `refused as too broad: ${r.tooBroad.join(', ')}` : '',
          ]
            .filter(Boolean)
            .join('; ');
          return {
            summary: `blocked ${r.blocked.length} IP(s) until ${expiresAt}${extra ? ` (${extra})` : ''}`,
            result: r,
          };
        },
        {
          compensate: async (ctx) =>
            `lifted ${(await ctx.activities(containment, 'undo').unblockIps({ key: ctx.key, incidentId })).unblocked.length} block(s)`,
        },
      );
    }

    await rb.step('rotate_keys', async (ctx) => {
      const r = await ctx.activities(containment).rotateDataKeys({
        reason: `compromised token response (${incidentId ?? ctx.workflowId})`,
        revokeOutstanding: true,
        incidentId,
      });
      return {
        summary: `new pepper and seal key ${r.keyId} active (was ${r.previousKeyId ?? 'none'}), ${r.revokedChallenges} outstanding challenge(s) under the old key revoked, rotation #${r.rotationId} recorded`,
        result: r,
      };
    });

    if (users.length === 0) await rb.skip('end_challenges', 'no affected users named');
    else {
      await rb.step('end_challenges', async (ctx) => {
        // the approved cut-off decided it: every covered row ends first (row revoked, sealed
        // copy wiped, audited), then their workflows are terminated
        const total = { found: 0, revoked: 0, workflowsEnded: 0 };
        const batches = chunks(users, USER_BATCH);
        for (const [i, batch] of batches.entries()) {
          const r = await ctx
            .activities(cleanup, `batch-${i}`)
            .revokeUsersChallenges({ key: ctx.key, userIds: batch, incidentId });
          total.found += r.found;
          total.revoked += r.revoked;
        }
        for (const [i, batch] of batches.entries()) {
          const r = await ctx
            .activities(cleanup, `workflows-${i}`)
            .endRevokedWorkflows({ key: ctx.key, userIds: batch, incidentId });
          total.workflowsEnded += r.workflowsEnded;
        }
        return {
          summary: `${total.revoked} challenge(s) the cut-off covers revoked (reason security_incident) and ${total.workflowsEnded} of their workflows ended, for ${users.length} user(s); none left open`,
          result: { users: users.length, ...total },
        };
      });
    }

    const window = windowOf(p.since, p.until, started);
    const exported = await rb.step('forensic_export', async (ctx) => {
      const r = await ctx.activities(forensic).exportAuditWindow({
        workflowId: ctx.workflowId,
        incidentId,
        since: window.since,
        until: window.until ?? new Date().toISOString(),
      });
      return {
        summary: `${r.rows} audit event(s) ${window.since} .. ${window.until ?? 'now'} exported as ${r.name} (sha256 ${r.sha256.slice(0, 16)}...)${r.truncated ? ', truncated' : ''}`,
        result: r,
        value: r,
      };
    });
    const anomalies = await rb.step('anomaly_queries', async (ctx) => {
      const r = await ctx.activities(forensic).runAnomalyQueries({ workflowId: ctx.workflowId, incidentId });
      return {
        summary: `${r.massTokenGeneration} user(s) with more than 10 challenges${r.topUsers.length ? ` (${r.topUsers.slice(0, 5).join(', ')})` : ''}; ${r.validationOnExpired} challenge(s) with validation attempts after expiry`,
        result: r,
        value: r,
      };
    });
    const leaks = await rb.step('leak_scan', async (ctx) => {
      const r = await ctx.activities(scan).scanForTokenLeaks({
        workflowId: ctx.workflowId,
        incidentId,
        since: window.since,
        until: new Date().toISOString(),
        maxComparisons: p.leakScanMaxComparisons ?? 2000,
      });
      const verdict = r.confirmedLeaks.length
        ? `${r.confirmedLeaks.length} ISSUED TOKEN(S) FOUND (challenges ${r.confirmedLeaks.map((l) => l.challengeId).join(', ')})`
        : r.unverifiedCandidates
          ? `no issued token confirmed, but ${r.unverifiedCandidates} candidate(s) were not checked (comparison budget)`
          : 'zero issued tokens found';
      const where = `${r.scanned.logs.processLines} log line(s)${r.scanned.logs.files.length ? ` + ${r.scanned.logs.files.length} file(s)` : ''}, ${r.scanned.histories.workflows} workflow histories (${r.scanned.histories.payloads} payloads, decoded), ${r.scanned.metrics.pages} /metrics page(s)`;
      return {
        summary: `${verdict}; ${r.matches} pattern match(es) in ${where}, ${r.numericMatches} inside numbers, ${r.distinctCandidates} distinct string candidate(s) of which ${r.benignByFormat} cannot be a token by format, ${r.bcryptComparisons} bcrypt comparison(s) against ${r.secretsInWindow} secret(s) of the window`,
        result: r,
        value: r,
      };
    });
    if (exported || anomalies || leaks) {
      const findings = [
        leaks
          ? leaks.clean
            ? 'no issued token appears in logs, workflow histories or /metrics'
            : `leak scan: ${leaks.confirmedLeaks.length} confirmed leak(s), ${leaks.unverifiedCandidates} unverified candidate(s)`
          : 'leak scan did not complete',
        anomalies
          ? `${anomalies.massTokenGeneration} user(s) with mass token generation, ${anomalies.validationOnExpired} challenge(s) probed after expiry`
          : 'anomaly queries did not complete',
        exported ? `audit export ${exported.rows} event(s) (artifact ${exported.name})` : 'no audit export',
      ];
      await rb.progress('root_cause', `Runbook investigation: ${findings.join('; ')}`);
    }

    if (users.length === 0) await rb.skip('notify_users', 'no affected users named');
    else {
      await rb.step('notify_users', async (ctx) => {
        const totals = { sent: 0, alreadySent: 0, noEmail: 0, rejected: 0, unknownUsers: 0 };
        for (const [i, batch] of chunks(users, USER_BATCH).entries()) {
          const r = await ctx
            .activities(notify, `batch-${i}`)
            .notifyAffectedUsers({ incidentKey: input.incidentId || ctx.workflowId, userIds: batch });
          for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += r[k];
        }
        return {
          summary: `security notification emailed to ${totals.sent + totals.alreadySent} user(s)${totals.noEmail ? `, ${totals.noEmail} without an email address` : ''}${totals.rejected ? `, ${totals.rejected} refused by the provider` : ''}`,
          result: totals,
        };
      });
    }
  });
}
