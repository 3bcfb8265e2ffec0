/** The incidents REST API on the admin app, against the real dev server, worker and database. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runbookProgressSignal, type IncidentState } from '../../src/shared/incidents';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

describe('incidents REST API', () => {
  let h: Harness;
  let omar: { authorization: string };
  beforeAll(async () => {
    // a rota of our own: pages must go to these people, not the default contacts
    const contacts = path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-contacts-')), 'contacts.json');
    writeFileSync(
      contacts,
      JSON.stringify({
        oncall: { name: 'Pat Pager', email: 'pat@ops.example.net', slack_user_id: 'U0PATPAGER' },
        engineering_manager: { name: 'Mo Manager', email: 'mo@ops.example.net' },
        war_room: 'https://meet.example.net/incident',
      }),
    );
    h = await startHarness({ env: { WARDEN_CONTACTS_FILE: contacts } });
    // the responder every change below is made by: the timeline names the credential's operator
    omar = await operatorHeaders(h, 'omar', 'responder');
  });
  afterAll(async () => h?.close());

  const api = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
    h.admin.inject({ method, url: `/admin/api/v1${url}`, headers: omar, ...(payload ? { payload } : {}) });

  async function eventually<T>(
    probe: () => Promise<T>,
    accept: (v: T) => boolean,
    what: string,
    ms = 20_000,
  ): Promise<T> {
    const deadline = Date.now() + ms;
    let last = await probe();
    while (!accept(last)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 1500)}`);
      await new Promise((r) => setTimeout(r, 150));
      last = await probe();
    }
    return last;
  }
  const state = async (id: string) => (await api('GET', `/incidents/${id}`)).json<IncidentState>();
  const open = async (body: Record<string, unknown>) => {
    const res = await api('POST', '/incidents', body);
    expect(res.statusCode).toBe(201);
    return res.json<{ id: string }>().id;
  };

  it('starts its runbook under a run-scoped id when the usual one is taken in the namespace, and keeps running', async () => {
    const day = new Date().toISOString().slice(0, 10);
    const [{ next }] = (await h.sql<{ next: number }>(
      `SELECT COALESCE(MAX(substring(id FROM '(\\d+)$')::int), 0) + 1 AS next FROM incidents WHERE id LIKE $1`,
      [`INC-${day}-%`],
    )) as [{ next: number }];
    // the namespace is shared with every other test file's incidents: the id this incident gets is
    // one of the next free ones there (past the taken ones the client skips more each time, so
    // it may land a few dozen beyond the first), so each of those has its `<INC id>-runbook` taken
    const client = h.runtime.temporal.client;
    const free: string[] = [];
    for (let n = next; free.length < 40; n++) {
      const candidate = `INC-${day}-${String(n).padStart(2, '0')}`;
      const taken = await client.workflow
        .getHandle(candidate)
        .describe()
        .then(
          () => true,
          () => false,
        );
      if (!taken) free.push(candidate);
    }
    // another deployment sharing the namespace runs something under `<INC id>-runbook`
    const squatters = await Promise.all(
      free.map((candidate) =>
        client.workflow.start('compromisedTokenRunbook', {
          workflowId: `${candidate}-runbook`,
          taskQueue: `${h.config.temporal.taskQueue}-another-deployment`,
          args: [{}],
        }),
      ),
    );
    try {
      const id = await open({ type: 'compromised_token', severity: 'P2', title: 'codes seen in a screenshot' });
      expect(free).toContain(id);
      const s = await eventually(
        () => state(id),
        (x) => Boolean(x.runbook),
        'its runbook',
      );
      expect(s.runbook?.workflowId).toMatch(new RegExp(`^${id}-runbook-[0-9a-f-]{8}$`));
      expect(s.runbook?.status).toBe('running');
      expect((await h.runtime.temporal.client.workflow.getHandle(id).describe()).status.name).toBe('RUNNING');
    } finally {
      await Promise.all(squatters.map((squatter) => squatter.terminate('test done')));
    }
  });

  it('opens incidents with unique INC-YYYY-MM-DD-NN ids, also when several arrive at once', async () => {
    const day = new Date().toISOString().slice(0, 10);
    const first = await open({ type: 'other', severity: 'P3', title: 'first of the day', opened_by: 'alice' });
    expect(first).toMatch(new RegExp(`^INC-${day}-\\d{2,}$`));
    const ids = await Promise.all(
      Array.from({ length: 5 }, (_, i) => open({ type: 'other', severity: 'P3', title: `burst ${i}` })),
    );
    expect(new Set([first, ...ids]).size).toBe(6);
    const rows = await h.sql<{ id: string; run_id: string | null }>(
      'SELECT id, run_id FROM incidents WHERE id = ANY($1)',
      [[first, ...ids]],
    );
    expect(rows).toHaveLength(6);
    // every row is bound to its workflow run once the workflow registers it
    await eventually(
      () =>
        h.sql<{ n: number }>('SELECT count(*)::int AS n FROM incidents WHERE id = ANY($1) AND run_id IS NOT NULL', [
          [first, ...ids],
        ]),
      (r) => r[0]?.n === 6,
      'registration',
    );
  });

  it('refuses bad input with 400 and missing credentials with 401, and names unknown incidents', async () => {
    const bad = await api('POST', '/incidents', { type: 'meteor', severity: 'P1', title: 'x' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toBe('invalid_request');
    const extra = await api('POST', '/incidents', { type: 'other', severity: 'P1', title: 'x', surprise: true });
    expect(extra.statusCode).toBe(400);
    const anonymous = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/incidents',
      payload: { type: 'other', severity: 'P1', title: 'x' },
    });
    expect(anonymous.statusCode).toBe(401);
    const unknown = await api('POST', '/incidents/INC-1999-01-01-01/ack', { by: 'alice' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error).toBe('incident_not_found');
  });

  it('steers an incident through ack, escalation, notes, mitigation and resolution; validators refuse nonsense', async () => {
    const id = await open({
      type: 'provider_outage',
      severity: 'P1',
      title: 'Twilio 503s',
      impact: 'SMS OTP delayed',
      affected: { providers: ['twilio'] },
    });
    let s = await eventually(
      () => state(id),
      (s) => s.escalations.some((e) => e.role === 'oncall'),
      'on-call paged',
    );
    expect(s.status).toBe('investigating');
    expect(s.tasks.map((t) => t.id)).toEqual(['provider-support']);

    const ack = await api('POST', `/incidents/${id}/ack`, { by: 'omar', note: 'looking at Twilio' });
    expect(ack.statusCode).toBe(200);
    expect(ack.json<IncidentState>().owner).toBe('omar');
    const again = await api('POST', `/incidents/${id}/ack`, { by: 'omar' });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toBe('already_acknowledged');

    const escalated = await api('POST', `/incidents/${id}/escalate`, { by: 'omar', reason: 'need more hands' });
    expect(escalated.json<IncidentState>().escalations.map((e) => e.role)).toEqual(['oncall', 'engineering_manager']);
    const twice = await api('POST', `/incidents/${id}/escalate`, {
      by: 'omar',
      reason: 'again',
      role: 'engineering_manager',
    });
    expect(twice.statusCode).toBe(409);
    expect(twice.json().error).toBe('nothing_to_escalate');

    expect(
      (await api('POST', `/incidents/${id}/notes`, { by: 'omar', text: 'status page says major outage' })).statusCode,
    ).toBe(200);
    const mitigated = await api('POST', `/incidents/${id}/mitigations`, {
      by: 'omar',
      description: 'SMS switched to Plivo',
    });
    expect(mitigated.json<IncidentState>().status).toBe('mitigating');
    expect(
      (await api('POST', `/incidents/${id}/root-cause`, { by: 'omar', text: 'Twilio regional outage' })).statusCode,
    ).toBe(200);

    expect((await api('POST', `/incidents/${id}/tasks/nope`, { by: 'omar', outcome: 'done' })).json().error).toBe(
      'unknown_task',
    );
    expect((await api('POST', `/incidents/${id}/checklist/nope`, { by: 'omar', passed: true })).json().error).toBe(
      'unknown_checklist_item',
    );
    expect(
      (await api('POST', `/incidents/${id}/checklist/sms_otp_generation`, { by: 'omar', passed: true })).json().error,
    ).toBe('automated_item');

    // closing needs a preventive action, the open task done, the manual items ticked
    const early = await api('POST', `/incidents/${id}/resolve`, { by: 'omar', resolution: 'Plivo carries SMS' });
    expect(early.statusCode).toBe(409);
    expect(early.json().error).toBe('preventive_action_required');
    expect(
      (
        await api('POST', `/incidents/${id}/preventive-actions`, {
          by: 'omar',
          description: 'Alert on Twilio status page changes',
          category: 'monitoring',
          owner: 'omar',
          due: '2030-01-31',
        })
      ).statusCode,
    ).toBe(200);
    const tasks = await api('POST', `/incidents/${id}/resolve`, { by: 'omar', resolution: 'Plivo carries SMS' });
    expect(tasks.json().error).toBe('open_tasks');
    expect(
      (await api('POST', `/incidents/${id}/tasks/provider-support`, { by: 'omar', outcome: 'done', note: 'ticket 42' }))
        .statusCode,
    ).toBe(200);
    const manual = await api('POST', `/incidents/${id}/resolve`, { by: 'omar', resolution: 'Plivo carries SMS' });
    expect(manual.json().error).toBe('checklist_incomplete');
    expect(manual.json().message).toContain('user_notifications');
    const noReason = await api('POST', `/incidents/${id}/resolve`, {
      by: 'omar',
      resolution: 'Plivo carries SMS',
      force: true,
    });
    expect(noReason.statusCode).toBe(400);

    const notYet = await api('GET', `/incidents/${id}/customer-notification`);
    expect(notYet.statusCode).toBe(409);

    const resolved = await api('POST', `/incidents/${id}/resolve`, {
      by: 'omar',
      resolution: 'SMS on Plivo until Twilio recovered; Twilio restored as primary',
      force: true,
      reason: 'synthetic checks run separately in this test',
      went_well: 'failover in minutes',
      to_improve: 'status page polling',
    });
    expect(resolved.statusCode).toBe(200);
    s = resolved.json<IncidentState>();
    expect(s.status).toBe('resolved');
    expect((await api('POST', `/incidents/${id}/notes`, { by: 'omar', text: 'late' })).statusCode).toBe(409);

    // the projection and the metrics follow
    const row = await eventually(
      () =>
        h.sql<{ status: string; owner: string; acknowledged_at: Date | null; report: string | null }>(
          'SELECT status, owner, acknowledged_at, report FROM incidents WHERE id = $1',
          [id],
        ),
      (r) => r[0]?.status === 'resolved' && r[0].report !== null,
      'resolved projection',
    );
    expect(row[0]?.owner).toBe('omar');
    expect(row[0]?.acknowledged_at).not.toBeNull();
    const metrics = await h.runtime.registry.metrics();
    expect(metrics).toMatch(/warden_incidents_started_total\{[^}]*type="provider_outage"[^}]*\} 1/);
    expect(metrics).toMatch(/warden_incident_time_to_acknowledge_seconds_count\{[^}]*severity="P1"[^}]*\} 1/);
    expect(metrics).toMatch(/warden_incident_time_to_resolve_seconds_count\{[^}]*severity="P1"[^}]*\} 1/);

    // the report's timeline is what happened, in order
    const report = await api('GET', `/incidents/${id}/report`);
    expect(report.headers['content-type']).toContain('text/markdown');
    const md = report.body;
    expect(md).toContain('# Incident Report: Twilio 503s');
    expect(md).toContain(`- **Incident ID**: ${id}`);
    expect(md).toContain('- **Severity**: P1');
    const order = [
      'Incident detected (user report)',
      'On-call engineer notified',
      'Incident confirmed, response initiated: looking at Twilio (omar)',
      'Escalated to Engineering Manager: need more hands (escalated by omar)',
      'status page says major outage (omar)',
      'Mitigation applied: SMS switched to Plivo (omar)',
      'Root cause identified: Twilio regional outage (omar)',
      'Incident resolved: SMS on Plivo until Twilio recovered',
      'Service restored, monitoring validation (not recorded)',
    ];
    const positions = order.map((text) => md.indexOf(text));
    expect(
      positions.every((p) => p > 0),
      `${order.filter((_, i) => positions[i]! < 0).join(' | ')}\n${md}`,
    ).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(md).toContain('1. Alert on Twilio status page changes (monitoring)');
    expect(md).toContain('synthetic checks run separately in this test');
    // every timeline line carries the time it happened (HH:MM of the entry)
    for (const entry of s.timeline.filter((e) => e.kind === 'mitigation' || e.kind === 'acknowledged')) {
      expect(md).toContain(`- ${entry.at.slice(11, 16)} - `);
    }

    const notice = await api('GET', `/incidents/${id}/customer-notification?affected_percent=12`);
    expect(notice.statusCode).toBe(200);
    expect(notice.body).toContain(`Subject: Service Incident Notification - ${s.resolvedAt!.slice(0, 10)}`);
    expect(notice.body).toContain(
      '- 12% of users experienced delays or failures during SMS OTP/Magic Link authentication',
    );
    expect(notice.body).toContain('- No user data was compromised');
    expect(notice.body).toContain('Twilio regional outage');
  });

  it('pages the contacts of WARDEN_CONTACTS_FILE by Slack mention and email', async () => {
    const id = await open({ type: 'other', severity: 'P2', title: 'contacts drill' });
    const s = await eventually(
      () => state(id),
      (s) => Boolean(s.slack) && s.escalations.length === 1,
      'on-call paged',
    );
    const calls = () => h.sandbox.state.slackCalls();
    const alert = calls().find((c) => c.ts === s.slack!.ts)!;
    expect(alert.text).toContain('Owner: <@U0PATPAGER>');
    expect(alert.text).toContain('War Room: https://meet.example.net/incident');
    await eventually(
      async () => calls(),
      (c) =>
        c.some((x) => x.thread_ts === s.slack!.ts && x.text?.startsWith(':pager: On-call notified: <@U0PATPAGER>')),
      'on-call mention',
    );
    const mail = await eventually(
      async () => h.sandbox.state.messages('pat@ops.example.net').filter((m) => m.subject?.includes(id)),
      (m) => m.length === 1,
      'on-call email',
    );
    expect(mail[0]!.subject).toBe(`[${id}] P2 incident: contacts drill`);
    expect(mail[0]!.body).toContain('Pat Pager,');
    expect(h.sandbox.state.messages('oncall@example.com').filter((m) => m.subject?.includes(id))).toHaveLength(0);
    await api('POST', `/incidents/${id}/escalate`, {
      by: 'pat',
      reason: 'need a decision',
      role: 'engineering_manager',
    });
    await eventually(
      async () => h.sandbox.state.messages('mo@ops.example.net'),
      (m) => m.some((x) => x.subject === `[${id}] P2 escalation: contacts drill`),
      'manager email',
    );
  });

  it('takes timeline entries and mitigations from a runbook through runbookProgressSignal', async () => {
    const id = await open({ type: 'other', severity: 'P1', title: 'runbook seam', affected: { users: ['alice'] } });
    const handle = h.runtime.temporal.client.workflow.getHandle(id);
    await handle.signal(runbookProgressSignal, {
      kind: 'step',
      step: 'isolate',
      message: 'revoked 2 active challenges of alice',
    });
    await handle.signal(runbookProgressSignal, { kind: 'mitigation', message: 'keys rotated' });
    await handle.signal(runbookProgressSignal, { kind: 'root_cause', message: 'debug logging of request bodies' });
    const s = await eventually(
      () => state(id),
      (s) => s.status === 'mitigating' && Boolean(s.rootCause),
      'runbook progress applied',
    );
    const entries = s.timeline.filter((e) => e.by === 'runbook').map((e) => [e.kind, e.message]);
    expect(entries).toEqual([
      ['runbook', 'isolate: revoked 2 active challenges of alice'],
      ['mitigation', 'keys rotated'],
      ['root_cause', 'debug logging of request bodies'],
    ]);
    // `other` has no runbook: the incident runs without a child, so only these entries are the runbook's
    expect(s.runbook).toBeUndefined();
  });

  it('lists incidents from Temporal visibility, filtered by type, severity and status', async () => {
    const a = await open({ type: 'abuse', severity: 'P2', title: 'credential stuffing' });
    const b = await open({ type: 'db_connectivity', severity: 'P0', title: 'pool exhausted' });
    const list = async (query: string) => {
      const res = await api('GET', `/incidents${query}`);
      if (res.statusCode !== 200) throw new Error(res.body);
      return res.json<{
        incidents: Array<{ id: string; type: string; severity: string; status: string; title: string }>;
      }>().incidents;
    };
    const abuse = await eventually(
      () => list('?type=abuse'),
      (l) => l.some((i) => i.id === a),
      'abuse incident listed',
    );
    expect(abuse.every((i) => i.type === 'abuse')).toBe(true);
    expect(abuse.find((i) => i.id === a)?.title).toBe('credential stuffing');
    const p0 = await eventually(
      () => list('?severity=P0&status=investigating'),
      (l) => l.some((i) => i.id === b),
      'P0 listed',
    );
    expect(p0.some((i) => i.id === a)).toBe(false);
    expect((await api('GET', '/incidents?status=closed')).statusCode).toBe(400);
  });
});
