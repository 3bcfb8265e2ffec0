import { describe, expect, it } from 'vitest';
import type { Authority } from '../../src/shared/roles';
import type { RunbookStepState } from '../../src/shared/runbooks';
import { runStatus, stepApproval, type ApprovalContext } from '../../src/workflows/runbooks/approvalPolicy';

const rotate = { name: 'rotate_keys', destructive: true, containment: true };
const notify = { name: 'notify_users', destructive: true, containment: false };
const scan = { name: 'leak_scan', destructive: false, containment: false };

const run = (severity: ApprovalContext['severity'], authority?: Authority, extra: Partial<ApprovalContext> = {}) => ({
  severity,
  severities: ['P1', 'P2', 'P3'] as const,
  authority,
  startedBy: authority ? `someone-${authority}` : undefined,
  preApproved: [],
  ...extra,
});

describe('runbook step approvals', () => {
  it('runs P0 containment at once on an admin’s or an alert’s authority, naming who asked', () => {
    expect(stepApproval(rotate, run('P0', 'admin'))).toEqual({
      required: false,
      how: 'auto_p0_containment',
      by: 'someone-admin',
    });
    expect(stepApproval(rotate, run('P0', 'automation'))).toMatchObject({
      required: false,
      how: 'auto_p0_containment',
    });
    // P0 is not among the severities: its other destructive steps go ahead too
    expect(stepApproval(notify, run('P0', 'admin'))).toEqual({ required: false, how: 'not_required' });
  });

  it('holds every destructive step of a P0 run for an admin on anyone else’s authority', () => {
    for (const authority of ['responder', 'viewer', undefined] as const) {
      expect(stepApproval(rotate, run('P0', authority)), String(authority)).toEqual({ required: true });
      expect(stepApproval(notify, run('P0', authority)), String(authority)).toEqual({ required: true });
      expect(stepApproval(scan, run('P0', authority))).toEqual({ required: false, how: 'not_required' });
    }
    // an empty severities list is the configuration of below-P0 runs, not a way around P0's rule
    expect(stepApproval(rotate, run('P0', 'responder', { severities: [] }))).toEqual({ required: true });
  });

  it('below P0 follows the approval severities whoever asked', () => {
    for (const authority of ['admin', 'automation', 'responder'] as const) {
      expect(stepApproval(rotate, run('P1', authority))).toEqual({ required: true });
      expect(stepApproval(rotate, run('P2', authority, { severities: ['P1'] }))).toEqual({
        required: false,
        how: 'not_required',
      });
    }
  });

  it('honours a pre-approval where the step would wait', () => {
    expect(stepApproval(notify, run('P1', 'admin', { preApproved: ['notify_users'] }))).toEqual({
      required: true,
      how: 'pre_approved',
      by: 'someone-admin',
    });
    expect(stepApproval(rotate, run('P1', 'admin', { preApproved: ['notify_users'] }))).toEqual({ required: true });
  });
});

describe('the RunbookStatus keyword', () => {
  const steps = (...statuses: RunbookStepState['status'][]) =>
    statuses.map((status) => ({ status }) as RunbookStepState);

  it('says what a running run is doing: waiting, undoing or running', () => {
    expect(runStatus({ status: 'running', steps: steps('succeeded', 'running') }, false)).toBe('running');
    expect(runStatus({ status: 'running', steps: steps('succeeded', 'awaiting_approval') }, false)).toBe(
      'awaiting_approval',
    );
    expect(runStatus({ status: 'running', steps: steps('awaiting_approval') }, true)).toBe('compensating');
  });

  it('says how a run ended once it has', () => {
    for (const end of ['completed', 'failed', 'cancelled'] as const)
      expect(runStatus({ status: end, steps: steps('awaiting_approval') }, true)).toBe(end);
  });
});
