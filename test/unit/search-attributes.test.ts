import { describe, expect, it } from 'vitest';
import { operatorKeyword, operatorKeywords, runbookSearchAttributes } from '../../src/shared/searchAttributes';

describe('operator keywords for the Temporal UI', () => {
  it('keeps operator names, turns Slack mentions into their user id, and drops everything else', () => {
    expect(operatorKeyword('pat')).toBe('pat');
    expect(operatorKeyword('admin-api')).toBe('admin-api');
    expect(operatorKeyword('<@U0PAT|pat.pager>')).toBe('slack:U0PAT');
    expect(operatorKeyword('<@W0ENT>')).toBe('slack:W0ENT');
    for (const other of ['runbook', 'alertmanager', 'slack-user', 'Pat Pager', 'pat@example.com', '', undefined])
      expect(operatorKeyword(other), String(other)).toBeUndefined();
  });

  it('lists each operator once, in order, at most twenty', () => {
    expect(operatorKeywords(['pat', 'runbook', '<@U0PAT|pat>', 'pat', 'omar'])).toEqual(['pat', 'slack:U0PAT', 'omar']);
    expect(operatorKeywords(Array.from({ length: 50 }, (_, i) => `op${i}`))).toHaveLength(20);
  });

  it('tags a runbook run with its incident and starter when it has them, and as running from its start', () => {
    const names = (pairs: ReturnType<typeof runbookSearchAttributes>) => pairs.map((p) => p.key.name);
    expect(names(runbookSearchAttributes('provider-outage', 'provider_outage', 'P2'))).toEqual([
      'Runbook',
      'IncidentType',
      'Severity',
      'RunbookStatus',
    ]);
    const full = runbookSearchAttributes('provider-outage', 'provider_outage', 'P2', {
      incidentId: 'INC-2026-12-07-01',
      startedBy: 'pat',
    });
    expect(full.slice(3).map((p) => [p.key.name, p.value])).toEqual([
      ['RunbookStatus', 'running'],
      ['IncidentId', 'INC-2026-12-07-01'],
      ['Operators', ['pat']],
    ]);
  });
});
