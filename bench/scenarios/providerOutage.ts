/**
 * Provider outage, the time to what users notice: OTP initiates arrive at a steady rate while
 * the SMS primary (Twilio, in the sandbox) starts answering 503 to every send, then recovers.
 * Two clocks, each from the sandbox's own record of when it accepted a message:
 *
 * - failover: from the fault's start to the first message the backup (Plivo) accepted;
 * - recovery: from the fault's end to the first message the primary accepted again.
 *
 * It also counts what the outage cost: initiates refused, and challenges whose first message
 * never reached any provider within the run.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectStatus, request } from '../lib/http';
import { acceptedAt, type OutboxMessage } from '../lib/outbox';
import { challengeIdOf, clientHeaders, initiateJson, ROUTES } from '../lib/wardenApi';
import type { Scenario } from './types';

const RATE_PER_SECOND = 4;
const WARMUP_MS = 5_000;
const OUTAGE_MS = 20_000;
const RECOVERY_TIMEOUT_MS = 180_000;
const SETTLE_MS = 15_000;
export const FAILOVER_TARGET_S = 5;

export interface ProviderOutageResult {
  ratePerSecond: number;
  outageSeconds: number;
  /** fault start -> first message accepted by the backup; null: none during the outage */
  failoverSeconds: number | null;
  /** fault end -> first message accepted by the primary again; null: not within the timeout */
  recoverySeconds: number | null;
  initiates: number;
  refused: number;
  /** of the challenges started during the outage, how many messages each provider accepted */
  duringOutage: { primary: number; backup: number; challenges: number };
  /** challenges whose message no provider accepted by the end of the run */
  undelivered: number;
}

export const providerOutageScenario: Scenario<ProviderOutageResult> = {
  name: 'providerOutage',
  title: 'Provider outage (SMS failover and recovery)',
  inDefaultRun: false,

  async run(ctx) {
    const { warden } = ctx;
    if (!warden.embedded)
      return { skipped: true, reason: 'faults are injected into the sandbox the benchmark started' };
    const faults = `${warden.sandboxUrl}/sandbox/faults`;
    await ctx.outbox.clear();
    const started = performance.now();
    const byPhone = new Map<string, { at: number; id?: string }>();
    let refused = 0;
    let running = true;
    // steady arrivals, one user each: a challenge is matched to its message by the user's phone
    const load = (async () => {
      const inFlight: Array<Promise<void>> = [];
      for (let i = 0; running; i += 1) {
        const due = started + (i * 1000) / RATE_PER_SECOND;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const user = ctx.users.take();
        const at = Date.now();
        inFlight.push(
          request(`${warden.publicUrl}${ROUTES.otp.initiate}`, {
            method: 'POST',
            headers: clientHeaders(user),
            json: initiateJson(user),
          }).then(
            (res) => {
              const id = res.status === 202 ? challengeIdOf(res.body) : undefined;
              if (id) byPhone.set(user.phone, { at, id });
              else refused += 1;
            },
            () => {
              refused += 1;
            },
          ),
        );
      }
      await Promise.all(inFlight);
    })();

    const firstAfter = async (provider: string, since: number, timeoutMs: number) => {
      const deadline = performance.now() + timeoutMs;
      while (performance.now() < deadline) {
        const hit = (await ctx.outbox.all())
          .filter((m) => m.provider === provider && acceptedAt(m) >= since)
          .sort((a, b) => acceptedAt(a) - acceptedAt(b))[0];
        if (hit) return acceptedAt(hit);
        await sleep(100);
      }
      return null;
    };

    let failoverSeconds: number | null;
    let recoverySeconds: number | null;
    let faultStart: number;
    let faultEnd: number;
    try {
      await sleep(WARMUP_MS);
      faultStart = Date.now();
      await expectStatus([200, 201], faults, {
        method: 'POST',
        json: { provider: 'twilio', mode: 'error', status: 503 },
      });
      ctx.log('provider outage: Twilio answers 503 from now on');
      const failover = await firstAfter('plivo', faultStart, OUTAGE_MS);
      failoverSeconds = failover === null ? null : Math.round(failover - faultStart) / 1000;
      const left = faultStart + OUTAGE_MS - Date.now();
      if (left > 0) await sleep(left);
      faultEnd = Date.now();
      await expectStatus([200, 204], faults, { method: 'DELETE' });
      ctx.log('provider outage: Twilio healthy again');
      const recovery = await firstAfter('twilio', faultEnd, RECOVERY_TIMEOUT_MS);
      recoverySeconds = recovery === null ? null : Math.round(recovery - faultEnd) / 1000;
    } finally {
      running = false;
      await load;
      await request(faults, { method: 'DELETE' }).catch(() => {});
    }
    await sleep(SETTLE_MS);
    const outbox = await ctx.outbox.all();
    const accepted = new Map<string, OutboxMessage>();
    for (const m of outbox) if (m.channel === 'sms' && !accepted.has(m.to)) accepted.set(m.to, m);
    let primary = 0;
    let backup = 0;
    let challenges = 0;
    let undelivered = 0;
    for (const [phone, initiated] of byPhone) {
      const m = accepted.get(phone);
      if (!m) undelivered += 1;
      if (initiated.at < faultStart || initiated.at >= faultEnd) continue;
      challenges += 1;
      if (m?.provider === 'twilio') primary += 1;
      if (m?.provider === 'plivo') backup += 1;
    }
    return {
      ratePerSecond: RATE_PER_SECOND,
      outageSeconds: OUTAGE_MS / 1000,
      failoverSeconds,
      recoverySeconds,
      initiates: byPhone.size + refused,
      refused,
      duringOutage: { primary, backup, challenges },
      undelivered,
    };
  },

  targets(r) {
    return [
      {
        name: 'provider outage: SMS primary failing -> first message through the backup',
        target: `< ${FAILOVER_TARGET_S} s`,
        measured: r.failoverSeconds === null ? 'none during the outage' : `${r.failoverSeconds} s`,
        pass: r.failoverSeconds !== null && r.failoverSeconds < FAILOVER_TARGET_S,
      },
      {
        name: 'provider outage: primary healthy again -> first message through it',
        target: 'reported',
        measured: r.recoverySeconds === null ? 'not within 3 min' : `${r.recoverySeconds} s`,
        pass: r.recoverySeconds !== null,
      },
      {
        name: 'provider outage: challenges whose message no provider accepted',
        target: '0',
        measured: String(r.undelivered),
        pass: r.undelivered === 0,
      },
    ];
  },

  effects(r) {
    return [
      {
        runbook: 'provider outage (SMS)',
        effect: 'primary failing -> first message through the backup',
        measured: r.failoverSeconds === null ? 'none' : `${r.failoverSeconds} s`,
        target: `< ${FAILOVER_TARGET_S} s`,
      },
      {
        runbook: 'provider outage (SMS)',
        effect: 'primary healthy again -> first message through it',
        measured: r.recoverySeconds === null ? 'not within 3 min' : `${r.recoverySeconds} s`,
        target: 'reported',
      },
    ];
  },

  render(r) {
    return [
      `OTP initiates at ${r.ratePerSecond}/s; Twilio (the SMS primary) answered 503 to every send for ${r.outageSeconds} s.`,
      '',
      '| primary failing -> first message through the backup | primary healthy -> first message through it again | challenges started in the outage: through the backup / the primary | initiates refused | messages no provider accepted |',
      '|--:|--:|---|--:|--:|',
      `| **${r.failoverSeconds ?? 'none'} s** | **${r.recoverySeconds ?? 'not within 3 min'} s** | ${r.duringOutage.backup} / ${r.duringOutage.primary} of ${r.duringOutage.challenges} | ${r.refused} of ${r.initiates} | ${r.undelivered} |`,
    ].join('\n');
  },
};
