/**
 * Compromised-token response at scale: N affected users (10,000 by default), each with a live
 * OTP challenge issued through the public API, then the compromised-token runbook started
 * through the admin API for all of them; the clock runs from that request until Postgres shows
 * every one of those challenges revoked.
 *
 * The runbook is the compromised-token one (`POST /admin/api/v1/runbooks/compromised-token`, src/api/admin/
 * runbooks.ts): started standalone at P0, where containment steps (revoking challenges first)
 * run without waiting for an approval. Until its route answers, the scenario reports itself
 * skipped. RUNBOOK_BODY is the one place that knows the request shape.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ACTIVE_CHALLENGE_SQL } from '../../src/auth/end';
import { runClosedLoop } from '../lib/closedLoop';
import { expectStatus, request } from '../lib/http';
import { challengeIdOf, clientHeaders, initiateJson, ROUTES } from '../lib/wardenApi';
import type { BenchUser } from '../lib/users';
import type { Scenario } from './types';

export const RUNBOOK_PATH = '/admin/api/v1/runbooks/compromised-token';
const RUNBOOK_BODY = (userIds: string[]) => ({ severity: 'P0', by: 'npm run bench', users: userIds });

export interface CompromisedTokenResult {
  users: number;
  /** challenges issued and still pending when the runbook started */
  liveChallenges: number;
  setupSeconds: number;
  runbookResponse: { status: number; ms: number; workflowId?: string };
  /** runbook request sent -> every challenge of the set revoked (null: not within the timeout) */
  allRevokedSeconds: number | null;
  /** revoked count over time: [seconds since start, revoked] */
  progress: Array<[number, number]>;
  notRevoked: number;
}

const adminHeaders = (token: string) => ({ authorization: `Bearer ${token}` });

export const compromisedTokenScenario: Scenario<CompromisedTokenResult> = {
  name: 'compromisedToken',
  title: 'Compromised-token response',
  // issuing 10,000 live challenges costs 10,000 bcrypt operations (minutes on 2 cores): run it
  // on its own with --only compromisedToken, its result is merged into results.json
  inDefaultRun: false,

  async run(ctx) {
    const { warden, options } = ctx;
    // is the runbook there? an empty body is refused with 400 by a route that exists
    const probe = await request(`${warden.adminUrl}${RUNBOOK_PATH}`, {
      method: 'POST',
      headers: adminHeaders(warden.adminToken),
      json: {},
    });
    if (probe.status === 404)
      return { skipped: true, reason: `the runbook route ${RUNBOOK_PATH} does not exist on this stack` };
    if (probe.status === 501)
      return { skipped: true, reason: `the compromised-token runbook is not available in this version (501)` };

    const n = options.compromisedUsers;
    // challenges must still be live when the runbook runs: setup takes minutes at 10,000
    const settingsUrl = `${warden.adminUrl}/admin/api/v1/auth/settings`;
    const previous = (
      await expectStatus<Record<string, number>>(200, settingsUrl, { headers: adminHeaders(warden.adminToken) })
    ).body;
    await expectStatus(200, settingsUrl, {
      method: 'PUT',
      headers: adminHeaders(warden.adminToken),
      json: { otp_ttl_seconds: 7200 },
    });
    const db = new pg.Client({ connectionString: warden.databaseUrl });
    await db.connect();
    try {
      ctx.log(`compromised token: issuing ${n} live OTP challenges (setup, not timed)`);
      const setupStarted = performance.now();
      const users: BenchUser[] = [];
      const challengeIds: string[] = [];
      await runClosedLoop<BenchUser>({
        baseUrl: warden.publicUrl,
        connections: 32,
        amount: n,
        next: () => {
          const user = ctx.users.take();
          return {
            item: user,
            method: 'POST',
            path: ROUTES.otp.initiate,
            body: JSON.stringify(initiateJson(user)),
            headers: clientHeaders(user),
          };
        },
        onAnswer: (user, answer) => {
          const id = answer.status === 202 ? challengeIdOf(answer.body) : undefined;
          if (id) {
            users.push(user);
            challengeIds.push(id);
          }
        },
      });
      const setupSeconds = Math.round(performance.now() - setupStarted) / 1000;
      if (warden.embedded) await ctx.outbox.clear();
      const countRevoked = async () => {
        const { rows } = await db.query<{ revoked: number; live: number }>(
          `SELECT count(*) FILTER (WHERE status = 'revoked')::int AS revoked,
                  count(*) FILTER (WHERE ${ACTIVE_CHALLENGE_SQL})::int AS live
             FROM auth_challenges WHERE id = ANY($1::uuid[])`,
          [challengeIds],
        );
        return rows[0]!;
      };
      const live = (await countRevoked()).live;
      ctx.log(`compromised token: ${live} live challenges after ${setupSeconds} s; starting the runbook`);

      const started = performance.now();
      const res = await request(`${warden.adminUrl}${RUNBOOK_PATH}`, {
        method: 'POST',
        headers: adminHeaders(warden.adminToken),
        json: RUNBOOK_BODY(users.map((u) => u.sub)),
        timeoutMs: 600_000,
      });
      const responseMs = Math.round(performance.now() - started);
      if (res.status >= 300)
        throw new Error(`the runbook answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
      const progress: Array<[number, number]> = [];
      const deadline = started + 900_000;
      let allRevokedSeconds: number | null = null;
      let last = { revoked: 0, live };
      while (performance.now() < deadline) {
        last = await countRevoked();
        const at = Math.round(performance.now() - started) / 1000;
        progress.push([at, last.revoked]);
        if (last.live === 0) {
          allRevokedSeconds = at;
          break;
        }
        await sleep(250);
      }
      return {
        users: n,
        liveChallenges: live,
        setupSeconds,
        runbookResponse: {
          status: res.status,
          ms: responseMs,
          workflowId: (res.body as { workflow_id?: string } | undefined)?.workflow_id,
        },
        allRevokedSeconds,
        // keep the curve readable: about 40 points
        progress: progress.filter(
          (_, i) => i % Math.max(1, Math.ceil(progress.length / 40)) === 0 || i === progress.length - 1,
        ),
        notRevoked: challengeIds.length - last.revoked,
      };
    } finally {
      await db.end();
      await expectStatus(200, settingsUrl, {
        method: 'PUT',
        headers: adminHeaders(warden.adminToken),
        json: { otp_ttl_seconds: previous.otp_ttl_seconds ?? 300 },
      }).catch(() => {});
    }
  },

  targets(r) {
    return [
      {
        name: `compromised-token runbook: all ${r.liveChallenges} live challenges revoked`,
        target: 'every one (time reported)',
        measured:
          r.allRevokedSeconds === null ? `${r.notRevoked} not revoked within 15 min` : `${r.allRevokedSeconds} s`,
        pass: r.allRevokedSeconds !== null,
      },
    ];
  },

  render(r) {
    return [
      `${r.users} affected users, ${r.liveChallenges} live OTP challenges (issued through the public API in ${r.setupSeconds} s, not timed).`,
      `The runbook request answered ${r.runbookResponse.status} in ${r.runbookResponse.ms} ms (run ${r.runbookResponse.workflowId ?? '?'}); ` +
        (r.allRevokedSeconds === null
          ? `**${r.notRevoked} challenges were still not revoked after 15 minutes.**`
          : `**every challenge was revoked ${r.allRevokedSeconds} s after the request.**`),
      '',
      `Revoked over time (s: count): ${r.progress.map(([s, c]) => `${s}: ${c}`).join(', ')}`,
    ].join('\n');
  },
};
