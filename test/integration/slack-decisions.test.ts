/**
 * Decisions taken in Slack, with signed payloads against the sandbox: the Reject buttons of a
 * gated runbook start and of a waiting step (the request rewritten in place, the decision on
 * the timeline), `/incident runbook INC-… approve|reject <step>`, a P0 whose start a responder
 * approved waiting for an admin at its containment, and resolve-modal submissions that are
 * forged or replayed (refused before anything runs).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findIncident } from '../../src/incidents/client';
import { RESOLVE_MODAL } from '../../src/incidents/templates';
import type { SlackCall } from '../../src/sandbox/state';
import { incidentStateQuery, type IncidentState } from '../../src/shared/incidents';
import { runbookStateQuery, type RunbookState } from '../../src/shared/runbooks';
import { startHarness, type Harness } from '../helpers/harness';
import { slackHeaders } from '../helpers/signing';

const TEAM = 'T0SANDBOX';

describe('Slack decisions', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { SLACK_ROLES: 'U0ADMIN=admin,U0RESP=responder' } });
  });
  afterAll(async () => h?.close());

  const secret = () => h.config.providers.slack.signingSecret!;
  const send = (url: string, body: string, headers = slackHeaders(secret(), body)) =>
    h.admin.inject({
      method: 'POST',
      url,
      payload: body,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    });
  const command = async (text: string, user: string) => {
    const res = await send(
      '/slack/commands',
      new URLSearchParams({
        command: '/incident',
        text,
        user_id: user,
        user_name: user.slice(1).toLowerCase(),
        channel_id: 'C0INCIDENTS',
        team_id: TEAM,
      }).toString(),
    );
    expect(res.statusCode).toBe(200);
    return res.json<{ text: string }>().text;
  };
  const click = async (actionId: string, value: string, user: string) => {
    const body = new URLSearchParams({
      payload: JSON.stringify({
        type: 'block_actions',
        user: { id: user, username: user.slice(1).toLowerCase(), team_id: TEAM },
        team: { id: TEAM },
        channel: { id: 'C0INCIDENTS' },
        actions: [{ type: 'button', action_id: actionId, value }],
      }),
    }).toString();
    expect((await send('/slack/interactions', body)).statusCode).toBe(200);
  };

  async function eventually<T>(probe: () => Promise<T> | T, accept: (v: T) => boolean, what: string, ms = 30_000) {
    const deadline = Date.now() + ms;
    let last = await probe();
    while (!accept(last)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 150));
      last = await probe();
    }
    return last;
  }
  const state = async (id: string): Promise<IncidentState> => {
    const ref = (await findIncident(h.runtime.db, id))!;
    return h.runtime.temporal.client.workflow.getHandle(ref.workflowId, ref.runId).query(incidentStateQuery);
  };
  const runState = (workflowId: string): Promise<RunbookState> =>
    h.runtime.temporal.client.workflow.getHandle(workflowId).query(runbookStateQuery);
  const calls = (method: string): SlackCall[] => h.sandbox.state.slackCalls().filter((c) => c.method === method);
  /** the request's message once rewritten with `text` and without buttons */
  const rewritten = (ts: string, text: string) =>
    eventually(
      () => calls('chat.update').filter((c) => c.ts === ts),
      (list) =>
        list.some(
          (c) =>
            c.text?.includes(text) &&
            !/incident_runbook_start_|runbook_step_(approve|reject)/.test(JSON.stringify(c.blocks)),
        ),
      `message ${ts} rewritten with "${text}"`,
    );
  const rotations = async () => (await h.sql('SELECT id FROM key_rotations')).length;

  async function open(text: string, user: string): Promise<string> {
    const id = /\*(INC-\d{4}-\d{2}-\d{2}-\d+)\*/.exec(await command(text, user))?.[1];
    expect(id).toBeDefined();
    await eventually(
      () => state(id!),
      (s) => Boolean(s.slack),
      'alert posted',
    );
    return id!;
  }
  /** an incident whose runbook's rotate_keys waits for an admin, with its request in the thread */
  async function waitingAtRotateKeys(id: string) {
    const s = await eventually(
      () => state(id),
      (x) => x.stepApprovals?.some((a) => a.step === 'rotate_keys' && a.slackTs) ?? false,
      'step approval posted',
    );
    return s.stepApprovals!.find((a) => a.step === 'rotate_keys')!;
  }

  it('leaves a P0 whose start a responder approved to an admin, who approves its containment with /incident runbook … approve <step>', async () => {
    const id = await open('p0 compromised_token tokens in a pastebin', 'U0NOBODY');
    const gate = await eventually(
      () => state(id),
      (x) => Boolean(x.runbookGate?.slackTs),
      'gate posted',
    );
    await click('incident_runbook_start_approve', id, 'U0RESP');
    const notice = await waitingAtRotateKeys(id);
    expect(gate.runbook).toBeUndefined();
    const run = await runState(notice.runbookWorkflowId);
    expect(run).toMatchObject({ startedBy: '<@U0RESP|0resp>', startedByRole: 'responder' });
    expect(run.steps.find((s) => s.name === 'rotate_keys')).toMatchObject({
      status: 'awaiting_approval',
      approval: { required: true },
    });
    expect(await rotations()).toBe(0);

    expect(await command(`runbook ${id} approve rotate_keys`, 'U0RESP')).toContain('forbidden');
    const answer = await command(`runbook ${id} approve rotate_keys`, 'U0ADMIN');
    expect(answer).toBe(`Approved step \`rotate_keys\` of *${id}*'s runbook.`);
    await eventually(
      () => runState(notice.runbookWorkflowId),
      (r) => r.steps.find((s) => s.name === 'rotate_keys')!.status === 'succeeded',
      'rotate_keys ran',
    );
    expect(await rotations()).toBe(1);
    await rewritten(notice.slackTs!, 'Approved by <@U0ADMIN|0admin>');
    expect((await state(id)).timeline.map((e) => e.message)).toContain('rotate_keys: approved by <@U0ADMIN|0admin>');
  });

  it('rejects a step with /incident runbook … reject <step>: not run, on the timeline', async () => {
    const id = await open('p1 compromised_token a token in a chat log', 'U0RESP');
    const notice = await waitingAtRotateKeys(id);
    const before = await rotations();
    const answer = await command(`runbook ${id} reject rotate_keys`, 'U0ADMIN');
    expect(answer).toBe(`Rejected step \`rotate_keys\` of *${id}*'s runbook.`);
    const run = await eventually(
      () => runState(notice.runbookWorkflowId),
      (r) => r.steps.find((s) => s.name === 'rotate_keys')!.status === 'rejected',
      'rotate_keys rejected',
    );
    expect(run.steps.find((s) => s.name === 'rotate_keys')!.approval).toMatchObject({ by: '<@U0ADMIN|0admin>' });
    await rewritten(notice.slackTs!, 'Rejected by <@U0ADMIN|0admin>');
    expect((await state(id)).timeline.map((e) => e.message)).toContain(
      'rotate_keys: rejected by <@U0ADMIN|0admin>; not run',
    );
    expect(await rotations()).toBe(before);
  });

  it('rejects a waiting step with its Reject button: the request is rewritten, the step not run', async () => {
    const id = await open('p1 compromised_token keys in a support ticket', 'U0RESP');
    const notice = await waitingAtRotateKeys(id);
    const before = await rotations();
    const value = JSON.stringify({ incident: id, run: notice.runbookWorkflowId, step: 'rotate_keys' });
    await click('runbook_step_reject', value, 'U0ADMIN');
    await eventually(
      () => runState(notice.runbookWorkflowId),
      (r) => r.steps.find((s) => s.name === 'rotate_keys')!.status === 'rejected',
      'rotate_keys rejected',
    );
    await rewritten(notice.slackTs!, 'Rejected by <@U0ADMIN|0admin>');
    const s = await state(id);
    expect(s.stepApprovals?.find((a) => a.step === 'rotate_keys')).toMatchObject({ status: 'rejected' });
    expect(s.timeline.map((e) => e.message)).toContain('rotate_keys: rejected by <@U0ADMIN|0admin>; not run');
    expect(await rotations()).toBe(before);
  });

  it('rejects a gated runbook start with its Reject button: the request is rewritten, no runbook starts', async () => {
    const id = await open('p1 compromised_token suspicious logins', 'U0NOBODY');
    const gate = await eventually(
      () => state(id),
      (x) => Boolean(x.runbookGate?.slackTs),
      'gate posted',
    );
    await click('incident_runbook_start_reject', id, 'U0RESP');
    await rewritten(gate.runbookGate!.slackTs!, 'Rejected by <@U0RESP|0resp>');
    const s = await state(id);
    expect(s.runbookGate).toMatchObject({
      status: 'rejected',
      decidedBy: '<@U0RESP|0resp>',
      decidedByRole: 'responder',
    });
    expect(s.timeline.map((e) => e.message)).toContain('Runbook not started: rejected by <@U0RESP|0resp>');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await state(id)).runbook).toBeUndefined();
  });

  it('refuses a forged and a replayed resolve-modal submission before anything runs', async () => {
    const id = await open('p3 other modal drill', 'U0RESP');
    const submission = (rootCause: string) =>
      new URLSearchParams({
        payload: JSON.stringify({
          type: 'view_submission',
          team: { id: TEAM },
          user: { id: 'U0RESP', username: 'resp', team_id: TEAM },
          view: {
            id: 'V0MODAL',
            callback_id: RESOLVE_MODAL,
            private_metadata: JSON.stringify({ id, channel: 'C0INCIDENTS' }),
            state: {
              values: {
                resolution: { value: { type: 'plain_text_input', value: 'restarted the queue' } },
                root_cause: { value: { type: 'plain_text_input', value: rootCause } },
                preventive_action: { value: { type: 'plain_text_input', value: 'alert on queue depth' } },
                preventive_category: { value: { type: 'static_select', selected_option: { value: 'monitoring' } } },
              },
            },
          },
        }),
      }).toString();

    const forgedBody = submission('a forged root cause');
    const forged = await send('/slack/interactions', forgedBody, slackHeaders('not-the-secret', forgedBody));
    expect(forged.statusCode).toBe(401);
    expect(forged.json()).toMatchObject({ error: 'invalid_signature' });
    await new Promise((r) => setTimeout(r, 500));
    const unchanged = await state(id);
    expect(unchanged.rootCause).toBeUndefined();
    expect(unchanged.preventiveActions).toEqual([]);
    expect(unchanged.status).toBe('investigating');
    expect(unchanged.timeline.filter((e) => e.kind === 'root_cause' || e.kind === 'preventive_action')).toEqual([]);

    // a genuine submission: root cause and action recorded, the resolution refused by the workflow
    const body = submission('queue consumer crashed');
    const headers = slackHeaders(secret(), body);
    const first = await send('/slack/interactions', body, headers);
    expect(first.statusCode).toBe(200);
    expect(JSON.stringify(first.json())).toContain('checklist_incomplete');
    const after = await eventually(
      () => state(id),
      (s) => s.rootCause === 'queue consumer crashed' && s.preventiveActions.length === 1,
      'root cause and action recorded',
    );
    // someone corrects the root cause; the same submission sent again would put it back
    const corrected = await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/incidents/${id}/root-cause`,
      headers: h.adminHeaders,
      payload: { text: 'a consumer deadlock' },
    });
    expect(corrected.statusCode, corrected.body).toBe(200);
    const replay = await send('/slack/interactions', body, headers);
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ error: 'replayed_request' });
    await new Promise((r) => setTimeout(r, 500));
    const s = await state(id);
    expect(s.rootCause).toBe('a consumer deadlock');
    expect(s.status).toBe('investigating');
    expect(s.preventiveActions).toHaveLength(1);
    expect(s.timeline.filter((e) => e.kind === 'root_cause')).toHaveLength(
      after.timeline.filter((e) => e.kind === 'root_cause').length + 1,
    );
  });
});
