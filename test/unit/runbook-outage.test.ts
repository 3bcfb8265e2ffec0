import { describe, expect, it } from 'vitest';
import { checkRunbookParams } from '../../src/runbooks/params';
import {
  DEFAULT_OUTAGE_PARAMS,
  isDown,
  nextStreak,
  outageConfirmed,
  outageParams,
  pickProvider,
  reliefSkipReason,
  relievedLimits,
  type ProviderHealth,
} from '../../src/shared/runbookOutage';

const health = (over: Partial<ProviderHealth>): ProviderHealth => ({
  provider: 'plivo',
  indicator: 'none',
  circuit: 'closed',
  failedCalls: 0,
  ...over,
});

describe('provider-outage runbook arithmetic', () => {
  it('polls every 30 s and restores after 3 healthy checks by default', () => {
    expect(DEFAULT_OUTAGE_PARAMS).toMatchObject({ pollSeconds: 30, healthyChecks: 3, validationUser: 'test-user' });
    expect(outageParams({ pollSeconds: 2, healthyChecks: undefined })).toMatchObject({
      pollSeconds: 2,
      healthyChecks: 3,
    });
  });

  it('takes the named provider, then the incident affected provider of the channel, then the worst of the scope', () => {
    const scope = [
      { provider: 'sendgrid', failedCalls: 9 },
      { provider: 'twilio', failedCalls: 4 },
    ];
    expect(pickProvider({ provider: 'plivo' }, ['twilio'], scope)).toBe('plivo');
    expect(pickProvider({}, ['not-a-provider', 'twilio'], scope)).toBe('twilio');
    expect(pickProvider({ channel: 'email' }, ['twilio'], scope)).toBe('sendgrid');
    expect(pickProvider({ channel: 'sms' }, [], scope)).toBe('twilio');
    expect(pickProvider({}, [], [{ provider: 'ses', failedCalls: 0 }])).toBeUndefined();
  });

  it('counts a provider down on a major/critical page, or an open breaker the page does not clear', () => {
    expect(isDown(health({ indicator: 'major' }))).toBe(true);
    expect(isDown(health({ indicator: 'critical' }))).toBe(true);
    expect(isDown(health({ indicator: 'minor' }))).toBe(false);
    expect(isDown(health({ indicator: 'unknown', circuit: 'open' }))).toBe(true);
    expect(isDown(health({ indicator: 'none', circuit: 'open' }))).toBe(false);
    expect(outageConfirmed(health({ failedCalls: 5 }), 5)).toBe(true);
    expect(outageConfirmed(health({ failedCalls: 4 }), 5)).toBe(false);
  });

  it('needs consecutive "none" answers: anything else starts the streak again', () => {
    let streak = 0;
    for (const i of ['none', 'none', 'minor', 'none', 'unknown', 'none', 'none', 'none'] as const)
      streak = nextStreak(streak, i);
    expect(streak).toBe(3);
  });

  it('relieves retries by default: one refused user doubles the per-user limit, never lowers it, never touches per IP', () => {
    expect(DEFAULT_OUTAGE_PARAMS).toMatchObject({ retryRelief: true, retryReliefUsers: 1, retryReliefFactor: 2 });
    const current = {
      per_user: { window_seconds: 300, max_attempts: 4 },
      per_ip: { window_seconds: 60, max_attempts: 50 },
    };
    expect(relievedLimits(current, 2)).toEqual({
      per_user: { window_seconds: 300, max_attempts: 8 },
      per_ip: { window_seconds: 60, max_attempts: 50 },
    });
    expect(relievedLimits(current, 1.1).per_user.max_attempts).toBe(5); // rounded up: a raise of at least one
    expect(
      relievedLimits({ ...current, per_user: { window_seconds: 300, max_attempts: 900_000 } }, 3).per_user.max_attempts,
    ).toBe(1_000_000);
    expect(
      relievedLimits({ ...current, per_user: { window_seconds: 300, max_attempts: 1_000_000 } }, 2).per_user
        .max_attempts,
    ).toBe(1_000_000);
    expect(current.per_user.max_attempts).toBe(4); // the input is not modified
    expect(reliefSkipReason(1, DEFAULT_OUTAGE_PARAMS)).toBeUndefined();
    expect(reliefSkipReason(0, DEFAULT_OUTAGE_PARAMS)).toContain('0 user(s)');
    expect(reliefSkipReason(2, { retryRelief: true, retryReliefUsers: 3 })).toContain('(< 3)');
    expect(reliefSkipReason(50, { retryRelief: false, retryReliefUsers: 1 })).toContain('turned off');
  });

  it('refuses bad parameters at the door', () => {
    expect(
      checkRunbookParams('provider-outage', { provider: 'twilio', pollSeconds: 1, healthyChecks: 2 }),
    ).toMatchObject({ ok: true });
    expect(checkRunbookParams('provider-outage', { provider: 'mailgun' })).toMatchObject({ ok: false });
    expect(checkRunbookParams('provider-outage', { pollSeconds: 0 })).toMatchObject({ ok: false });
    expect(checkRunbookParams('provider-outage', { provider: 'twilio', channel: 'email' })).toEqual({
      ok: false,
      message: 'params/provider twilio does not serve the email channel',
    });
    expect(
      checkRunbookParams('provider-outage', { since: '2026-01-15T12:00:00Z', until: '2026-01-15T10:00:00Z' }),
    ).toMatchObject({ ok: false });
    expect(checkRunbookParams('provider-outage', { surprise: 1 })).toMatchObject({ ok: false });
    expect(
      checkRunbookParams('provider-outage', { retryRelief: false, retryReliefUsers: 5, retryReliefFactor: 1.5 }),
    ).toMatchObject({ ok: true });
    expect(checkRunbookParams('provider-outage', { retryReliefFactor: 1 })).toMatchObject({ ok: false }); // no raise at all
    expect(checkRunbookParams('provider-outage', { retryReliefFactor: 0.5 })).toMatchObject({ ok: false }); // a relief never lowers
    expect(checkRunbookParams('provider-outage', { retryReliefUsers: 0 })).toMatchObject({ ok: false });
    expect(checkRunbookParams('provider-outage', { retryRelief: 'no' })).toMatchObject({ ok: false });
  });
});
