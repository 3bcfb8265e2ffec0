/**
 * P0 containment and who asked for the run: a P0 compromised-token incident opened by a
 * responder waits at its destructive steps for an admin (asked in the incident's Slack thread,
 * a responder's approval refused), while one opened by an admin or by an Alertmanager alert
 * rotates the keys at once. Real stack: dev server, Postgres, the Slack sandbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findIncident } from '../../src/incidents/client';
import { incidentStateQuery, type IncidentState } from '../../src/shared/incidents';
import type { RunbookState, RunbookStepState } from '../../src/shared/runbooks';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

const ALERT_TOKEN = 'am-token-p0-authority-0123456789';

describe('P0 containment on whose authority', () => {
  let h: Harness;
  let responder: { authorization: string };
  let admin: { authorization: string };

  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_ALERTMANAGER_TOKEN: ALERT_TOKEN } });
    responder = await operatorHeaders(h, 'rhea', 'responder');
    admin = await operatorHeaders(h, 'ada', 'admin');
  });
  afterAll(async () => h?.close());

  const call = (headers: { authorization: string }, method: 'GET' | 'POST', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const incident = async (id: string): Promise<IncidentState> => {
    const ref = (await findIncident(h.runtime.db, id))!;
    return h.runtime.temporal.client.workflow.getHandle(ref.workflowId, ref.runId).query(incidentStateQuery);
  };
  const run = async (id: string) => (await call(admin, 'GET', `/runbooks/runs/${id}`)).json<RunbookState>();
  const step = (s: RunbookState, name: string) => s.steps.find((x) => x.name === name) as RunbookStepState;
  const rotations = async () => (await h.sql('SELECT id FROM key_rotations')).length;
  const runbookOf = (id: string) =>
    waitFor(
      `the runbook of ${id}`,
      async () => (await incident(id).catch(() => undefined))?.runbook?.workflowId,
      30_000,
    );
  const untilStep = (id: string, name: string, status: RunbookStepState['status']) =>
    waitFor(
      `${name} ${status}`,
      async () => {
        const s = await run(id);
        return s.steps && step(s, name).status === status ? s : undefined;
      },
      60_000,
    );
  const openP0 = async (headers: { authorization: string }, title: string) => {
    const res = await call(headers, 'POST', '/incidents', { type: 'compromised_token', severity: 'P0', title });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ id: string }>().id;
  };

  it("holds a responder's P0 at rotate_keys until an admin approves; the responder's approval is refused", async () => {
    const id = await openP0(responder, 'keys pasted in a public gist');
    const runId = await runbookOf(id);
    const waiting = await untilStep(runId, 'rotate_keys', 'awaiting_approval');
    expect(waiting).toMatchObject({ startedBy: 'rhea', startedByRole: 'responder' });
    expect(step(waiting, 'rotate_keys').approval).toEqual({ required: true });
    expect(step(waiting, 'notify_users').approval).toEqual({ required: true });
    expect(await rotations()).toBe(0);

    // the request is in the incident's Slack thread, with both buttons
    const s = await waitFor('the approval request in Slack', async () => {
      const x = await incident(id);
      return x.stepApprovals?.some((a) => a.step === 'rotate_keys' && a.slackTs) ? x : undefined;
    });
    const notice = s.stepApprovals!.find((a) => a.step === 'rotate_keys')!;
    const posted = h.sandbox.state.slackCalls().find((c) => c.method === 'chat.postMessage' && c.ts === notice.slackTs);
    expect(posted?.thread_ts).toBe(s.slack!.ts);
    expect(JSON.stringify(posted?.blocks)).toContain('runbook_step_approve');
    expect(JSON.stringify(posted?.blocks)).toContain('runbook_step_reject');

    const refused = await call(responder, 'POST', `/runbooks/runs/${runId}/approve`, { step: 'rotate_keys' });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: 'forbidden', needed_role: 'admin' });
    await new Promise((r) => setTimeout(r, 500));
    expect(step(await run(runId), 'rotate_keys').status).toBe('awaiting_approval');
    expect(await rotations()).toBe(0);

    const approved = await call(admin, 'POST', `/runbooks/runs/${runId}/approve`, { step: 'rotate_keys' });
    expect(approved.statusCode, approved.body).toBe(200);
    const done = await untilStep(runId, 'rotate_keys', 'succeeded');
    expect(step(done, 'rotate_keys').approval).toMatchObject({ how: 'responder', by: 'ada' });
    expect(await rotations()).toBe(1);
    const timeline = (await incident(id)).timeline.map((e) => e.message);
    expect(timeline).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^rotate_keys: awaiting an admin's approval/),
        'rotate_keys: approved by ada',
      ]),
    );
  });

  it('holds a P0 run a responder starts directly the same way, and the responder may cancel it', async () => {
    const started = await call(responder, 'POST', '/runbooks/compromised-token', { severity: 'P0' });
    expect(started.statusCode, started.body).toBe(201);
    const runId = started.json<{ workflow_id: string }>().workflow_id;
    await untilStep(runId, 'rotate_keys', 'awaiting_approval');
    const before = await rotations();
    const cancelled = await call(responder, 'POST', `/runbooks/runs/${runId}/cancel`, { reason: 'admin unreachable' });
    expect(cancelled.statusCode, cancelled.body).toBe(202);
    const ended = await waitFor('the run to end', async () => {
      const s = await run(runId);
      return s.status === 'cancelled' ? s : undefined;
    });
    expect(step(ended, 'rotate_keys').status).toBe('skipped');
    expect(await rotations()).toBe(before);
  });

  it("contains an admin's P0 at once", async () => {
    const before = await rotations();
    const id = await openP0(admin, 'session tokens in a crash report');
    const runId = await runbookOf(id);
    const done = await untilStep(runId, 'rotate_keys', 'succeeded');
    expect(done).toMatchObject({ startedBy: 'ada', startedByRole: 'admin' });
    expect(step(done, 'rotate_keys').approval).toEqual({ required: false, how: 'auto_p0_containment', by: 'ada' });
    expect(done.log.some((e) => /awaiting an admin/.test(e.message))).toBe(false);
    expect(await rotations()).toBe(before + 1);
  });

  it("contains an alert's P0 at once: no person asked", async () => {
    const before = await rotations();
    const alert = {
      status: 'firing',
      labels: { alertname: 'TokenLeakDetected', severity: 'P0', incident_type: 'compromised_token' },
      annotations: { summary: 'Issued tokens seen in the log pipeline' },
      startsAt: new Date().toISOString(),
      fingerprint: 'p0-authority',
    };
    const res = await h.admin.inject({
      method: 'POST',
      url: '/alertmanager/webhook',
      headers: { authorization: `Bearer ${ALERT_TOKEN}` },
      payload: {
        version: '4',
        groupKey: `{}:{alertname="TokenLeakDetected", run="${Date.now()}"}`,
        status: 'firing',
        commonLabels: alert.labels,
        commonAnnotations: alert.annotations,
        alerts: [alert],
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const workflowId = res.json<{ workflow_id: string }>().workflow_id;
    const runId = await waitFor(
      'the alert incident’s runbook',
      async () =>
        (
          await h.runtime.temporal.client.workflow
            .getHandle(workflowId)
            .query(incidentStateQuery)
            .catch(() => undefined)
        )?.runbook?.workflowId,
      30_000,
    );
    const done = await untilStep(runId, 'rotate_keys', 'succeeded');
    expect(done).toMatchObject({ startedBy: 'alertmanager', startedByRole: 'automation' });
    expect(step(done, 'rotate_keys').approval).toMatchObject({ required: false, how: 'auto_p0_containment' });
    expect(await rotations()).toBe(before + 1);
  });
});
