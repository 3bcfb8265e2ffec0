import { describe, expect, it } from 'vitest';
import { abuseParams, quietClock, tightenLimits } from '../../src/shared/runbookAbuse';
import { CandidateSet, classifyCandidate, findMatches } from '../../src/runbooks/leakPatterns';
import {
  INCIDENT_NOTIFICATION_SUBJECT,
  INCIDENT_NOTIFICATION_TEXT,
  notificationKey,
} from '../../src/runbooks/notification';
import { checkRunbookParams } from '../../src/runbooks/params';
import { RUNBOOK_NAMES, RUNBOOKS, runbookOfIncident, runbookOfWorkflowType } from '../../src/shared/runbookRegistry';
import { INCIDENT_TYPES } from '../../src/shared/incidents';
import * as workflows from '../../src/workflows';
import { chunks, windowOf } from '../../src/workflows/runbooks/util';

describe('runbook helpers', () => {
  it('tightens to 3 per user, 10 per IP, 5 min) and never loosens a stricter limit', () => {
    const normal = {
      per_user: { window_seconds: 300, max_attempts: 10 },
      per_ip: { window_seconds: 300, max_attempts: 50 },
    };
    expect(tightenLimits(normal, abuseParams({}).tightened)).toEqual({
      per_user: { window_seconds: 300, max_attempts: 3 },
      per_ip: { window_seconds: 300, max_attempts: 10 },
    });
    const strict = {
      per_user: { window_seconds: 60, max_attempts: 2 },
      per_ip: { window_seconds: 60, max_attempts: 6 },
    };
    expect(tightenLimits(strict, abuseParams({}).tightened)).toEqual({
      per_user: { window_seconds: 300, max_attempts: 2 },
      per_ip: { window_seconds: 300, max_attempts: 6 },
    });
    expect(abuseParams({ tightened: { perUser: 5 } as never }).tightened).toEqual({
      perUser: 5,
      perIp: 10,
      windowSeconds: 300,
    });
  });

  it('counts the quiet stretch from the first quiet sample and restarts it on a busy one', () => {
    const p = { quietRatePerMinute: 5, quietMinutes: 2 };
    let c = quietClock(undefined, 0, 60_000, 1, p);
    expect(c).toEqual({ quietSince: 0, subsided: false });
    c = quietClock(c.quietSince, 60_000, 120_000, 0, p);
    expect(c).toEqual({ quietSince: 0, subsided: true });
    expect(quietClock(0, 120_000, 180_000, 9, p)).toEqual({ quietSince: undefined, subsided: false });
  });

  it('matches the leak regexes and the magic-link format, and tells token-shaped candidates from others', () => {
    const token = 'Ab3_-'.repeat(8) + 'xyz';
    expect(findMatches(`code 123456 hash ${'a'.repeat(40)} link ${token} id 1234567`)).toEqual([
      '123456',
      'a'.repeat(40),
      token,
    ]);
    expect(classifyCandidate('123456')).toBe('sms_otp');
    expect(classifyCandidate(token)).toBe('magic_link');
    expect(classifyCandidate('f'.repeat(64))).toBe('other');
    const set = new CandidateSet();
    set.addJson(JSON.stringify({ msg: 'sent 654321', pid: 123456, nested: { '111111': true } }), 'logs', 'c1');
    set.addMetrics('# HELP x_total counter\nx_total{user="222222"} 333333\n', 'metrics');
    expect([...set.byValue.keys()].sort()).toEqual(['111111', '222222', '654321']);
    expect(set.byValue.get('654321')).toEqual({ sources: new Set(['logs']), near: new Set(['c1']) });
    expect(set.numericMatches).toBe(2);
    expect(set.matches).toBe(5);
  });

  it('carries the security notification text word for word', () => {
    expect(INCIDENT_NOTIFICATION_SUBJECT).toBe('Security Incident Notification');
    expect(INCIDENT_NOTIFICATION_TEXT.split('\n')[0]).toBe('Dear User,');
    expect(INCIDENT_NOTIFICATION_TEXT).toContain('- Reset your password (temporary password sent separately)\n');
    expect(INCIDENT_NOTIFICATION_TEXT.trimEnd().endsWith('contact security@example.com\n\nSecurity Team')).toBe(true);
    expect(notificationKey('INC-2026-01-01-01', 'alice')).toBe('INC-2026-01-01-01/security-notification/alice');
  });

  it('checks runbook parameters and windows', () => {
    expect(checkRunbookParams('abuse-mitigation', { pollSeconds: 5, tightened: { perIp: 20 } })).toEqual({
      ok: true,
      value: { pollSeconds: 5, tightened: { perIp: 20 } },
    });
    expect(checkRunbookParams('abuse-mitigation', { blockThreshold: 0 }).ok).toBe(false);
    expect(
      checkRunbookParams('compromised-token', { since: '2026-01-01T00:00:00Z', until: '2026-01-02T00:00:00Z' }).ok,
    ).toBe(true);
    expect(checkRunbookParams('compromised-token', { since: 'yesterday' }).ok).toBe(false);
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(windowOf(undefined, undefined, Date.parse('2026-01-02T00:00:00Z'))).toEqual({
      since: '2026-01-01T00:00:00.000Z',
    });
  });

  it('the registry names each runbook once: one per incident type, a workflow the worker registers', () => {
    expect(INCIDENT_TYPES.map((t) => runbookOfIncident(t)?.name)).toEqual([
      'compromised-token',
      'provider-outage',
      'abuse-mitigation',
      'db-failover',
      undefined,
    ]);
    for (const name of RUNBOOK_NAMES) {
      const { workflowType } = RUNBOOKS[name];
      expect(typeof workflows[workflowType]).toBe('function');
      expect(runbookOfWorkflowType(workflowType)).toBe(name);
    }
    expect(runbookOfWorkflowType('incidentWorkflow')).toBeUndefined();
  });
});
