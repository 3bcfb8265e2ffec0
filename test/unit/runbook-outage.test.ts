import { describe, expect, it } from 'vitest';
import { checkRunbookParams } from '../../src/runbooks/params';
import { DEFAULT_OUTAGE_PARAMS, isDown, nextStreak, outageConfirmed, outageParams, pickProvider, type ProviderHealth } from '../../src/runbooks/outage';

const health = (over: Partial<ProviderHealth>): ProviderHealth => ({ provider: 'plivo', indicator: 'none', circuit: 'closed', failedCalls: 0, ...over });

describe('provider-outage runbook arithmetic', () => {
  it("polls every 30 s (the seed's sleep 30) and restores after 3 healthy checks by default", () => {
    expect(DEFAULT_OUTAGE_PARAMS).toMatchObject({ pollSeconds: 30, healthyChecks: 3, validationUser: 'test-user' });
    expect(outageParams({ pollSeconds: 2, healthyChecks: undefined })).toMatchObject({ pollSeconds: 2, healthyChecks: 3 });
  });

  it('takes the named provider, then the incident affected provider of the channel, then the worst of the scope', () => {
    const scope = [{ provider: 'sendgrid', failedCalls: 9 }, { provider: 'twilio', failedCalls: 4 }];
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
    for (const i of ['none', 'none', 'minor', 'none', 'unknown', 'none', 'none', 'none'] as const) streak = nextStreak(streak, i);
    expect(streak).toBe(3);
  });

  it('refuses bad parameters at the door', () => {
    expect(checkRunbookParams('provider-outage', { provider: 'twilio', pollSeconds: 1, healthyChecks: 2 })).toMatchObject({ ok: true });
    expect(checkRunbookParams('provider-outage', { provider: 'mailgun' })).toMatchObject({ ok: false });
    expect(checkRunbookParams('provider-outage', { pollSeconds: 0 })).toMatchObject({ ok: false });
    expect(checkRunbookParams('provider-outage', { provider: 'twilio', channel: 'email' })).toEqual({ ok: false, message: 'params/provider twilio does not serve the email channel' });
    expect(checkRunbookParams('provider-outage', { since: '2026-01-15T12:00:00Z', until: '2026-01-15T10:00:00Z' })).toMatchObject({ ok: false });
    expect(checkRunbookParams('provider-outage', { surprise: 1 })).toMatchObject({ ok: false });
  });
});
