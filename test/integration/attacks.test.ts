/**
 * The attack suite (bench/attack/, `npm run attack`) at a small size against the harness: each
 * attack module runs as is, over real HTTP with its clients in X-Forwarded-For, and each test
 * fails when the defence it measures is missing or gives way. Budgets at their defaults (the
 * harness raises them for other tests); the SMS pumping evaluation and admission control are
 * tightened so that each attack shows its defence in seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureBcryptBound } from '../../bench/lib/bcrypt';
import { agent } from '../../bench/lib/http';
import { floodAttack } from '../../bench/attack/flood';
import { guessingAttack } from '../../bench/attack/guessing';
import { ipv6RotationAttack } from '../../bench/attack/ipv6Rotation';
import { smsBombingAttack } from '../../bench/attack/smsBombing';
import { smsPumpingAttack } from '../../bench/attack/smsPumping';
import type { AttackTarget } from '../../bench/attack/types';
import { DEFAULT_RATE_LIMITS } from '../../src/auth/settings';
import { ensureSmsPumpingSchedule } from '../../src/delivery/pumpingSchedule';
import { alertWorkflowId } from '../../src/incidents/alertmanager';
import { smsPumpingScheduleId } from '../../src/shared/smsPumping';
import { putRateLimits } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const log = (line: string) => {
  if (process.env.WARDEN_TEST_LOGS) console.log(line);
};

function targetOf(h: Harness): AttackTarget {
  return {
    publicUrl: h.servers!.urls.public,
    adminUrl: h.servers!.urls.admin,
    adminToken: h.config.adminToken,
    sandboxUrl: h.sandbox.url,
    metricsUrl: h.servers!.urls.metrics,
    sql: (text, values) => h.sql(text, values),
  };
}

/** the defaults of docs/security.md, which the harness raises for the other tests */
const BUDGETS = {
  WARDEN_DESTINATION_MAX_PER_HOUR: '10',
  WARDEN_DESTINATION_MAX_PER_DAY: '20',
  WARDEN_GUESS_MAX_PER_DAY: '20',
  WARDEN_GUESS_FREE_FAILURES: '3',
};
const PUMPING = { interval: '10s', windows: '10m:8', grace: '5s' };

afterAll(() => agent.destroy());

describe('attacks on the budgets, the IPv6 buckets and SMS pumping', () => {
  let h: Harness;
  let target: AttackTarget;
  beforeAll(async () => {
    h = await startHarness({
      listen: true,
      env: {
        WARDEN_TRUSTED_PROXIES: '127.0.0.1',
        ...BUDGETS,
        WARDEN_SMS_PUMPING_INTERVAL: PUMPING.interval,
        WARDEN_SMS_PUMPING_WINDOWS: PUMPING.windows,
        WARDEN_SMS_PUMPING_GRACE: PUMPING.grace,
      },
    });
    target = targetOf(h);
  });
  afterAll(async () => h?.close());

  it('admits nothing beyond the per-IP limit from addresses rotated inside a /64, nor from the /64s of a /48', async () => {
    await putRateLimits(h, { ...DEFAULT_RATE_LIMITS, per_ip: { window_seconds: 300, max_attempts: 5 } });
    try {
      const r = await ipv6RotationAttack.run(
        target,
        { addressesIn64: 15, prefixesIn48: 30, v48Factor: 4, concurrency: 4, site: 0xa700 },
        log,
      );
      log(ipv6RotationAttack.line(r));
      expect(r.in64).toMatchObject({ sent: 15, admitted: 5, refused: 10, beyond: 0 });
      // 4 x 5 for the whole /48, each of its 30 /64s asking once
      expect(r.in48).toMatchObject({ sent: 30, admitted: 20, refused: 10, beyond: 0 });
      expect(ipv6RotationAttack.row(r).pass).toBe(true);
    } finally {
      await putRateLimits(h, DEFAULT_RATE_LIMITS);
    }
  });

  it('blocks a pumped prefix on its own schedule and opens one abuse incident; sends stop while the pump goes on', async () => {
    const prefix = '155591';
    expect(await ensureSmsPumpingSchedule(h.runtime)).toBe('created');
    try {
      const r = await smsPumpingAttack.run(
        target,
        {
          prefix,
          users: 20,
          ratePerSecond: 1,
          addresses: 40,
          addressBase: 4096,
          maxSeconds: 45,
          afterBlockSeconds: 4,
          incidentTimeoutSeconds: 30,
          settings: PUMPING,
        },
        log,
      );
      log(smsPumpingAttack.line(r));
      expect(r.blockedAfterSeconds).not.toBeNull();
      expect(r.blockReason).toMatch(/^conversion 0\.0%/);
      expect(r.messagesSent).toBeGreaterThanOrEqual(8);
      expect(r.messagesSent).toBeLessThanOrEqual(50);
      // the pump went on after the block: its initiates were answered, their messages never sent
      // (one send may have passed its check as the block was written)
      expect(r.answers['202']).toBeGreaterThan(r.messagesSent);
      expect(r.messagesAfterBlock).toBeLessThanOrEqual(1);
      expect(r.otherBlocks).toEqual([]);
      expect(r.incidentId).toMatch(/^INC-/);
      const incidents = await h.sql<{ id: string; type: string }>(
        'SELECT id, type FROM incidents WHERE workflow_id = $1',
        [alertWorkflowId(`warden/sms-pumping/${prefix}`)],
      );
      expect(incidents).toEqual([{ id: r.incidentId, type: 'abuse' }]);
      expect(smsPumpingAttack.row(r).pass).toBe(true);
    } finally {
      await h.runtime.temporal.client.schedule
        .getHandle(smsPumpingScheduleId(h.config.temporal.taskQueue))
        .delete()
        .catch(() => {});
    }
  }, 120_000);

  it('delivers a bombed number at most its budget in any hour and any day', async () => {
    const r = await smsBombingAttack.run(
      target,
      {
        addresses: 40,
        addressBase: 2048,
        hours: 26,
        burst: 6,
        victim: { sub: 'bombed', phone: '+15553000102' },
        budget: { perHour: 10, perDay: 20 },
        maxAccepted: 100,
      },
      log,
    );
    log(smsBombingAttack.line(r));
    expect(r.answers['429 too_many_messages'] ?? 0).toBeGreaterThan(0);
    // the attack got the whole budget: the number's first day and the start of the next
    expect(r.received).toBeGreaterThanOrEqual(20);
    expect(r.maxPerHour).toBe(10);
    expect(r.maxPerDay).toBe(20);
    expect(smsBombingAttack.row(r).pass).toBe(true);
  });

  it("refuses guesses beyond the account's budget from many addresses, and its owner signs in meanwhile", async () => {
    const r = await guessingAttack.run(
      target,
      {
        addresses: 60,
        addressBase: 0,
        days: 1,
        burst: 6,
        owner: { sub: 'guessed', phone: '+15554000101', ip: '198.19.255.1' },
        maxGuesses: 60,
      },
      log,
    );
    log(guessingAttack.line(r));
    // the day's budget, whatever the number of addresses or challenges: 20 of 10^6 codes
    expect(r.guessesCompared).toBeLessThanOrEqual(20);
    expect(r.guessesCompared).toBeGreaterThanOrEqual(15);
    expect(r.simulatedDays).toBe(1);
    expect(r.answers['429 verify_backoff'] ?? 0).toBeGreaterThan(0);
    expect(r.answers['429 verify_budget_exhausted'] ?? 0).toBeGreaterThan(0);
    expect(r.successPerYear).toBeLessThan(0.01);
    expect(r.owner).toMatchObject({ signedIn: true, answers: ['initiate 202', 'verify 200'] });
    expect(r.owner.strangersRefusedWith).toContain('verify_budget_exhausted');
    const wrong = await h.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM account_guesses WHERE user_id = 'guessed' AND device_sha256 IS NULL AND outcome = 'wrong'`,
    );
    expect(wrong[0]!.n).toBe(r.guessesCompared - r.rightGuesses);
    expect(guessingAttack.row(r).pass).toBe(true);
  });
});

describe('a flood beyond bcrypt capacity', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      listen: true,
      env: {
        WARDEN_TRUSTED_PROXIES: '127.0.0.1',
        // two initiates and two verifies in flight, two more waiting 50 ms: a small flood overflows it
        WARDEN_ADMISSION_CONCURRENCY: '2',
        WARDEN_ADMISSION_QUEUE: '2',
        WARDEN_ADMISSION_QUEUE_WAIT_MS: '50',
        WARDEN_REFUSAL_AUDIT_FLUSH_MS: '500',
      },
    });
  });
  afterAll(async () => h?.close());

  it('sheds with 503 and Retry-After, lets the admitted sign in, and audits the shed in a bounded number of rows', async () => {
    const bound = await measureBcryptBound(10, 1);
    const r = await floodAttack.run(
      targetOf(h),
      {
        capacityPerSecond: bound.opsPerSec,
        factor: 5,
        seconds: 3,
        addresses: 300,
        addressBase: 8192,
        firstUser: 1,
        refusalWindowSeconds: 60,
        refusalFlushMs: 500,
        prepareConcurrency: 2,
        baselineVerifies: 5,
      },
      log,
    );
    log(floodAttack.line(r));
    const shed = r.initiate.shed + r.verify.shed;
    expect(shed).toBeGreaterThan(0);
    expect(r.initiate.shedWithRetryAfter + r.verify.shedWithRetryAfter).toBe(shed);
    expect(r.verify.admitted).toBeGreaterThan(0);
    // every verify let in signed its user in; every initiate let in started a challenge
    expect(Object.keys(r.verify.answers).sort()).toEqual(r.verify.shed ? ['200', '503 overloaded'] : ['200']);
    expect(Object.keys(r.initiate.answers).sort()).toEqual(r.initiate.shed ? ['202', '503 overloaded'] : ['202']);
    // one row per client, action, reason and window, whose counts add up to every shed request
    expect(r.refusalRows['identity.admission.shed']!.refusals).toBe(shed);
    expect(r.shedRows).toBeLessThanOrEqual(r.shedRowsBound);
    expect(r.shedRows).toBeLessThan(shed);
  }, 120_000);
});
