/** What Slack sends Warden, parsed: the `/incident` subcommands and the Slack settings. */
import { describe, expect, it } from 'vitest';
import { parseSlashCommand } from '../../src/api/integrations/slack';
import { ConfigError, loadConfig, parseSlackRoles } from '../../src/config';

describe('/incident subcommands', () => {
  it('reads help, status, ack and runbook decisions; an id in any case', () => {
    expect(parseSlashCommand('')).toEqual({ kind: 'help' });
    expect(parseSlashCommand('  HELP ')).toEqual({ kind: 'help' });
    expect(parseSlashCommand('status inc-2026-01-15-01')).toEqual({ kind: 'status', id: 'INC-2026-01-15-01' });
    expect(parseSlashCommand('ack INC-2026-01-15-102')).toEqual({ kind: 'ack', id: 'INC-2026-01-15-102' });
    expect(parseSlashCommand('runbook INC-2026-01-15-01 approve')).toEqual({
      kind: 'runbook',
      id: 'INC-2026-01-15-01',
      approve: true,
    });
    expect(parseSlashCommand('runbook INC-2026-01-15-01 Reject rotate_keys')).toEqual({
      kind: 'runbook',
      id: 'INC-2026-01-15-01',
      approve: false,
      step: 'rotate_keys',
    });
  });

  it('still opens incidents with a severity, a type and a title', () => {
    expect(parseSlashCommand('p0 compromised_token OTPs in logs')).toEqual({
      kind: 'open',
      severity: 'P0',
      type: 'compromised_token',
      title: 'OTPs in logs',
    });
  });

  it('answers anything else with the reason and the usage', () => {
    for (const text of [
      'ack',
      'ack INC-1',
      'status INC-2026-01-15-01 extra',
      'runbook INC-2026-01-15-01',
      'runbook INC-2026-01-15-01 maybe',
      'runbook INC-2026-01-15-01 approve Rotate-Keys!',
      'runbook INC-2026-01-15-01 approve a b',
      'p9 other boom',
      'reboot everything',
    ]) {
      const parsed = parseSlashCommand(text);
      expect(parsed, text).toHaveProperty('error');
    }
    expect(parseSlashCommand('reboot everything')).toMatchObject({ error: expect.stringContaining('Usage') });
  });
});

describe('Slack settings', () => {
  const base = { WARDEN_ADMIN_TOKEN: 'a-long-enough-admin-token' };

  it('maps users and user groups to roles', () => {
    expect(parseSlackRoles(' U0AAA=admin, W0BBB = viewer ,S0CCC=responder,')).toEqual({
      users: { U0AAA: 'admin', W0BBB: 'viewer' },
      groups: { S0CCC: 'responder' },
    });
    expect(parseSlackRoles('')).toEqual({ users: {}, groups: {} });
  });

  it('refuses a malformed role entry, naming the variable', () => {
    for (const value of ['U0AAA=root', 'C0CHANNEL=admin', 'U0AAA', 'alice=admin'])
      expect(() => parseSlackRoles(value), value).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, SLACK_ROLES: 'U0AAA=superuser' })).toThrow(/SLACK_ROLES/);
  });

  it('defaults to no workspace (Slack refuses), no roles and approval at P1', () => {
    const slack = loadConfig(base).providers.slack;
    expect(slack.teamId).toBeUndefined();
    expect(slack.roles).toEqual({ users: {}, groups: {} });
    expect(slack.approvalSeverity).toBe('P1');
    const set = loadConfig({ ...base, SLACK_TEAM_ID: 'T0ABC', SLACK_APPROVAL_SEVERITY: 'P0' }).providers.slack;
    expect([set.teamId, set.approvalSeverity]).toEqual(['T0ABC', 'P0']);
    expect(() => loadConfig({ ...base, SLACK_TEAM_ID: 'acme' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, SLACK_APPROVAL_SEVERITY: 'P4' })).toThrow(ConfigError);
  });
});
