import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseContacts, ContactsError, DEFAULT_CONTACTS } from '../../src/incidents/contacts';
import {
  externalTasks,
  nextManualRole,
  plannedEscalations,
  slaChain,
  type PolicyState,
} from '../../src/shared/escalation';
import { renderReport } from '../../src/incidents/report';
import { ackSlaMs } from '../../src/shared/severity';
import { customerNotification, incidentAlertText } from '../../src/incidents/templates';
import type { IncidentState, NotifiedRole } from '../../src/shared/incidents';

const MIN = 60_000;
const policy = (over: Partial<PolicyState>): PolicyState => ({
  type: 'other',
  severity: 'P2',
  dataBreach: false,
  detectedAt: 0,
  acknowledged: false,
  resolved: false,
  engaged: new Set<NotifiedRole>(),
  ...over,
});
const plan = (over: Partial<PolicyState>) => plannedEscalations(policy(over)).map((p) => `${p.role}@${p.at / MIN}`);

describe('severity table and escalation policy', () => {
  it('acknowledgement SLAs are 15 min, 1 h, 4 h, 24 h', () => {
    expect(['P0', 'P1', 'P2', 'P3'].map((s) => ackSlaMs(s as 'P0') / MIN)).toEqual([15, 60, 240, 1440]);
  });

  it('walks the internal path per SLA period; P0 adds the manager at 1 h and the VP at 4 h', () => {
    expect(plan({ type: 'compromised_token', severity: 'P0' })).toEqual([
      'oncall@0',
      'security_lead@15',
      'engineering_manager@30',
      'vp_engineering@240',
    ]);
    expect(plan({ type: 'db_connectivity', severity: 'P1' })).toEqual([
      'oncall@0',
      'dba@60',
      'engineering_manager@120',
    ]);
    expect(plan({ type: 'provider_outage', severity: 'P0' })).toEqual([
      'oncall@0',
      'engineering_manager@15',
      'vp_engineering@240',
    ]);
    expect(plan({ type: 'abuse', severity: 'P3' })).toEqual(['oncall@0', 'engineering_manager@1440']);
  });

  it('acknowledgement stops the SLA chain but not the P0 age rules; engaged roles are not paged again', () => {
    expect(plan({ type: 'compromised_token', severity: 'P0', acknowledged: true })).toEqual([
      'oncall@0',
      'engineering_manager@60',
      'vp_engineering@240',
    ]);
    expect(
      plan({ severity: 'P0', acknowledged: true, engaged: new Set<NotifiedRole>(['oncall', 'engineering_manager']) }),
    ).toEqual(['vp_engineering@240']);
    expect(plan({ resolved: true, severity: 'P0' })).toEqual([]);
  });

  it('a data breach brings the VP, legal and the CISO in at once, and the security lead on the SLA', () => {
    expect(plan({ type: 'other', severity: 'P1', dataBreach: true, dataBreachAt: 30 * MIN })).toEqual([
      'oncall@0',
      'vp_engineering@30',
      'legal@30',
      'ciso@30',
      'security_lead@60',
      'engineering_manager@120',
    ]);
    expect(slaChain('other', 'P2', true)).toEqual(['engineering_manager']);
  });

  it('a manual escalation goes to the next role not yet engaged, ending with the VP', () => {
    expect(nextManualRole(policy({ type: 'db_connectivity', engaged: new Set<NotifiedRole>(['oncall']) }))).toBe('dba');
    expect(nextManualRole(policy({ engaged: new Set<NotifiedRole>(['oncall', 'engineering_manager']) }))).toBe(
      'vp_engineering',
    );
    expect(
      nextManualRole(policy({ engaged: new Set<NotifiedRole>(['oncall', 'engineering_manager', 'vp_engineering']) })),
    ).toBeUndefined();
  });

  it('external escalation tasks: provider support 30 min, ISP/CDN 15 min, GDPR 72 h', () => {
    expect(externalTasks('provider_outage', false, false).map((t) => [t.id, t.withinMs / MIN])).toEqual([
      ['provider-support', 30],
    ]);
    expect(externalTasks('abuse', true, true).map((t) => [t.id, t.withinMs / MIN])).toEqual([
      ['isp-cdn', 15],
      ['gdpr-notification', 72 * 60],
    ]);
  });
});

const base: IncidentState = {
  id: 'INC-2025-01-15-03',
  workflowId: 'INC-2025-01-15-03',
  type: 'provider_outage',
  severity: 'P1',
  title: 'Twilio <down>',
  impact: 'SMS delayed',
  status: 'investigating',
  source: 'alertmanager',
  openedBy: 'alertmanager',
  affected: { users: [], ips: [], providers: ['twilio'] },
  dataBreach: false,
  ddos: false,
  detectedAt: '2025-01-15T10:00:00.000Z',
  escalations: [],
  tasks: [],
  checklist: [],
  checklistRunning: false,
  preventiveActions: [],
  alerts: null,
  timeline: [
    { at: '2025-01-15T10:00:00.000Z', kind: 'detected', message: 'P1 provider_outage: Twilio (via Alertmanager)' },
    {
      at: '2025-01-15T10:00:01.000Z',
      kind: 'notified',
      role: 'oncall',
      message: 'On-Call Engineer: Incident detected',
    },
    { at: '2025-01-15T10:07:00.000Z', kind: 'acknowledged', by: '<@U1|omar>', message: 'on it' },
    { at: '2025-01-16T09:00:00.000Z', kind: 'mitigation', by: 'omar', message: 'switched to Plivo' },
  ],
};

describe('templates and report', () => {
  it('renders the internal incident alert field for field, escaping Slack control characters', () => {
    const text = incidentAlertText({ state: base, owner: '<@U0ONCALL>', warRoom: 'https://zoom.example/j/1' });
    expect(text.split('\n')).toEqual([
      '🚨 INCIDENT ALERT - P1',
      'Title: Twilio &lt;down&gt;',
      'Detected: 2025-01-15 10:00 UTC',
      'Impact: SMS delayed',
      'Status: Investigating',
      'Owner: <@U0ONCALL>',
      'War Room: https://zoom.example/j/1',
      '',
      'Updates: Thread below',
    ]);
  });

  it('fills the report template from the timeline, dates past the first day, and lists missing milestones', () => {
    const md = renderReport(base, '2025-01-16T10:00:00.000Z');
    expect(md).toContain('- 10:00 - Incident detected (monitoring alert): P1 provider_outage');
    expect(md).toContain('- 10:00 - On-call engineer notified');
    expect(md).toContain('- 10:07 - Incident confirmed, response initiated: on it (@omar)');
    expect(md).toContain('- 2025-01-16 09:00 - Mitigation applied: switched to Plivo (omar)');
    expect(md).toContain('- --:-- - Root cause identified (not recorded)');
    expect(md).toContain('# Incident Report: Twilio &lt;down&gt;');
    expect(md).toContain('- **Duration**: 24 h so far (ongoing)');
    expect(md).toContain('_None recorded yet: at least one is required to close the incident._');
  });

  it('customer notification: never claims no data was compromised for a breach', () => {
    const resolved = {
      ...base,
      status: 'resolved' as const,
      resolvedAt: '2025-01-15T12:30:00.000Z',
      rootCause: 'upstream outage',
      resolution: 'failed over',
    };
    const text = customerNotification({ state: resolved, affectedPercent: 7, supportEmail: 'help@example.com' });
    expect(text).toContain('between 2025-01-15 10:00 and 2025-01-15 12:30 UTC');
    expect(text).toContain('- 7% of users experienced delays');
    expect(text).toContain('- No user data was compromised');
    expect(text).toContain('contact help@example.com');
    const breach = customerNotification({ state: { ...resolved, dataBreach: true }, supportEmail: 'help@example.com' });
    expect(breach).not.toContain('No user data was compromised');
    expect(breach).toContain('{Percentage}%');
  });
});

describe('contacts file', () => {
  it('the example file parses and overrides the default contacts', () => {
    const contacts = parseContacts(JSON.parse(readFileSync('deploy/contacts.example.json', 'utf8')));
    expect(contacts.roles.oncall).toMatchObject({ email: 'oncall@example.com', slack_user_id: 'U0ONCALL01' });
    expect(contacts.war_room).toBe('https://zoom.example.com/j/incident-war-room');
    expect(parseContacts({}).roles.dba.email).toBe(DEFAULT_CONTACTS.roles.dba.email);
  });

  it('refuses bad addresses and member ids with the field named', () => {
    expect(() => parseContacts({ dba: { email: 'not-an-email' } })).toThrow(
      new ContactsError('dba.email is not an email address'),
    );
    expect(() => parseContacts({ oncall: { slack_user_id: '@bob' } })).toThrow(/oncall.slack_user_id/);
    expect(() => parseContacts([])).toThrow(ContactsError);
  });
});
