/**
 * The framework through the compromised-token runbook at P1: started as an incident's child,
 * every destructive step waits for an admin, a rejection skips a step, cancellation undoes
 * what can be undone and names what stays. Plus the admin API's refusals and the leak scan's
 * positive case.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities/index.js';
import type { IncidentState } from '../../src/shared/incidents';
import type { RunbookResult, RunbookState } from '../../src/shared/runbooks';
import { initiate, post, secretFor, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

describe('runbook framework', () => {
  let h: Harness;
  /** the admin who starts, approves and cancels: the runbook's log names her */
  let pat: { authorization: string };
  let quinn: { authorization: string };
  const admin = (method: 'GET' | 'POST', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers: pat,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const stepOf = (s: RunbookState, name: string) => s.steps.find((x) => x.name === name)!;
  const until = (id: string, what: string, ok: (s: RunbookState) => boolean) =>
    waitFor(
      what,
      async () => {
        const res = await admin('GET', `/runbooks/runs/${id}`);
        const s = res.json<RunbookState>();
        return res.statusCode === 200 && s.steps && ok(s) ? s : undefined;
      },
      60_000,
    );

  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_TRUSTED_PROXIES: '127.0.0.1' } });
    pat = await operatorHeaders(h, 'pat');
    quinn = await operatorHeaders(h, 'quinn');
  });
  afterAll(async () => h?.close());

  const searchAttributesOf = async (workflowId: string) =>
    Object.fromEntries(
      (await h.runtime.temporal.client.workflow.getHandle(workflowId).describe()).typedSearchAttributes
        .getAll()
        .map((p) => [p.key.name, p.value]),
    );

  it('at P1 waits for approval before each destructive step; a rejection skips one; cancel undoes the block and leaves revocations', async () => {
    const challenge = (await initiate(h, 'otp', 'alice')).json<{ challenge_id: string }>().challenge_id;
    const code = await secretFor(h, challenge);
    const opened = await admin('POST', '/incidents', {
      type: 'compromised_token',
      severity: 'P1',
      title: 'alice reports a code she never asked for',
      affected: { users: ['alice'], ips: ['203.0.113.50'] },
    });
    const incident = opened.json<{ id: string }>().id;
    const id = `${incident}-runbook`;

    let s = await until(id, 'the approval gate', (x) => stepOf(x, 'revoke_challenges').status === 'awaiting_approval');
    expect(s.approvalSeverities).toEqual(['P1', 'P2', 'P3']);
    // the incident's runbook carries what responders filter runs by in the Temporal UI
    expect(await searchAttributesOf(id)).toMatchObject({
      Runbook: 'compromised-token',
      IncidentType: 'compromised_token',
      Severity: 'P1',
      IncidentId: incident,
      Operators: ['pat'],
    });
    // responders see where a runbook waits in the Temporal UI (its stack trace)
    const waitingAt = await h.runtime.temporal.client.workflow.getHandle(id).query<string>('__stack_trace');
    expect(waitingAt).toMatch(/at approved \(.*steps\.ts:\d+/);
    expect(
      (await h.sql<{ status: string }>('SELECT status FROM auth_challenges WHERE id = $1', [challenge]))[0]!.status,
    ).toBe('open');
    // steps not yet reached, or not gated, cannot be approved
    expect(
      (await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'forensic_export', by: 'pat' })).json(),
    ).toMatchObject({ error: 'not_awaiting_approval' });
    expect((await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'nope', by: 'pat' })).json()).toMatchObject({
      error: 'unknown_step',
    });

    expect(
      (
        await admin('POST', `/runbooks/runs/${id}/approve`, {
          step: 'revoke_challenges',
          by: 'pat',
          note: 'confirmed with alice',
        })
      ).statusCode,
    ).toBe(200);
    s = await until(id, 'the reset gate', (x) => stepOf(x, 'force_password_reset').status === 'awaiting_approval');
    expect(stepOf(s, 'revoke_challenges')).toMatchObject({
      status: 'succeeded',
      approval: { how: 'responder', by: 'pat' },
    });
    expect((await post(h, '/otp/verify', { challenge_id: challenge, otp: code })).json()).toMatchObject({
      error: 'revoked',
    });

    // another admin decides this one: the run's Operators name both
    await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/runbooks/runs/${id}/reject`,
      headers: quinn,
      payload: { step: 'force_password_reset', note: 'SSO account' },
    });
    s = await until(id, 'the block gate', (x) => stepOf(x, 'block_ips').status === 'awaiting_approval');
    expect(stepOf(s, 'force_password_reset')).toMatchObject({ status: 'rejected', approval: { by: 'quinn' } });
    expect((await searchAttributesOf(id)).Operators).toEqual(['pat', 'quinn']);
    expect(
      (
        await h.sql<{ force_password_reset: boolean }>('SELECT force_password_reset FROM users WHERE sub = $1', [
          'alice',
        ])
      )[0]!.force_password_reset,
    ).toBe(false);

    await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'block_ips', by: 'pat' });
    await until(id, 'the rotation gate', (x) => stepOf(x, 'rotate_keys').status === 'awaiting_approval');
    expect((await initiate(h, 'otp', 'bob', { headers: { 'x-forwarded-for': '203.0.113.50' } })).statusCode).toBe(403);

    const cancelled = await admin('POST', `/runbooks/runs/${id}/cancel`, { by: 'pat', reason: 'wrong user reported' });
    expect(cancelled.statusCode).toBe(202);
    s = await until(id, 'the cancellation', (x) => x.status !== 'running');
    expect(s.status).toBe('cancelled');
    expect(s.steps.map((x) => [x.name, x.status])).toEqual([
      ['revoke_challenges', 'succeeded'],
      ['force_password_reset', 'rejected'],
      ['block_ips', 'compensated'],
      ['rotate_keys', 'skipped'],
      ['end_challenges', 'skipped'],
      ['forensic_export', 'skipped'],
      ['anomaly_queries', 'skipped'],
      ['leak_scan', 'skipped'],
      ['notify_users', 'skipped'],
    ]);
    expect((await initiate(h, 'otp', 'bob', { headers: { 'x-forwarded-for': '203.0.113.50' } })).statusCode).toBe(202);
    expect(await h.sql('SELECT id FROM key_rotations')).toEqual([]);
    const result = (await h.runtime.temporal.client.workflow.getHandle(id).result()) as RunbookResult;
    expect(result.leftInPlace).toEqual([{ step: 'revoke_challenges', why: expect.stringMatching(/stays revoked/) }]);

    const timeline = (await admin('GET', `/incidents/${incident}`))
      .json<IncidentState>()
      .timeline.filter((e) => e.by === 'runbook')
      .map((e) => e.message);
    expect(timeline).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^revoke_challenges: awaiting an admin's approval/),
        'revoke_challenges: approved by pat (confirmed with alice)',
        expect.stringMatching(/^Containment: challenges of 1 user\(s\) unverifiable from \d{4}-/),
        expect.stringMatching(
          /^Revoke active challenges of the affected users: 1 active challenge\(s\) of 1 user\(s\) unverifiable from \S+; ended with their workflows after/,
        ),
        'force_password_reset: rejected by quinn: SSO account; not run',
        'Runbook cancelled by pat: wrong user reported',
        'block_ips: undone: lifted 1 block(s)',
        expect.stringMatching(/^revoke_challenges: left in place: a revoked challenge stays revoked/),
      ]),
    );
    expect(
      (await admin('POST', `/runbooks/runs/${id}/approve`, { step: 'rotate_keys', by: 'pat' })).json(),
    ).toMatchObject({ error: 'runbook_finished' });
  }, 120_000);

  it('refuses unknown runbooks, runbooks not built yet, bad parameters and missing incidents with stable codes', async () => {
    const start = (name: string, body: Record<string, unknown>) =>
      admin('POST', `/runbooks/${name}`, { severity: 'P2', by: 'pat', ...body });
    expect((await start('nope', {})).json()).toMatchObject({ error: 'unknown_runbook' });
    const outage = await start('provider-outage', {});
    if (outage.statusCode === 501) expect(outage.json()).toMatchObject({ error: 'runbook_not_available' });
    const bad = await start('abuse-mitigation', { params: { pollSeconds: 0 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request', message: expect.stringContaining('pollSeconds') });
    expect((await start('abuse-mitigation', { params: { unknownKnob: 1 } })).statusCode).toBe(400);
    expect(
      (
        await start('compromised-token', { params: { since: '2026-01-02T00:00:00Z', until: '2026-01-01T00:00:00Z' } })
      ).json(),
    ).toMatchObject({ error: 'invalid_request' });
    expect((await start('compromised-token', { incident_id: 'INC-2020-01-01-99' })).json()).toMatchObject({
      error: 'incident_not_found',
    });
    expect((await admin('POST', '/runbooks/compromised-token', { severity: 'P9', by: 'pat' })).statusCode).toBe(400);
    const nul = await start('compromised-token', { users: ['a\u0000b'] });
    expect(nul.statusCode).toBe(400);
    expect(nul.json()).toMatchObject({ error: 'invalid_request' });
    expect((await admin('GET', '/runbooks/runs/not-a-run')).json()).toMatchObject({ error: 'runbook_not_found' });
  });

  it('attached to an incident without naming users, acts on the users the incident names', async () => {
    const challenge = (await initiate(h, 'otp', 'bob')).json<{ challenge_id: string }>().challenge_id;
    const code = await secretFor(h, challenge);
    const opened = await admin('POST', '/incidents', {
      type: 'other',
      severity: 'P2',
      title: 'bob shared a code',
      affected: { users: ['bob'] },
    });
    const incident = opened.json<{ id: string }>().id;
    const started = await admin('POST', '/runbooks/compromised-token', {
      severity: 'P2',
      by: 'pat',
      incident_id: incident,
      approve: ['revoke_challenges'],
    });
    expect(started.statusCode, started.body).toBe(201);
    const id = started.json<{ workflow_id: string }>().workflow_id;
    // so does one started through the admin API, and the UI's filter finds it
    expect(await searchAttributesOf(id)).toMatchObject({
      Runbook: 'compromised-token',
      IncidentType: 'compromised_token',
      Severity: 'P2',
    });
    await waitFor('the run in a search by runbook and severity', async () => {
      const found = [];
      for await (const run of h.runtime.temporal.client.workflow.list({
        query: `Runbook = 'compromised-token' AND Severity = 'P2'`,
      }))
        found.push(run.workflowId);
      return found.includes(id) ? found : undefined;
    });
    const s = await until(id, 'the revocation', (x) =>
      x.steps.some((step) => step.name === 'revoke_challenges' && step.status === 'succeeded'),
    );
    expect(s.steps.find((step) => step.name === 'revoke_challenges')?.summary).toMatch(
      /\d+ active challenge\(s\) of 1 user\(s\) unverifiable from \S+; ended with their workflows after the other containment steps/,
    );
    // unverifiable at once, while the row stays open until end_challenges (awaiting the other steps' approvals)
    expect((await post(h, '/otp/verify', { challenge_id: challenge, otp: code })).json()).toMatchObject({
      error: 'revoked',
    });
    expect(
      (await h.sql<{ status: string }>('SELECT status FROM auth_challenges WHERE id = $1', [challenge]))[0],
    ).toEqual({
      status: 'open',
    });
    await admin('POST', `/runbooks/runs/${id}/cancel`, { by: 'pat', reason: 'test done' });
  });

  it('takes 10,000 affected users in one start request (over the admin default body limit) and refuses more', async () => {
    const users = Array.from({ length: 10_000 }, (_, i) => `bulk-user-${String(i).padStart(5, '0')}`);
    const started = await admin('POST', '/runbooks/compromised-token', {
      severity: 'P2',
      by: 'pat',
      users,
      request_id: 'bulk-10k',
    });
    expect(started.statusCode, started.body.slice(0, 300)).toBe(201);
    const id = started.json<{ workflow_id: string }>().workflow_id;
    // at P2 it waits for a responder before revoking: cancel it there
    await until(id, 'the first approval gate', (x) => x.steps.some((step) => step.status === 'awaiting_approval'));
    expect(
      (await admin('POST', `/runbooks/runs/${id}/cancel`, { by: 'pat', reason: 'size check only' })).statusCode,
    ).toBe(202);
    const tooMany = await admin('POST', '/runbooks/compromised-token', {
      severity: 'P2',
      by: 'pat',
      users: [...users, 'one-more'],
    });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('the leak scan confirms an issued code that reached a log line, by its bcrypt hash, and reports no value', async () => {
    const since = new Date(Date.now() - 60_000).toISOString();
    const challenge = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>().challenge_id;
    const code = await secretFor(h, challenge);
    h.runtime.logger.info({ note: `debug dump ${code}` }, 'a careless log line');
    h.runtime.logger.info({ note: 'order 424242 shipped' }, 'a harmless six-digit number');
    const env = new MockActivityEnvironment();
    const report = (await env.run(createActivities(h.runtime).scanForTokenLeaks, {
      workflowId: 'leak-scan-probe',
      since,
      until: new Date().toISOString(),
      maxComparisons: 500,
    })) as {
      clean: boolean;
      confirmedLeaks: Array<{ challengeId: string; sources: string[] }>;
      unverifiedCandidates: number;
      bcryptComparisons: number;
    };
    expect(report.clean).toBe(false);
    expect(report.confirmedLeaks).toEqual([{ challengeId: challenge, method: 'sms_otp', sources: ['logs'] }]);
    expect(report.unverifiedCandidates).toBe(0);
    expect(report.bcryptComparisons).toBeGreaterThan(0);
    const stored = await h.sql<{ body: string }>(
      `SELECT c.body FROM runbook_artifact_chunks c JOIN runbook_artifacts a ON a.id = c.artifact_id WHERE a.workflow_id = 'leak-scan-probe'`,
    );
    expect(stored[0]!.body).toContain(challenge);
    expect(stored[0]!.body).not.toContain(code);
  });
});
