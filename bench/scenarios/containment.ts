/**
 * Containment at scale: for each size (1,000, 10,000 and 100,000 affected live challenges by
 * default), live OTP challenges, then the compromised-token runbook for their users, started
 * at P0 through the admin API. Two clocks run from that request:
 *
 * - containment: until no affected code verifies, that is until the cut-off's instant (its
 *   audit row; the database clock, on the same machine), or later if a probe still verified
 *   after it. Probes send the right code of a different affected challenge every
 *   PROBE_INTERVAL_MS through the public API; any that verifies after the cut-off is counted
 *   (and pushes the time to its answer).
 * - cleanup: until every affected row has ended (revoked, sealed copy wiped; a bulk statement),
 *   and until every affected challenge's workflow has ended (the runbook's end_challenges step
 *   succeeds once each termination has returned; Temporal's visibility then confirms none of
 *   the challenge workflows still runs).
 *
 * Up to 10,000 challenges are issued through the public API, each with its workflow. Issuing
 * 100,000 that way would take about an hour of bcrypt on 2 cores, so the largest size issues
 * 1,000 and inserts the other 99,000 rows directly for the same users (same hash, same key,
 * no workflow): they make the cut-off cover 100,000 open challenges, the probes and the
 * cleanup clocks use the 1,000 real ones, and the bench deletes the inserted rows as soon as
 * the cut-off is seen (they have no workflow to end, and the cleanup comes seconds later).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { ACTIVE_CHALLENGE_SQL } from '../../src/auth/end';
import { CHALLENGE_WORKFLOW_TYPE } from '../../src/shared/auth';
import { runClosedLoop } from '../lib/closedLoop';
import { expectStatus, request } from '../lib/http';
import { extractOtp } from '../lib/outbox';
import { challengeIdOf, clientHeaders, initiateJson, ROUTES } from '../lib/wardenApi';
import type { BenchUser } from '../lib/users';
import { seconds } from '../lib/stats';
import type { Scenario } from './types';

export const RUNBOOK_PATH = '/admin/api/v1/runbooks/compromised-token';
// a documentation address (RFC 5737) no bench client uses; the notification step approved up front
const RUNBOOK_BODY = (userIds: string[]) => ({
  severity: 'P0',
  by: 'npm run bench',
  users: userIds,
  ips: ['203.0.113.99'],
  approve: ['notify_users'],
});
/** the runbook's later effects, timed from the request by their steps' completion */
const EFFECT_STEPS = {
  workflowsEnded: 'end_challenges',
  ipsBlocked: 'block_ips',
  keysRotated: 'rotate_keys',
  notificationsSent: 'notify_users',
} as const;
const RUN_TIMEOUT_MS = 900_000;
/** challenges issued through the API at most, per size; the rest are inserted */
const MAX_ISSUED = 10_000;
const ISSUED_FOR_LARGER = 1_000;
const PROBE_INTERVAL_MS = 50;
const PROBE_SECONDS = 20;
const CLEANUP_TIMEOUT_MS = 900_000;
export const CONTAINMENT_TARGET_S = 2;
export const CLEANUP_TARGET_S = 30;

export interface ContainmentRun {
  /** affected live challenges when the runbook started */
  challenges: number;
  /** of those, issued through the API (with a workflow); the rest inserted */
  issued: number;
  users: number;
  setupSeconds: number;
  runbookResponseMs: number;
  /** request -> no affected code verifies: the cut-off, or the last probe verified after it; null: no cut-off seen */
  containmentSeconds: number | null;
  /** request -> the cut-off's instant (its audit row) */
  cutOffSeconds: number | null;
  probes: { sent: number; verified: number; refused: number; other: number; verifiedAfterCutOff: number };
  /** request -> every affected row ended (revoked, sealed copy wiped); null: not within the timeout */
  rowsEndedSeconds: number | null;
  /** request -> every affected challenge's workflow ended (the end_challenges step); null: it did not succeed */
  cleanupSeconds: number | null;
  /** rows still open at the timeout */
  notEnded: number;
  /** challenge workflows Temporal still lists as running once the runbook finished; null: no Temporal address */
  stillRunning: number | null;
  /** request -> each later effect (its step succeeded); null: the step did not succeed */
  effects: Record<Exclude<keyof typeof EFFECT_STEPS, 'workflowsEnded'>, number | null>;
  runStatus: string;
}

export interface ContainmentResult {
  sizes: ContainmentRun[];
}

const adminHeaders = (token: string) => ({ authorization: `Bearer ${token}` });

export const containmentScenario: Scenario<ContainmentResult> = {
  name: 'containment',
  title: 'Containment at scale (compromised-token runbook)',
  // issuing 11,000+ live challenges costs as many bcrypt operations (minutes on 2 cores): run it
  // on its own with --only containment, its result is merged into results.json
  inDefaultRun: false,

  async run(ctx) {
    const { warden, options } = ctx;
    const settingsUrl = `${warden.adminUrl}/admin/api/v1/auth/settings`;
    const previous = (
      await expectStatus<Record<string, number>>(200, settingsUrl, { headers: adminHeaders(warden.adminToken) })
    ).body;
    // challenges must still be live when the runbook runs: setup takes minutes at 10,000
    await expectStatus(200, settingsUrl, {
      method: 'PUT',
      headers: adminHeaders(warden.adminToken),
      json: { otp_ttl_seconds: 7200 },
    });
    const db = new pg.Client({ connectionString: warden.databaseUrl });
    await db.connect();
    const sizes: ContainmentRun[] = [];
    try {
      for (const size of options.containmentSizes) {
        ctx.log(`containment: ${size} affected challenges`);
        sizes.push(await runSize(ctx, db, size));
      }
    } finally {
      await db.end();
      await expectStatus(200, settingsUrl, {
        method: 'PUT',
        headers: adminHeaders(warden.adminToken),
        json: { otp_ttl_seconds: previous.otp_ttl_seconds ?? 300 },
      }).catch(() => {});
    }
    return { sizes };
  },

  targets(r) {
    return r.sizes.flatMap((s) => [
      {
        name: `containment, ${s.challenges.toLocaleString('en-US')} affected challenges: no affected code verifies`,
        target: `< ${CONTAINMENT_TARGET_S} s`,
        measured:
          s.containmentSeconds === null
            ? 'no cut-off seen'
            : `${s.containmentSeconds} s (${s.probes.verifiedAfterCutOff} probe(s) verified after the cut-off)`,
        pass:
          s.containmentSeconds !== null &&
          s.containmentSeconds < CONTAINMENT_TARGET_S &&
          s.probes.verifiedAfterCutOff === 0,
      },
      {
        name: `cleanup, ${s.issued.toLocaleString('en-US')} challenge workflows: all ended`,
        target: s.issued === 10_000 ? `< ${CLEANUP_TARGET_S} s` : 'reported',
        measured:
          s.cleanupSeconds === null
            ? 'the cleanup step did not succeed'
            : `${s.cleanupSeconds} s (${s.stillRunning ?? 'unknown'} still running after it)`,
        pass:
          s.cleanupSeconds !== null &&
          s.stillRunning === 0 &&
          (s.issued !== 10_000 || s.cleanupSeconds < CLEANUP_TARGET_S),
      },
    ]);
  },

  effects(r) {
    return r.sizes.flatMap((s) => {
      const runbook = `compromised token, ${s.challenges.toLocaleString('en-US')} affected challenges${s.issued < s.challenges ? ` (${s.issued.toLocaleString('en-US')} with workflows)` : ''}`;
      return [
        {
          runbook,
          effect: 'request -> no affected code verifies',
          measured: seconds(s.containmentSeconds),
          target: `< ${CONTAINMENT_TARGET_S} s`,
        },
        {
          runbook,
          effect: 'request -> every affected row ended, secret wiped',
          measured: seconds(s.rowsEndedSeconds),
          target: 'reported',
        },
        {
          runbook,
          effect: 'request -> every workflow ended',
          measured: seconds(s.cleanupSeconds),
          target: s.issued === 10_000 ? `< ${CLEANUP_TARGET_S} s` : 'reported',
        },
        { runbook, effect: 'request -> IPs blocked', measured: seconds(s.effects.ipsBlocked), target: 'reported' },
        { runbook, effect: 'request -> keys rotated', measured: seconds(s.effects.keysRotated), target: 'reported' },
        {
          runbook,
          effect: 'request -> notifications sent',
          measured: seconds(s.effects.notificationsSent),
          target: 'reported',
        },
      ];
    });
  },

  render(r) {
    const n = (v: number) => v.toLocaleString('en-US');
    const detail = r.sizes.map(
      (s) =>
        `| ${n(s.challenges)} | ${n(s.issued)} | ${n(s.users)} | ${s.runbookResponseMs} ms | ${s.probes.sent} sent: ${s.probes.verified} verified before the cut-off, ${s.probes.refused} refused, ${s.probes.verifiedAfterCutOff} verified after it | ${s.setupSeconds} s |`,
    );
    const effects = r.sizes.map(
      (s) =>
        `| ${n(s.challenges)} | **${seconds(s.containmentSeconds)}** | ${s.rowsEndedSeconds === null ? `${n(s.notEnded)} still open` : `${s.rowsEndedSeconds} s`} | ${seconds(s.cleanupSeconds)} (${n(s.issued)} workflows) | ${seconds(s.effects.ipsBlocked)} | ${seconds(s.effects.keysRotated)} | ${seconds(s.effects.notificationsSent)} (${n(s.users)} users) | ${s.runStatus} |`,
    );
    return [
      'Compromised-token runbook, time from the request to each effect:',
      '',
      '| affected challenges | no affected code verifies | every row ended, secret wiped | every workflow ended | IPs blocked | keys rotated | notifications sent | run |',
      '|--:|--:|--:|--:|--:|--:|--:|---|',
      ...effects,
      '',
      '| affected challenges | with a workflow | users | runbook request answered | probes | setup (not timed) |',
      '|--:|--:|--:|--:|---|--:|',
      ...detail,
    ].join('\n');
  },
};

async function runSize(
  ctx: Parameters<Scenario<ContainmentResult>['run']>[0],
  db: pg.Client,
  size: number,
): Promise<ContainmentRun> {
  const { warden } = ctx;
  const issuedCount = size <= MAX_ISSUED ? size : ISSUED_FOR_LARGER;
  const setupStarted = performance.now();
  const issued: Array<{ user: BenchUser; id: string }> = [];
  await runClosedLoop<BenchUser>({
    baseUrl: warden.publicUrl,
    connections: 32,
    amount: issuedCount,
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
      if (id) issued.push({ user, id });
    },
  });
  const ids = issued.map((c) => c.id);
  // the codes, for the probes: every bench user has a phone of its own
  const codes = new Map<string, string>();
  for (let tries = 0; tries < 60 && codes.size < Math.min(issued.length, 2000); tries += 1) {
    const byPhone = new Map((await ctx.outbox.all()).map((m) => [m.to, extractOtp(m.body)]));
    for (const c of issued.slice(0, 2000)) {
      const code = byPhone.get(c.user.phone);
      if (code) codes.set(c.id, code);
    }
    if (codes.size < Math.min(issued.length, 2000)) await sleep(1000);
  }
  if (warden.embedded) await ctx.outbox.clear();
  // the rest of the size: rows for the same users, no workflow
  let inserted: string[] = [];
  if (size > issuedCount) {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO auth_challenges (id, user_id, method, secret_hash, key_id, max_attempts, client_ip_masked, expires_at)
       SELECT gen_random_uuid(), c.user_id, c.method, c.secret_hash, c.key_id, c.max_attempts, c.client_ip_masked, c.expires_at
         FROM generate_series(1, $2::int) AS n
         JOIN LATERAL (SELECT * FROM auth_challenges WHERE id = ($1::uuid[])[1 + (n % array_length($1::uuid[], 1))]) c ON true
       RETURNING id`,
      [ids, size - issuedCount],
    );
    inserted = rows.map((r) => r.id);
  }
  const setupSeconds = Math.round(performance.now() - setupStarted) / 1000;
  const live = async (which: string[]) =>
    (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM auth_challenges WHERE id = ANY($1::uuid[]) AND ${ACTIVE_CHALLENGE_SQL}`,
        [which],
      )
    ).rows[0]!.n;
  const liveAtStart = (await live(ids)) + (inserted.length ? await live(inserted) : 0);
  const users = [...new Set(issued.map((c) => c.user.sub))];
  ctx.log(
    `containment: ${liveAtStart} live (${issued.length} issued, ${inserted.length} inserted) for ${users.length} users after ${setupSeconds} s; starting the runbook`,
  );

  const startedWall = Date.now();
  const started = performance.now();
  const at = () => Math.round(performance.now() - started) / 1000;
  // probes: the right code of a different challenge every PROBE_INTERVAL_MS
  const probeTargets = issued.filter((c) => codes.has(c.id));
  const probes: Array<Promise<{ sentAt: number; answeredAt: number; status: number; error?: string }>> = [];
  let probing = true;
  const prober = (async () => {
    for (let i = 0; probing && i < probeTargets.length && at() < PROBE_SECONDS; i += 1) {
      const c = probeTargets[i]!;
      const sentAt = at();
      probes.push(
        request(`${warden.publicUrl}${ROUTES.otp.verify}`, {
          method: 'POST',
          headers: clientHeaders(c.user),
          json: { challenge_id: c.id, otp: codes.get(c.id) },
        }).then(
          (res) => ({ sentAt, answeredAt: at(), status: res.status, error: (res.body as { error?: string })?.error }),
          (err: NodeJS.ErrnoException) => ({ sentAt, answeredAt: at(), status: 0, error: err.code ?? err.message }),
        ),
      );
      await sleep(PROBE_INTERVAL_MS);
    }
  })();
  const res = await request(`${warden.adminUrl}${RUNBOOK_PATH}`, {
    method: 'POST',
    headers: adminHeaders(warden.adminToken),
    json: RUNBOOK_BODY(users),
    timeoutMs: 600_000,
  });
  const runbookResponseMs = Math.round(performance.now() - started);
  if (res.status >= 300) {
    probing = false;
    await prober;
    throw new Error(`the runbook answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  }
  const workflowId = (res.body as { workflow_id?: string } | undefined)?.workflow_id;

  // the rows' clock runs alongside the probes
  let rowsEndedSeconds: number | null = null;
  let notEnded = liveAtStart;
  const rowsEnded = (async () => {
    while (performance.now() - started < CLEANUP_TIMEOUT_MS) {
      notEnded = await live(ids);
      if (notEnded === 0) {
        rowsEndedSeconds = at();
        return;
      }
      await sleep(250);
    }
  })();

  // containment is measured while probes run
  let cutOffSeconds: number | null = null;
  while (cutOffSeconds === null && at() < PROBE_SECONDS) {
    const { rows } = await db.query<{ occurred_at: Date }>(
      `SELECT occurred_at FROM audit_events WHERE event_type = 'identity.auth.challenges_cut_off'
          AND details->>'actor' LIKE $1 ORDER BY id LIMIT 1`,
      [`${workflowId}/%`],
    );
    if (rows[0]) cutOffSeconds = Math.round(rows[0].occurred_at.getTime() - startedWall) / 1000;
    else await sleep(50);
  }
  // the inserted rows have no workflow to end: gone as soon as the cut-off is seen (the
  // cleanup step starts seconds later, after the key rotation)
  if (inserted.length) await db.query('DELETE FROM auth_challenges WHERE id = ANY($1::uuid[])', [inserted]);
  await prober;
  const answers = await Promise.all(probes);
  const verified = answers.filter((a) => a.status === 200);
  const verifiedAfterCutOff = cutOffSeconds === null ? [] : verified.filter((a) => a.sentAt > cutOffSeconds!);
  const containmentSeconds =
    cutOffSeconds === null ? null : Math.max(cutOffSeconds, ...verifiedAfterCutOff.map((a) => a.answeredAt));
  await rowsEnded;

  // the rest of the runbook: IPs blocked, keys rotated, users notified
  let runStatus = 'running';
  while (runStatus === 'running' && performance.now() - started < RUN_TIMEOUT_MS) {
    const { rows } = await db.query<{ status: string }>('SELECT status FROM runbook_runs WHERE workflow_id = $1', [
      workflowId,
    ]);
    runStatus = rows[0]?.status ?? 'running';
    if (runStatus === 'running') await sleep(500);
  }
  const { rows: steps } = await db.query<{ step: string; status: string; updated_at: Date }>(
    'SELECT step, status, updated_at FROM runbook_steps WHERE workflow_id = $1',
    [workflowId],
  );
  const effectAt = (step: string) => {
    const row = steps.find((r) => r.step === step && r.status === 'succeeded');
    return row ? Math.round(row.updated_at.getTime() - startedWall) / 1000 : null;
  };
  const { workflowsEnded: cleanupSeconds, ...effects } = Object.fromEntries(
    Object.entries(EFFECT_STEPS).map(([effect, step]) => [effect, effectAt(step)]),
  ) as Record<keyof typeof EFFECT_STEPS, number | null>;
  const stillRunning = warden.temporalAddress
    ? await runningChallengeWorkflows(warden.temporalAddress, warden.temporalNamespace)
    : null;
  return {
    challenges: liveAtStart,
    issued: issued.length,
    users: users.length,
    setupSeconds,
    runbookResponseMs,
    containmentSeconds,
    cutOffSeconds,
    probes: {
      sent: answers.length,
      verified: verified.length,
      refused: answers.filter((a) => a.status === 410).length,
      other: answers.filter((a) => a.status !== 200 && a.status !== 410).length,
      verifiedAfterCutOff: verifiedAfterCutOff.length,
    },
    rowsEndedSeconds,
    cleanupSeconds,
    notEnded,
    stillRunning,
    effects,
    runStatus,
  };
}

/** Challenge workflows still running (the bench starts none but the affected ones). */
async function runningChallengeWorkflows(address: string, namespace: string): Promise<number> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    const { count } = await client.workflow.count(
      `WorkflowType = '${CHALLENGE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`,
    );
    return count;
  } finally {
    await connection.close();
  }
}
