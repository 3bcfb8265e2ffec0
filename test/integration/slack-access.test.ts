/**
 * Who may act from Slack, end to end against the sandbox: the workspace check, roles of users
 * and user groups (usergroups.users.list through the SDK), refusals (an ephemeral naming the
 * role, an audit row, nothing changed), the `/incident` subcommands, the runbook gate of a
 * Slack-opened incident, runbook step approvals and task Done buttons posted in the thread
 * and rewritten in place, from Slack and from the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findIncident } from '../../src/incidents/client';
import { incidentStateQuery, type IncidentState } from '../../src/shared/incidents';
import { runbookStateQuery } from '../../src/shared/runbooks';
import type { SlackCall } from '../../src/sandbox/state';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';
import { slackHeaders } from '../helpers/signing';

const TEAM = 'T0SANDBOX';

describe('Slack access and decisions', () => {
  let h: Harness;
  /** the gate's REST route on an app of its own, with the operator the admin API would set */
  let dana: { authorization: string };
  beforeAll(async () => {
    h = await startHarness({
      env: { SLACK_ROLES: 'U0ADMIN=admin,U0RESP=responder,U0VIEW=viewer,S0ONCALL=responder' },
    });
    // members of the responders' user group (Warden keeps what it read for a minute)
    const group = await fetch(`${h.sandbox.url}/sandbox/slack/usergroups`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ usergroup: 'S0ONCALL', users: ['U0GROUPIE'] }),
    });
    expect(group.status).toBe(200);
    // the responder who decides gated runbook starts on the admin API
    dana = await operatorHeaders(h, 'dana', 'responder');
  });
  afterAll(async () => {
    await h?.close();
  });

  const secret = () => h.config.providers.slack.signingSecret!;
  const send = (url: string, body: string, headers = slackHeaders(secret(), body)) =>
    h.admin.inject({
      method: 'POST',
      url,
      payload: body,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    });
  const command = (text: string, user: string, team = TEAM) =>
    send(
      '/slack/commands',
      new URLSearchParams({
        command: '/incident',
        text,
        user_id: user,
        user_name: user.slice(1).toLowerCase(),
        channel_id: 'C0INCIDENTS',
        team_id: team,
        trigger_id: `t-${Math.random()}`,
      }).toString(),
    );
  const clickBody = (actionId: string, value: string, user: string, team = TEAM, select = false) =>
    new URLSearchParams({
      payload: JSON.stringify({
        type: 'block_actions',
        user: { id: user, username: user.slice(1).toLowerCase(), team_id: team },
        team: { id: team },
        channel: { id: 'C0INCIDENTS' },
        trigger_id: `t-${Math.random()}`,
        actions: [
          select
            ? { type: 'static_select', action_id: actionId, selected_option: { value } }
            : { type: 'button', action_id: actionId, value },
        ],
      }),
    }).toString();
  const click = async (actionId: string, value: string, user: string, team = TEAM, select = false) => {
    const res = await send('/slack/interactions', clickBody(actionId, value, user, team, select));
    expect(res.statusCode).toBe(200);
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
  const calls = (method: string): SlackCall[] => h.sandbox.state.slackCalls().filter((c) => c.method === method);
  const ephemeralTo = (user: string, text: string) =>
    eventually(
      () => calls('chat.postEphemeral').filter((c) => c.user === user),
      (list) => list.some((c) => c.text?.includes(text)),
      `ephemeral to ${user} saying "${text}"`,
    );
  const refusals = (user: string) =>
    h.sql<{ reason: string; incident_id: string | null; details: Record<string, unknown> }>(
      `SELECT reason, incident_id, details FROM audit_events
        WHERE event_type = 'identity.access.refused' AND details->>'slack_user' = $1 ORDER BY id`,
      [user],
    );
  const idOf = (text: string) => /\*(INC-\d{4}-\d{2}-\d{2}-\d+)\*/.exec(text)?.[1];

  async function open(text: string, user: string): Promise<string> {
    const res = await command(text, user);
    expect(res.statusCode).toBe(200);
    const id = idOf(res.json<{ text: string }>().text);
    expect(id, res.body).toBeDefined();
    await eventually(
      () => state(id!),
      (s) => Boolean(s.slack),
      'alert posted',
    );
    return id!;
  }

  it('refuses another workspace: an ephemeral refusal and an audit row, and nothing changes', async () => {
    const id = await open('p3 other printer on fire', 'U0RESP');
    const before = (await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM incidents'))[0]!.n;

    const opened = await command('p1 other from elsewhere', 'U0RESP', 'T0EVIL');
    expect(opened.statusCode).toBe(200);
    expect(opened.json().text).toContain('wrong_team');
    const acked = await command(`ack ${id}`, 'U0RESP', 'T0EVIL');
    expect(acked.json().text).toContain('wrong_team');
    await click('incident_acknowledge', id, 'U0RESP', 'T0EVIL');
    await ephemeralTo('U0RESP', 'wrong_team');

    expect((await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM incidents'))[0]!.n).toBe(before);
    expect((await state(id)).acknowledgedAt).toBeUndefined();
    const rows = (await refusals('U0RESP')).filter((r) => r.details.team_id === 'T0EVIL');
    expect(rows.map((r) => [r.reason, r.details.action])).toEqual([
      ['team', 'open'],
      ['team', 'acknowledge'],
      ['team', 'acknowledge'],
    ]);
    expect(rows[1]!.incident_id).toBe(id);
    expect(JSON.stringify(rows)).not.toContain(secret());
  });

  it('refuses a role too low (none, or viewer): the role needed, an audit row, the incident untouched', async () => {
    const id = await open('p3 other disk almost full', 'U0NOBODY');
    const escalationsBefore = (await state(id)).escalations.length;

    await click('incident_acknowledge', id, 'U0NOBODY');
    await ephemeralTo('U0NOBODY', 'you need the *responder* role; you have no role');
    await click('incident_escalate', `${id}|dba`, 'U0VIEW', TEAM, true);
    await ephemeralTo(
      'U0VIEW',
      'escalate an incident from Slack you need the *responder* role; you have the viewer role',
    );
    await click('incident_resolve', id, 'U0VIEW');
    await ephemeralTo('U0VIEW', 'resolve an incident from Slack you need the *responder* role');
    const status = await command(`status ${id}`, 'U0NOBODY');
    expect(status.json().text).toContain('you need the *viewer* role');

    const s = await state(id);
    expect(s.acknowledgedAt).toBeUndefined();
    expect(s.escalations).toHaveLength(escalationsBefore);
    expect(calls('views.open')).toHaveLength(0);
    const rows = [...(await refusals('U0NOBODY')), ...(await refusals('U0VIEW'))];
    expect(rows.map((r) => [r.details.action, r.details.needed, r.incident_id])).toEqual(
      expect.arrayContaining([
        ['acknowledge', 'responder', id],
        ['status', 'viewer', id],
        ['escalate', 'responder', id],
        ['resolve', 'responder', id],
      ]),
    );
    expect(rows.every((r) => r.reason === 'role' && r.details.team_id === TEAM)).toBe(true);
  });

  it('grants a user group its role, read with usergroups.users.list; an escalation names its role', async () => {
    const id = await open('p3 other queue backlog', 'U0NOBODY');

    await click('incident_acknowledge', id, 'U0GROUPIE');
    const s = await eventually(
      () => state(id),
      (x) => Boolean(x.acknowledgedAt),
      'acknowledged by a group member',
    );
    expect(s.owner).toBe('<@U0GROUPIE|0groupie>');
    expect(calls('usergroups.users.list').length).toBeGreaterThan(0);

    await click('incident_escalate', `${id}|security_lead`, 'U0GROUPIE', TEAM, true);
    await eventually(
      () => state(id),
      (x) => x.escalations.some((e) => e.role === 'security_lead'),
      'escalated to the chosen role',
    );
  });

  it('refuses forged and replayed interactions before anything runs', async () => {
    const id = await open('p3 other forged clicks', 'U0RESP');
    const body = clickBody('incident_acknowledge', id, 'U0RESP');
    const forged = await send('/slack/interactions', body, slackHeaders('not-the-secret', body));
    expect(forged.statusCode).toBe(401);
    expect(forged.json().error).toBe('invalid_signature');

    const headers = slackHeaders(secret(), body);
    expect((await send('/slack/interactions', body, headers)).statusCode).toBe(200);
    await eventually(
      () => state(id),
      (s) => Boolean(s.acknowledgedAt),
      'acknowledged once',
    );
    const replay = await send('/slack/interactions', body, headers);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error).toBe('replayed_request');
    expect((await state(id)).timeline.filter((e) => e.kind === 'acknowledged')).toHaveLength(1);
  });

  it('answers the subcommands: help, status, ack, and usage for what is none of them', async () => {
    const help = await command('help', 'U0NOBODY');
    for (const line of ['/incident status INC-', '/incident ack INC-', '/incident runbook INC-'])
      expect(help.json().text).toContain(line);

    const id = await open('p3 other slow dashboards', 'U0RESP');
    const status = await command(`status ${id.toLowerCase()}`, 'U0VIEW');
    expect(status.json().text).toContain(`*${id}* P3 other: slow dashboards`);
    expect(status.json().text).toContain('Status: Investigating · Owner: nobody yet');

    const ack = await command(`ack ${id}`, 'U0RESP');
    expect(ack.json().text).toBe(`You acknowledged *${id}* and own it now.`);
    expect((await state(id)).owner).toBe('<@U0RESP|0resp>');
    const again = await command(`ack ${id}`, 'U0ADMIN');
    expect(again.json().text).toContain('already_acknowledged');

    expect((await command('ack nonsense', 'U0RESP')).json().text).toContain('needs an incident id');
    expect((await command(`runbook ${id} maybe`, 'U0RESP')).json().text).toContain('approve|reject');
    expect((await command(`ack INC-1999-01-01-01`, 'U0RESP')).json().text).toContain('incident_not_found');
  });

  it('holds the runbook of a P0 opened by someone without a role until a responder approves in Slack', async () => {
    const res = await command('p0 compromised_token tokens pasted in a ticket', 'U0NOBODY');
    expect(res.json().text).toContain('waits for a responder');
    const id = idOf(res.json().text)!;
    let s = await eventually(
      () => state(id),
      (x) => Boolean(x.runbookGate?.slackTs),
      'approval request posted',
    );
    expect(s.runbook).toBeUndefined();
    expect(s.runbookGate).toMatchObject({ status: 'waiting', requestedBy: '<@U0NOBODY|0nobody>' });
    const request = calls('chat.postMessage').find((c) => c.ts === s.runbookGate!.slackTs)!;
    expect(request.thread_ts).toBe(s.slack!.ts);
    expect(JSON.stringify(request.blocks)).toContain('incident_runbook_start_approve');
    expect(JSON.stringify(request.blocks)).toContain('incident_runbook_start_reject');

    // a viewer may not decide, by button or by command
    await click('incident_runbook_start_approve', id, 'U0VIEW');
    await ephemeralTo('U0VIEW', 'approve or reject a runbook start from Slack you need the *responder* role');
    expect((await command(`runbook ${id} approve`, 'U0VIEW')).json().text).toContain('forbidden');
    await new Promise((r) => setTimeout(r, 1000));
    s = await state(id);
    expect(s.runbook).toBeUndefined();
    expect(s.runbookGate?.status).toBe('waiting');

    await click('incident_runbook_start_approve', id, 'U0RESP');
    s = await eventually(
      () => state(id),
      (x) => Boolean(x.runbook),
      'runbook started',
    );
    expect(s.runbookGate).toMatchObject({ status: 'approved', decidedBy: '<@U0RESP|0resp>' });
    expect(s.timeline.map((e) => e.message)).toEqual(
      expect.arrayContaining([
        expect.stringContaining("Runbook waits for a responder's approval"),
        'Runbook start approved by <@U0RESP|0resp>',
        expect.stringContaining('Runbook compromisedTokenRunbook started'),
      ]),
    );
    const rewritten = await eventually(
      () => calls('chat.update').filter((c) => c.ts === s.runbookGate!.slackTs),
      (list) => list.some((c) => c.text?.includes('Approved by <@U0RESP|0resp>')),
      'approval request rewritten in place',
    );
    expect(JSON.stringify(rewritten.at(-1)!.blocks)).not.toContain('incident_runbook_start_approve');
  });

  it('takes the gate decision on the admin API too: a rejection leaves the runbook unstarted', async () => {
    const id = await open('p1 compromised_token suspicious session reuse', 'U0NOBODY');
    const gateUrl = (what: string, incident = id) => `/admin/api/v1/incidents/${incident}/runbook-gate/${what}`;
    const post = (url: string, payload: Record<string, unknown> = {}) =>
      h.admin.inject({ method: 'POST', url, headers: dana, payload });

    expect((await post(gateUrl('reject', 'INC-1999-01-01-01'))).json().error).toBe('incident_not_found');
    expect((await post(gateUrl('reject'), { by: 'mallory' })).statusCode).toBe(400);
    const rejected = await post(gateUrl('reject'), { note: 'false alarm, checked the ticket' });
    expect(rejected.statusCode).toBe(200);
    expect(rejected.json<IncidentState>().runbookGate).toMatchObject({ status: 'rejected', decidedBy: 'dana' });
    const again = await post(gateUrl('approve'));
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toBe('not_awaiting_approval');

    const s = await state(id);
    await eventually(
      () => calls('chat.update').filter((c) => c.ts === s.runbookGate!.slackTs),
      (list) => list.some((c) => c.text?.includes('Rejected by dana: false alarm')),
      'request rewritten with the rejection',
    );
    await new Promise((r) => setTimeout(r, 1000));
    const after = await state(id);
    expect(after.runbook).toBeUndefined();
    expect(after.timeline.map((e) => e.message)).toContain(
      'Runbook not started: rejected by dana (false alarm, checked the ticket)',
    );

    // an incident without a gate has nothing to decide
    const ungated = await open('p3 other no gate here', 'U0NOBODY');
    expect((await post(gateUrl('approve', ungated))).json().error).toBe('not_awaiting_approval');
  });

  it('posts a runbook step waiting for approval with buttons; an admin approves it from Slack', async () => {
    // opened by a responder: no gate, the runbook starts and rotate_keys waits (P1)
    const id = await open('p1 compromised_token keys seen in a log', 'U0RESP');
    let s = await eventually(
      () => state(id),
      (x) => x.stepApprovals?.some((a) => a.step === 'rotate_keys' && a.slackTs) ?? false,
      'step approval posted',
    );
    const notice = s.stepApprovals!.find((a) => a.step === 'rotate_keys')!;
    const posted = calls('chat.postMessage').find((c) => c.ts === notice.slackTs)!;
    expect(posted.thread_ts).toBe(s.slack!.ts);
    expect(posted.text).toContain('An admin decides');
    const blocks = JSON.stringify(posted.blocks);
    expect(blocks).toContain('runbook_step_approve');
    expect(blocks).toContain('runbook_step_reject');
    const value = JSON.stringify({ incident: id, run: notice.runbookWorkflowId, step: 'rotate_keys' });

    // a responder may not decide a step; a wrong step name is refused by the runbook
    await click('runbook_step_approve', value, 'U0RESP');
    await ephemeralTo('U0RESP', 'approve or reject a runbook step from Slack you need the *admin* role');
    expect((await command(`runbook ${id} approve rotate_keys`, 'U0RESP')).json().text).toContain('forbidden');
    expect((await command(`runbook ${id} approve no_such_step`, 'U0ADMIN')).json().text).toContain('unknown_step');
    const run = h.runtime.temporal.client.workflow.getHandle(notice.runbookWorkflowId);
    expect((await run.query(runbookStateQuery)).steps.find((x) => x.name === 'rotate_keys')!.status).toBe(
      'awaiting_approval',
    );

    await click('runbook_step_approve', value, 'U0ADMIN');
    await eventually(
      () => run.query(runbookStateQuery),
      (r) => r.steps.find((x) => x.name === 'rotate_keys')!.status === 'succeeded',
      'rotate_keys ran',
    );
    await eventually(
      () => calls('chat.update').filter((c) => c.ts === notice.slackTs),
      (list) =>
        list.some(
          (c) =>
            c.text?.includes('Approved by <@U0ADMIN|0admin>') &&
            !JSON.stringify(c.blocks).includes('runbook_step_approve'),
        ),
      'step request rewritten in place',
    );
    s = await state(id);
    expect(s.timeline.some((e) => e.message === 'rotate_keys: approved by <@U0ADMIN|0admin>')).toBe(true);
  });

  it('rewrites the step request when the decision comes from the admin API', async () => {
    const id = await open('p1 compromised_token token in a screenshot', 'U0RESP');
    const s = await eventually(
      () => state(id),
      (x) => x.stepApprovals?.some((a) => a.step === 'rotate_keys' && a.slackTs) ?? false,
      'step approval posted',
    );
    const notice = s.stepApprovals!.find((a) => a.step === 'rotate_keys')!;
    const res = await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/runbooks/runs/${notice.runbookWorkflowId}/reject`,
      headers: h.adminHeaders,
      payload: { step: 'rotate_keys', note: 'rotated by hand' },
    });
    expect(res.statusCode, res.body).toBe(200);
    await eventually(
      () => calls('chat.update').filter((c) => c.ts === notice.slackTs),
      (list) => list.some((c) => c.text?.includes('Rejected by') && c.text.includes('rotated by hand')),
      'step request rewritten with the REST rejection',
    );
  });

  it('closes a task (the GDPR notification) with its Done button, rewriting the notice', async () => {
    const id = await open('p2 other customer export mailed to the wrong address', 'U0RESP');
    const flagged = await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/incidents/${id}/data-breach`,
      headers: h.adminHeaders,
      payload: { by: 'dana', reason: 'personal data left the company' },
    });
    expect(flagged.statusCode, flagged.body).toBe(200);
    const s = await eventually(
      () => state(id),
      (x) => x.tasks.some((t) => t.id === 'gdpr-notification' && t.slackTs),
      'GDPR task notice posted',
    );
    const task = s.tasks.find((t) => t.id === 'gdpr-notification')!;
    const notice = calls('chat.postMessage').find((c) => c.ts === task.slackTs)!;
    expect(JSON.stringify(notice.blocks)).toContain('incident_task_done');

    await click('incident_task_done', `${id}|gdpr-notification`, 'U0VIEW');
    await ephemeralTo('U0VIEW', 'complete a task from Slack you need the *responder* role');
    expect((await state(id)).tasks.find((t) => t.id === 'gdpr-notification')!.status).toBe('open');

    await click('incident_task_done', `${id}|gdpr-notification`, 'U0RESP');
    await eventually(
      () => state(id),
      (x) => x.tasks.find((t) => t.id === 'gdpr-notification')!.status === 'done',
      'task done',
    );
    await eventually(
      () => calls('chat.update').filter((c) => c.ts === task.slackTs),
      (list) =>
        list.some(
          (c) => c.text?.includes('done (<@U0RESP|0resp>)') && !JSON.stringify(c.blocks).includes('incident_task_done'),
        ),
      'task notice rewritten',
    );
  });
});
