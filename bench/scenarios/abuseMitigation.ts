/**
 * Abuse mitigation, the time to what an attacker and the service notice. With the default rate
 * limits in force, ATTACKERS addresses send OTP verifies for made-up challenges (enumeration) at
 * a steady rate each, for the whole scenario. Warden refuses them with 429 once an address has
 * spent its per-IP budget; each refusal is a rate-limit violation.
 *
 * The alert that opens an abuse incident (HighRateLimitExceededRate in
 * deploy/prometheus/rules.yml: refusals over 0.5/s on the 5-minute rate, held for 5 minutes) is
 * evaluated here on Warden's own counter, as Prometheus would; when it fires, the bench starts
 * the runbook as that incident's responder would (P1, its destructive steps approved up front).
 * Clocks, from the attack's start:
 *
 * - violations begin: the first 429 an attacker gets;
 * - alert condition, alert fires: the condition first holds, then has held for the rule's hold;
 * - first mitigation: the first 403 an attacker gets (a block or the CAPTCHA wall);
 * - first block: the first 403 `blocked`;
 * - quiet: from the first block until a 10-second window in which Warden counted fewer
 *   violations than the runbook's quiet threshold allows (5 per minute by default);
 * - limits restored: the runbook watched the quiet for QUIET_MINUTES and put the limits back.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { DEFAULT_RATE_LIMITS } from '../../src/auth/settings';
import { DEFAULT_ABUSE_PARAMS } from '../../src/shared/runbookAbuse';
import { expectStatus, request } from '../lib/http';
import { ROUTES } from '../lib/wardenApi';
import { seconds } from '../lib/stats';
import type { Scenario } from './types';

export const RUNBOOK_PATH = '/admin/api/v1/runbooks/abuse-mitigation';
/** documentation addresses (RFC 5737) no bench user has */
const ATTACKERS = Array.from({ length: 10 }, (_, i) => `198.51.100.${i + 1}`);
const PER_ATTACKER_PER_SECOND = 5;
/** the rule: rate(...[5m]) > 0.5, for: 5m */
const ALERT_RATE_PER_SECOND = 0.5;
const ALERT_WINDOW_S = 300;
const ALERT_HOLD_S = 300;
const QUIET_WINDOW_S = 10;
/** the watch: sample every POLL_SECONDS, restore after QUIET_MINUTES of quiet */
const POLL_SECONDS = 10;
const QUIET_MINUTES = 1;
const BLOCK_TTL_MINUTES = 10;
const TIMEOUT_MS = 720_000;
const SCRAPE_MS = 500;

export interface AbuseMitigationResult {
  attackers: number;
  requestsPerSecond: number;
  perIpLimit: string;
  /** from the attack's start, seconds; null: not reached */
  violationsBeginSeconds: number | null;
  alertConditionSeconds: number | null;
  alertFiresSeconds: number | null;
  runbookRequestSeconds: number | null;
  firstMitigationSeconds: number | null;
  firstBlockSeconds: number | null;
  /** first block -> a QUIET_WINDOW_S window under the quiet threshold */
  quietAfterBlockSeconds: number | null;
  limitsRestoredSeconds: number | null;
  runStatus: string;
  answers: Record<string, number>;
}

const adminHeaders = (token: string) => ({ authorization: `Bearer ${token}` });

/** Warden's count of rate-limit refusals, every scope (the alert's input). */
async function violationsCounted(metricsUrl: string): Promise<number> {
  const res = await request<string>(`${metricsUrl}/metrics`, { headers: { accept: 'text/plain' } });
  let total = 0;
  for (const line of String(res.body).split('\n')) {
    if (line.startsWith('warden_ratelimit_exceeded_total')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export const abuseMitigationScenario: Scenario<AbuseMitigationResult> = {
  name: 'abuseMitigation',
  title: 'Abuse mitigation (enumeration attack, runbook to quiet)',
  inDefaultRun: false,

  async run(ctx) {
    const { warden } = ctx;
    const limitsUrl = `${warden.adminUrl}/admin/api/v1/ratelimits`;
    const headers = adminHeaders(warden.adminToken);
    const previous = (await expectStatus(200, limitsUrl, { headers })).body;
    await expectStatus(200, limitsUrl, { method: 'PUT', headers, json: DEFAULT_RATE_LIMITS });

    const answers: Record<string, number> = {};
    const started = performance.now();
    const at = () => Math.round(performance.now() - started) / 1000;
    let violationsBegin: number | null = null;
    let firstMitigation: number | null = null;
    let firstBlock: number | null = null;
    let attacking = true;
    const attack = async (ip: string) => {
      const inFlight: Array<Promise<void>> = [];
      for (let i = 0; attacking; i += 1) {
        const wait = started + (i * 1000) / PER_ATTACKER_PER_SECOND - performance.now();
        if (wait > 0) await sleep(wait);
        inFlight.push(
          request<{ error?: string }>(`${warden.publicUrl}${ROUTES.otp.verify}`, {
            method: 'POST',
            headers: { 'x-forwarded-for': ip },
            json: { challenge_id: randomUUID(), otp: '123456' },
          }).then(
            (res) => {
              const key = `${res.status} ${res.body?.error ?? ''}`.trim();
              answers[key] = (answers[key] ?? 0) + 1;
              if (res.status === 429) violationsBegin ??= at();
              if (res.status === 403) firstMitigation ??= at();
              if (res.status === 403 && res.body?.error === 'blocked') firstBlock ??= at();
            },
            () => {
              answers['no answer'] = (answers['no answer'] ?? 0) + 1;
            },
          ),
        );
      }
      await Promise.all(inFlight);
    };
    const attacks = ATTACKERS.map(attack);

    // Warden's counter, sampled: the alert's condition, then the quiet after the block
    const samples: Array<{ at: number; count: number }> = [];
    const countAt = async () => {
      samples.push({ at: at(), count: await violationsCounted(warden.metricsUrl) });
      return samples.at(-1)!;
    };
    await countAt();
    let alertCondition: number | null = null;
    let alertFires: number | null = null;
    const requested: { at: number | null } = { at: null };
    let quietAfterBlock: number | null = null;
    let limitsRestored: number | null = null;
    let runStatus = 'not started';
    try {
      // Prometheus's view: the increase over the trailing window, the condition held since `holding`
      let holding: number | null = null;
      while (alertFires === null && performance.now() - started < TIMEOUT_MS) {
        await sleep(SCRAPE_MS);
        const now = await countAt();
        const from = samples.find((x) => x.at >= now.at - ALERT_WINDOW_S)!;
        const firing = (now.count - from.count) / ALERT_WINDOW_S > ALERT_RATE_PER_SECOND;
        holding = firing ? (holding ?? now.at) : null;
        if (holding !== null) alertCondition ??= holding;
        if (holding !== null && now.at - holding >= ALERT_HOLD_S) alertFires = now.at;
      }
      if (alertFires === null) throw new Error('the alert never fired');
      ctx.log(`abuse: alert condition after ${alertCondition} s, fired after ${alertFires} s; starting the runbook`);
      requested.at = at();
      const start = await expectStatus<{ workflow_id: string }>(201, `${warden.adminUrl}${RUNBOOK_PATH}`, {
        method: 'POST',
        headers,
        json: {
          severity: 'P1',
          by: 'npm run bench',
          approve: ['block_ips', 'tighten_limits', 'enable_captcha'],
          params: { pollSeconds: POLL_SECONDS, quietMinutes: QUIET_MINUTES, blockTtlMinutes: BLOCK_TTL_MINUTES },
        },
      });
      const runUrl = `${warden.adminUrl}/admin/api/v1/runbooks/runs/${start.body.workflow_id}`;

      const quietBelow = (DEFAULT_ABUSE_PARAMS.quietRatePerMinute * QUIET_WINDOW_S) / 60;
      while (performance.now() - started < TIMEOUT_MS) {
        await sleep(SCRAPE_MS);
        const now = await countAt();
        const windowStart = samples.find((s) => s.at >= now.at - QUIET_WINDOW_S)!;
        if (
          quietAfterBlock === null &&
          firstBlock !== null &&
          windowStart.at >= firstBlock &&
          now.at - windowStart.at >= QUIET_WINDOW_S - SCRAPE_MS / 1000 &&
          now.count - windowStart.count < quietBelow
        )
          quietAfterBlock = Math.round((windowStart.at - firstBlock) * 1000) / 1000;
        const run = await request<{ status?: string; steps?: Array<{ name: string; status: string }> }>(runUrl, {
          headers,
        });
        runStatus = run.body.status ?? `answered ${run.status}`;
        if (run.body.steps?.find((s) => s.name === 'restore_limits')?.status === 'succeeded') {
          limitsRestored ??= at();
        }
        if (runStatus !== 'running') break;
      }
    } finally {
      attacking = false;
      await Promise.all(attacks);
      await request(limitsUrl, { method: 'PUT', headers, json: previous }).catch(() => {});
    }
    return {
      attackers: ATTACKERS.length,
      requestsPerSecond: ATTACKERS.length * PER_ATTACKER_PER_SECOND,
      perIpLimit: `${DEFAULT_RATE_LIMITS.per_ip.max_attempts} per ${DEFAULT_RATE_LIMITS.per_ip.window_seconds / 60} min`,
      violationsBeginSeconds: violationsBegin,
      alertConditionSeconds: alertCondition,
      alertFiresSeconds: alertFires,
      runbookRequestSeconds: requested.at,
      firstMitigationSeconds: firstMitigation,
      firstBlockSeconds: firstBlock,
      quietAfterBlockSeconds: quietAfterBlock,
      limitsRestoredSeconds: limitsRestored,
      runStatus,
      answers,
    };
  },

  targets(r) {
    return [
      {
        name: 'abuse mitigation: attack start -> first block',
        target: 'reported',
        measured: r.firstBlockSeconds === null ? 'no block' : `${r.firstBlockSeconds} s`,
        pass: r.firstBlockSeconds !== null,
      },
      {
        name: 'abuse mitigation: first block -> violations under the quiet threshold',
        target: 'reported',
        measured: r.quietAfterBlockSeconds === null ? 'not quiet' : `${r.quietAfterBlockSeconds} s`,
        pass: r.quietAfterBlockSeconds !== null,
      },
    ];
  },

  effects(r) {
    return [
      {
        runbook: 'abuse mitigation',
        effect: 'attack start -> first block (the alert holds 5 min, then the runbook)',
        measured: seconds(r.firstBlockSeconds),
        target: 'reported',
      },
      {
        runbook: 'abuse mitigation',
        effect: 'alert fires (runbook requested) -> first block',
        measured:
          r.firstBlockSeconds === null || r.runbookRequestSeconds === null
            ? 'not reached'
            : `${Math.round((r.firstBlockSeconds - r.runbookRequestSeconds) * 1000) / 1000} s`,
        target: 'reported',
      },
      {
        runbook: 'abuse mitigation',
        effect: 'first block -> violations under the quiet threshold',
        measured: seconds(r.quietAfterBlockSeconds),
        target: 'reported',
      },
    ];
  },

  render(r) {
    const answers = Object.entries(r.answers)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => `${n} × ${k}`)
      .join(', ');
    return [
      `${r.attackers} addresses, ${r.requestsPerSecond} verifies/s in all for made-up challenges; per-IP limit ${r.perIpLimit}. Times from the attack's start; the runbook is started when the alert fires (its condition held for the rule's 5 minutes).`,
      '',
      '| violations begin | alert condition | alert fires, runbook requested | first mitigation (any 403) | **first block** | **block -> under the quiet threshold** | limits restored (after 1 min of quiet) | run |',
      '|--:|--:|--:|--:|--:|--:|--:|---|',
      `| ${seconds(r.violationsBeginSeconds)} | ${seconds(r.alertConditionSeconds)} | ${seconds(r.runbookRequestSeconds)} | ${seconds(r.firstMitigationSeconds)} | **${seconds(r.firstBlockSeconds)}** | **${seconds(r.quietAfterBlockSeconds)}** | ${seconds(r.limitsRestoredSeconds)} | ${r.runStatus} |`,
      '',
      `Answers the attackers got: ${answers}.`,
    ].join('\n');
  },
};
