/**
 * Resolving from Slack: the alert's Resolve button opens a modal (views.open), and its
 * submission records the root cause and a preventive action and resolves through the incident
 * workflow's updates. Refusals (missing fields, a role too low, the workflow's gate) come back
 * in the modal; a resolution whose recovery checklist outlasts Slack's 3 seconds answers with a
 * "resolving…" view and tells the outcome afterwards. The checklist is the real one, run
 * against this harness's live public API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/process';
import { findIncident } from '../../src/incidents/client';
import { incidentStateQuery, type IncidentState } from '../../src/shared/incidents';
import type { SlackCall } from '../../src/sandbox/state';
import { startHarness, type Harness } from '../helpers/harness';
import { slackHeaders } from '../helpers/signing';

const TEAM = 'T0SANDBOX';

interface ModalView {
  callback_id: string;
  private_metadata: string;
  blocks: Array<{ block_id?: string; type: string }>;
}

describe('resolving from Slack', () => {
  let h: Harness;
  beforeAll(async () => {
    // generous p95 targets: a loaded machine must not decide whether the checklist passes
    h = await startHarness({
      listen: true,
      env: {
        WARDEN_PUBLIC_PORT: String(await freePort()),
        WARDEN_P95_GENERATION_MS: '60000',
        WARDEN_P95_VALIDATION_MS: '60000',
        WARDEN_P95_PROVIDER_MS: '60000',
        SLACK_ROLES: 'U0RESP=responder,U0VIEW=viewer',
      },
    });
  });
  afterAll(async () => h?.close());

  const send = (url: string, body: string) =>
    h.admin.inject({
      method: 'POST',
      url,
      payload: body,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...slackHeaders(h.config.providers.slack.signingSecret!, body),
      },
    });
  const api = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: Record<string, unknown>) =>
    h.admin.inject({ method, url: `/admin/api/v1${url}`, headers: h.adminHeaders, ...(payload ? { payload } : {}) });
  const payload = (p: Record<string, unknown>) => new URLSearchParams({ payload: JSON.stringify(p) }).toString();
  const calls = (method: string): SlackCall[] => h.sandbox.state.slackCalls().filter((c) => c.method === method);

  async function eventually<T>(probe: () => Promise<T> | T, accept: (v: T) => boolean, what: string, ms = 30_000) {
    const deadline = Date.now() + ms;
    let last = await probe();
    while (!accept(last)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 200));
      last = await probe();
    }
    return last;
  }
  const state = async (id: string): Promise<IncidentState> => {
    const ref = (await findIncident(h.runtime.db, id))!;
    return h.runtime.temporal.client.workflow.getHandle(ref.workflowId, ref.runId).query(incidentStateQuery);
  };

  async function open(title: string): Promise<string> {
    const res = await send(
      '/slack/commands',
      new URLSearchParams({
        command: '/incident',
        text: `p3 other ${title}`,
        user_id: 'U0RESP',
        user_name: 'resp',
        channel_id: 'C0INCIDENTS',
        team_id: TEAM,
      }).toString(),
    );
    const id = /\*(INC-\d{4}-\d{2}-\d{2}-\d+)\*/.exec(res.json<{ text: string }>().text)![1]!;
    await eventually(
      () => state(id),
      (s) => Boolean(s.slack),
      'alert posted',
    );
    return id;
  }

  /** Clicks Resolve and returns the modal Slack was asked to open. */
  async function openModal(id: string, user = 'U0RESP'): Promise<ModalView> {
    const trigger = `t-${Math.random()}`;
    const res = await send(
      '/slack/interactions',
      payload({
        type: 'block_actions',
        trigger_id: trigger,
        user: { id: user, username: 'resp', team_id: TEAM },
        team: { id: TEAM },
        channel: { id: 'C0INCIDENTS' },
        actions: [{ type: 'button', action_id: 'incident_resolve', value: id }],
      }),
    );
    expect(res.statusCode).toBe(200);
    const call = await eventually(
      () => calls('views.open').find((c) => c.trigger_id === trigger),
      (c) => c !== undefined,
      'views.open',
    );
    return call!.view as ModalView;
  }

  /** The view_submission Slack sends for `view` filled with `fields` (block id → text). */
  const submit = (view: ModalView, fields: Record<string, string>, user = 'U0RESP', team = TEAM) =>
    send(
      '/slack/interactions',
      payload({
        type: 'view_submission',
        team: { id: team },
        user: { id: user, username: user === 'U0RESP' ? 'resp' : 'view', team_id: team },
        view: {
          id: 'V0MODAL',
          callback_id: view.callback_id,
          private_metadata: view.private_metadata,
          state: {
            values: {
              ...Object.fromEntries(
                Object.entries(fields).map(([block, value]) => [block, { value: { type: 'plain_text_input', value } }]),
              ),
              preventive_category: { value: { type: 'static_select', selected_option: { value: 'monitoring' } } },
            },
          },
        },
      }),
    );
  const filled = {
    resolution: 'Restarted the stuck consumer',
    root_cause: 'A poison message blocked the queue',
    preventive_action: 'Dead-letter queue after 3 failed deliveries',
  };

  it('opens a modal asking for resolution, root cause and a preventive action; refusals come back in it', async () => {
    const id = await open('queue consumer stuck');
    const view = await openModal(id);
    expect(view.callback_id).toBe('incident_resolve_modal');
    expect(view.blocks.map((b) => b.block_id).filter(Boolean)).toEqual([
      'resolution',
      'root_cause',
      'preventive_action',
      'preventive_category',
    ]);

    // a missing field: shown on its block, nothing recorded
    const missing = await submit(view, { ...filled, root_cause: '  ' });
    expect(missing.statusCode).toBe(200);
    expect(missing.json()).toEqual({
      response_action: 'errors',
      errors: { root_cause: 'The root cause is required' },
    });
    expect((await state(id)).rootCause).toBeUndefined();

    // a viewer may not resolve: refused in the modal, audited, nothing recorded
    const viewer = await submit(view, filled, 'U0VIEW');
    expect(viewer.json().response_action).toBe('errors');
    expect(viewer.json().errors.resolution).toContain('you need the *responder* role');
    const audited = await h.sql<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_events WHERE event_type = 'identity.access.refused' AND incident_id = $1`,
      [id],
    );
    expect(audited.map((r) => [r.details.slack_user, r.details.action])).toEqual([['U0VIEW', 'resolve']]);
    // another workspace's submission likewise
    expect((await submit(view, filled, 'U0RESP', 'T0EVIL')).json().errors.resolution).toContain('wrong_team');
    let s = await state(id);
    expect(s.rootCause).toBeUndefined();
    expect(s.preventiveActions).toHaveLength(0);

    // the workflow's gate refuses (manual checklist items not ticked): the reason is in the modal
    const gated = await submit(view, filled);
    expect(gated.json().response_action).toBe('errors');
    expect(gated.json().errors.resolution).toMatch(/manual checklist items not ticked.*\(checklist_incomplete\)/);
    s = await state(id);
    expect(s.status).not.toBe('resolved');
    expect(s.rootCause).toBe(filled.root_cause);
    expect(s.preventiveActions.map((a) => [a.description, a.category])).toEqual([
      [filled.preventive_action, 'monitoring'],
    ]);
    // submitting again records neither twice
    await submit(view, filled);
    s = await state(id);
    expect(s.preventiveActions).toHaveLength(1);
    expect(s.timeline.filter((e) => e.kind === 'root_cause')).toHaveLength(1);
  });

  it(
    'resolves through the recovery checklist: "resolving…" in the modal, then the outcome',
    { timeout: 180_000 },
    async () => {
      // an expired challenge for the "expired tokens are refused" check: a 1-second OTP
      expect((await api('PUT', '/auth/settings', { otp_ttl_seconds: 1 })).statusCode).toBe(200);
      const short = await h.public.inject({
        method: 'POST',
        url: '/browser/api/v1/identity/auth/otp/initiate',
        payload: { user_id: 'alice' },
      });
      expect(short.statusCode).toBe(202);
      expect((await api('PUT', '/auth/settings', { otp_ttl_seconds: 300 })).statusCode).toBe(200);
      await eventually(
        () => h.sql("SELECT 1 FROM auth_challenges WHERE status = 'expired'"),
        (r) => r.length === 1,
        'expired challenge',
      );

      const id = await open('dashboards blank');
      for (const item of ['user_notifications', 'grafana_dashboards'])
        expect((await api('POST', `/incidents/${id}/checklist/${item}`, { by: 'resp', passed: true })).statusCode).toBe(
          200,
        );
      const view = await openModal(id);
      const answer = await submit(view, filled);
      expect(answer.statusCode).toBe(200);
      const body = answer.json<{ response_action: string; view: { blocks: Array<{ text: { text: string } }> } }>();
      // the checklist runs longer than Slack waits: the modal says so
      expect(body.response_action).toBe('update');
      expect(body.view.blocks[0]!.text.text).toContain(`Resolving *${id}*…`);

      const s = await eventually(
        () => state(id),
        (x) => x.status === 'resolved' || !x.checklistRunning,
        'checklist finished',
        150_000,
      );
      const resolved = await eventually(
        () => state(id),
        (x) => x.status === 'resolved',
        `resolved (checklist: ${JSON.stringify(s.checklist.filter((i) => i.status !== 'passed'))})`,
        10_000,
      );
      expect(resolved.resolution).toBe(filled.resolution);
      expect(resolved.rootCause).toBe(filled.root_cause);
      expect(resolved.preventiveActions.map((a) => a.description)).toEqual([filled.preventive_action]);
      expect(resolved.forcedResolution).toBeUndefined();
      expect(resolved.timeline.at(-1)).toMatchObject({ kind: 'resolved', by: '<@U0RESP|resp>' });
      await eventually(
        () => calls('chat.postEphemeral').filter((c) => c.user === 'U0RESP'),
        (list) => list.some((c) => c.text === `Resolved *${id}*.`),
        'outcome told to the responder',
      );
    },
  );
});
