/**
 * Slack's side of incidents through the admin app: signed requests (accepted, refused, replayed),
 * the /incident slash command, and the alert's buttons reaching the incident workflow. Slack
 * itself is the sandbox, reached through the real @slack/web-api client.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp, type WardenApp } from '../../src/api/app';
import { findIncident } from '../../src/incidents/client';
import { incidentStateQuery, type IncidentState } from '../../src/shared/incidents';
import { startHarness, type Harness } from '../helpers/harness';

describe('Slack integration', () => {
  let h: Harness;
  let replica: WardenApp;
  beforeAll(async () => {
    // bob and carol are responders; alice (who opens incidents) has no role
    h = await startHarness({ env: { SLACK_ROLES: 'U0BOB=responder,U0CAROL=responder' } });
    // a second API replica on the same database: a replay must be refused there too
    replica = await buildAdminApp(h.runtime);
  });
  afterAll(async () => {
    await replica?.close();
    await h?.close();
  });

  const secret = () => h.config.providers.slack.signingSecret!;
  const now = () => String(Math.floor(Date.now() / 1000));
  const sign = (timestamp: string, body: string, key = secret()) =>
    `v0=${createHmac('sha256', key).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const send = (url: string, body: string, headers: Record<string, string> = {}, app: WardenApp = h.admin) => {
    const timestamp = headers['x-slack-request-timestamp'] ?? now();
    return app.inject({
      method: 'POST',
      url,
      payload: body,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': timestamp,
        'x-slack-signature': sign(timestamp, body),
        ...headers,
      },
    });
  };
  const command = (text: string, user = 'U0ALICE', name = 'alice') =>
    form({
      command: '/incident',
      text,
      user_id: user,
      user_name: name,
      channel_id: 'C0INCIDENTS',
      team_id: 'T0SANDBOX',
      response_url: 'https://hooks.slack.invalid/x',
      trigger_id: `t-${Math.random()}`,
    });
  const click = (actionId: string, value: string, user = 'U0BOB', name = 'bob') =>
    form({
      payload: JSON.stringify({
        type: 'block_actions',
        user: { id: user, username: name, name, team_id: 'T0SANDBOX' },
        team: { id: 'T0SANDBOX', domain: 'warden-sandbox' },
        channel: { id: 'C0INCIDENTS' },
        container: { type: 'message' },
        actions: [{ type: 'button', action_id: actionId, value, action_ts: String(Date.now()) }],
        trigger_id: `t-${Math.random()}`,
      }),
    });

  async function eventually<T>(probe: () => Promise<T> | T, accept: (v: T) => boolean, what: string): Promise<T> {
    const deadline = Date.now() + 20_000;
    let last = await probe();
    while (!accept(last)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 1500)}`);
      await new Promise((r) => setTimeout(r, 150));
      last = await probe();
    }
    return last;
  }
  const state = async (id: string) => {
    const ref = (await findIncident(h.runtime.db, id))!;
    return h.runtime.temporal.client.workflow.getHandle(ref.workflowId, ref.runId).query(incidentStateQuery);
  };
  /** ephemeral answers (the sandbox records channel and text; the texts below are specific) */
  const ephemerals = (_user: string) => h.sandbox.state.slackCalls().filter((c) => c.method === 'chat.postEphemeral');

  async function openViaSlack(text: string): Promise<string> {
    const res = await send('/slack/commands', command(text));
    expect(res.statusCode).toBe(200);
    const answer = res.json<{ response_type: string; text: string }>();
    expect(answer.response_type).toBe('ephemeral');
    const id = /\*(INC-\d{4}-\d{2}-\d{2}-\d+)\*/.exec(answer.text)?.[1];
    expect(id, answer.text).toBeDefined();
    return id!;
  }

  it('accepts a signed slash command and opens the incident, posting the incident alert with its buttons', async () => {
    const id = await openViaSlack('p1 provider_outage Twilio   returns 503 & more');
    const s = await eventually(
      () => state(id),
      (s) => Boolean(s.slack),
      'Slack alert posted',
    );
    expect(s.source).toBe('slack');
    expect(s.openedBy).toBe('<@U0ALICE|alice>');
    expect(s.severity).toBe('P1');
    expect(s.type).toBe('provider_outage');
    expect(s.title).toBe('Twilio returns 503 & more');
    const alert = h.sandbox.state.slackCalls().find((c) => c.ts === s.slack!.ts && c.method === 'chat.postMessage')!;
    const lines = alert.text!.split('\n');
    expect(lines[0]).toBe('🚨 INCIDENT ALERT - P1');
    expect(lines.slice(1, 7).map((l) => l.split(':')[0])).toEqual([
      'Title',
      'Detected',
      'Impact',
      'Status',
      'Owner',
      'War Room',
    ]);
    expect(lines[1]).toBe('Title: Twilio returns 503 &amp; more');
    expect(lines[4]).toBe('Status: Investigating');
    expect(alert.text).toContain('Updates: Thread below');
    const buttons = JSON.stringify(alert.blocks);
    for (const action of ['incident_acknowledge', 'incident_escalate', 'incident_resolve'])
      expect(buttons).toContain(action);
    expect(buttons).toContain(`"value":"${id}"`);
  });

  it('answers a malformed command with usage instead of opening anything', async () => {
    const before = (await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM incidents'))[0]!.n;
    for (const text of ['p9 other boom', 'p1 meteor boom', 'p1 other']) {
      const res = await send('/slack/commands', command(text));
      expect(res.statusCode).toBe(200);
      expect(res.json().text).toContain('Usage: `/incident');
    }
    expect((await h.sql<{ n: number }>('SELECT count(*)::int AS n FROM incidents'))[0]!.n).toBe(before);
  });

  it('refuses a bad signature, a stale timestamp, missing headers and a replay (on another replica too)', async () => {
    const body = command('p3 other replay target');
    const ts = now();
    const forged = await send('/slack/commands', body, {
      'x-slack-request-timestamp': ts,
      'x-slack-signature': sign(ts, body, 'not-the-secret'),
    });
    expect(forged.statusCode).toBe(401);
    expect(forged.json().error).toBe('invalid_signature');

    const tampered = await send('/slack/commands', body.replace('replay', 'r3play'), {
      'x-slack-request-timestamp': ts,
      'x-slack-signature': sign(ts, body),
    });
    expect(tampered.json().error).toBe('invalid_signature');

    const old = String(Math.floor(Date.now() / 1000) - 6 * 60);
    const stale = await send('/slack/commands', body, {
      'x-slack-request-timestamp': old,
      'x-slack-signature': sign(old, body),
    });
    expect(stale.statusCode).toBe(401);
    expect(stale.json().error).toBe('stale_request');

    const bare = await h.admin.inject({
      method: 'POST',
      url: '/slack/commands',
      payload: body,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(bare.statusCode).toBe(401);

    const first = await send('/slack/commands', body, { 'x-slack-request-timestamp': ts });
    expect(first.statusCode).toBe(200);
    const replay = await send('/slack/commands', body, { 'x-slack-request-timestamp': ts });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error).toBe('replayed_request');
    const elsewhere = await send('/slack/commands', body, { 'x-slack-request-timestamp': ts }, replica);
    expect(elsewhere.json().error).toBe('replayed_request');
    const metrics = await h.runtime.registry.metrics();
    expect(metrics).toMatch(/warden_slack_requests_total\{[^}]*outcome="replayed_request"[^}]*\} 2/);
  });

  it('answers 503 not_configured without a signing secret or without a workspace', async () => {
    for (const missing of [{ signingSecret: undefined }, { teamId: undefined }]) {
      const runtime = {
        ...h.runtime,
        config: {
          ...h.config,
          providers: { ...h.config.providers, slack: { ...h.config.providers.slack, ...missing } },
        },
      };
      const app = await buildAdminApp(runtime);
      try {
        const res = await send('/slack/commands', command('p3 other x'), {}, app);
        expect(res.statusCode).toBe(503);
        expect(res.json().error).toBe('not_configured');
        expect(res.json().message).toContain('signingSecret' in missing ? 'SLACK_SIGNING_SECRET' : 'SLACK_TEAM_ID');
      } finally {
        await app.close();
      }
    }
  });

  it('buttons reach the workflow: acknowledge, escalate, and resolve opening its modal', async () => {
    const id = await openViaSlack('p0 db_connectivity Pool exhausted');
    let s = await eventually(
      () => state(id),
      (s) => Boolean(s.slack),
      'alert posted',
    );

    expect((await send('/slack/interactions', click('incident_acknowledge', id))).statusCode).toBe(200);
    s = await eventually(
      () => state(id),
      (s) => Boolean(s.acknowledgedAt),
      'acknowledged',
    );
    expect(s.owner).toBe('<@U0BOB|bob>');
    await eventually(
      () => ephemerals('U0BOB'),
      (calls) => calls.some((c) => c.text?.includes(`You acknowledged *${id}*`)),
      'ack confirmation',
    );
    // the alert itself now names the owner, and the thread tells everyone
    await eventually(
      () => h.sandbox.state.slackCalls(),
      (calls) =>
        calls.some(
          (c) => c.method === 'chat.update' && c.ts === s.slack!.ts && c.text?.includes('Owner: <@U0BOB|bob>'),
        ),
      'alert updated',
    );
    await eventually(
      () => h.sandbox.state.slackCalls(),
      (calls) => calls.some((c) => c.thread_ts === s.slack!.ts && c.text?.includes('Acknowledged by <@U0BOB|bob>')),
      'threaded acknowledgement',
    );

    const again = await send('/slack/interactions', click('incident_acknowledge', id, 'U0CAROL', 'carol'));
    expect(again.statusCode).toBe(200);
    await eventually(
      () => ephemerals('U0CAROL'),
      (calls) => calls.some((c) => c.text?.includes('already acknowledged')),
      'second ack refused',
    );

    await send('/slack/interactions', click('incident_escalate', id));
    s = await eventually(
      () => state(id),
      (s) => s.escalations.some((e) => e.role === 'dba'),
      'escalated to the DBA',
    );
    expect(s.escalations.find((e) => e.role === 'dba')?.reason).toContain('escalated by <@U0BOB|bob>');

    // Resolve opens the modal (resolution, root cause, preventive action); nothing changes yet
    await send('/slack/interactions', click('incident_resolve', id));
    const modal = await eventually(
      () => h.sandbox.state.slackCalls().find((c) => c.method === 'views.open'),
      (call) => call !== undefined,
      'resolve modal opened',
    );
    expect(modal!.trigger_id).toMatch(/^t-/);
    expect(JSON.parse((modal!.view as { private_metadata: string }).private_metadata)).toMatchObject({ id });
    expect(['investigating', 'mitigating']).toContain((await state(id)).status);

    await send('/slack/interactions', click('incident_acknowledge', 'INC-1999-01-01-01'));
    await eventually(
      () => ephemerals('U0BOB'),
      (calls) => calls.some((c) => c.text?.includes('no incident INC-1999-01-01-01')),
      'unknown incident',
    );
    const state2: IncidentState = await state(id);
    expect(state2.timeline.filter((e) => e.kind === 'acknowledged')).toHaveLength(1);
  });
});
