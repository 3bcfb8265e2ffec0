/**
 * Every escalation step of the escalation paths and the GDPR 72-hour deadline, on the time-skipping
 * test server with the real activities: Slack posts and emails land in the sandbox, the
 * projection in Postgres. Time only moves when a test sleeps; each step is awaited until its
 * effects are visible before time moves again.
 */
import { WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIncident } from '../../src/incidents/client';
import { ROLE_TITLES } from '../../src/shared/escalation';
import {
  type NotifiedRole,
  acknowledgeUpdate,
  addPreventiveActionUpdate,
  resolveUpdate,
  changeSeverityUpdate,
  completeTaskUpdate,
  incidentStateQuery,
  type IncidentInput,
  type IncidentState,
} from '../../src/shared/incidents';
import { startHarness, type Harness } from '../helpers/harness';

describe('incident escalation timers (time-skipping server)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ timeSkipping: true });
  });
  afterAll(async () => h?.close());

  const client = () => h.runtime.temporal.client;
  const open = async (input: Partial<IncidentInput> & Pick<IncidentInput, 'type' | 'severity'>) => {
    const { id } = await openIncident(
      { client: client(), db: h.runtime.db, taskQueue: h.config.temporal.taskQueue },
      { title: `${input.severity} ${input.type} drill`, source: 'api', openedBy: 'alice', ...input },
      new Date(await h.testEnv!.currentTimeMs()),
    );
    return { id, handle: client().workflow.getHandle(id) };
  };
  const state = (id: string) => client().workflow.getHandle(id).query(incidentStateQuery);

  async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, what: string): Promise<T> {
    const deadline = Date.now() + 20_000;
    let last: T = await probe();
    while (!accept(last)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 100));
      last = await probe();
    }
    return last;
  }

  const roles = (s: IncidentState) => s.escalations.map((e) => e.role);
  /** Waits until the incident has exactly these roles engaged and every page has gone out. */
  async function engaged(id: string, expected: string[]): Promise<IncidentState> {
    await eventually(
      () => state(id),
      (s) => roles(s).join() === expected.join() && Boolean(s.slack),
      `roles ${expected.join(', ')}`,
    );
    for (const role of expected) {
      const page = role === 'oncall' ? 'On-call notified' : `Escalated to ${ROLE_TITLES[role as NotifiedRole]}`;
      await eventually(
        async () => slackThread(await state(id)),
        (texts) => texts.some((t) => t.includes(page)),
        `Slack page of ${role}`,
      );
    }
    return state(id);
  }
  const slackThread = (s: IncidentState) =>
    h.sandbox.state
      .slackCalls()
      .filter((c) => c.thread_ts === s.slack?.ts)
      .map((c) => c.text ?? '');
  const emailsTo = (address: string, id: string) =>
    h.sandbox.state.messages(address).filter((m) => m.subject?.includes(id));
  const skip = (minutes: number) => h.testEnv!.sleep(minutes * 60_000);

  it('P0 security incident, never acknowledged: on-call, security lead at 15 min, manager, VP at 4 h; Slack and email each time', async () => {
    // opened by an admin: its runbook's P0 containment goes ahead without waiting for anyone
    const { id, handle } = await open({ type: 'compromised_token', severity: 'P0', openedByRole: 'admin' });
    let s = await engaged(id, ['oncall']);
    // the incident alert, with its buttons, in the channel; on-call paged in its thread and by email
    const alert = h.sandbox.state.slackCalls().find((c) => c.ts === s.slack?.ts && c.method === 'chat.postMessage');
    expect(alert?.text).toContain('🚨 INCIDENT ALERT - P0');
    expect(JSON.stringify(alert?.blocks)).toContain('incident_acknowledge');
    await eventually(
      async () => emailsTo('oncall@example.com', id),
      (m) => m.length === 1,
      'on-call email',
    );

    await skip(16);
    s = await engaged(id, ['oncall', 'security_lead']);
    expect(s.timeline.map((e) => e.kind)).toContain('sla_breached');
    await eventually(
      async () => emailsTo('security-lead@example.com', id),
      (m) => m.length === 1,
      'security lead email',
    );

    await skip(15); // 31 min: second SLA period without acknowledgement
    s = await engaged(id, ['oncall', 'security_lead', 'engineering_manager']);
    await eventually(
      async () => emailsTo('eng-manager@example.com', id),
      (m) => m.length === 1,
      'manager email',
    );

    await skip(60); // 1 h 31 min: the P0 > 1 h rule finds the manager already engaged
    expect(roles(await state(id))).toEqual(['oncall', 'security_lead', 'engineering_manager']);

    await skip(150); // 4 h 01 min
    s = await engaged(id, ['oncall', 'security_lead', 'engineering_manager', 'vp_engineering']);
    await eventually(
      async () => emailsTo('vp-eng@example.com', id),
      (m) => m.length === 1,
      'VP email',
    );
    expect(s.escalations.find((e) => e.role === 'vp_engineering')?.reason).toContain('more than 4 hours');
    // nobody acknowledged, but the P0 compromised-token incident started its runbook on its own
    // (an admin's P0 containment needs no approval), whose mitigation moved it on: the pages went out anyway
    expect((await state(id)).runbook?.workflowId).toBe(`${id}-runbook`);
    const row = await eventually(
      () => h.sql<{ status: string; severity: string }>('SELECT status, severity FROM incidents WHERE id = $1', [id]),
      (rows) => rows[0]?.status === 'mitigating',
      'projection status mitigating',
    );
    expect(row[0]).toEqual({ status: 'mitigating', severity: 'P0' });
    await close(handle);
  });

  it('P1 database incident: the DBA at 1 h; acknowledging stops the SLA chain', async () => {
    const { id, handle } = await open({ type: 'db_connectivity', severity: 'P1' });
    await engaged(id, ['oncall']);
    await skip(61);
    await engaged(id, ['oncall', 'dba']);
    await eventually(
      async () => emailsTo('dba@example.com', id),
      (m) => m.length === 1,
      'DBA email',
    );
    await send(handle, acknowledgeUpdate, { by: 'dana' });
    await skip(180); // past the 2 h step that would have brought the manager
    const s = await state(id);
    expect(roles(s)).toEqual(['oncall', 'dba']);
    expect(s.owner).toBe('dana');
    await close(handle);
  });

  it('P0 acknowledged at once still brings the manager after 1 h and the VP after 4 h', async () => {
    const { id, handle } = await open({ type: 'other', severity: 'P0' });
    await engaged(id, ['oncall']);
    await send(handle, acknowledgeUpdate, { by: 'omar' });
    await skip(61);
    let s = await engaged(id, ['oncall', 'engineering_manager']);
    expect(s.escalations[1]?.reason).toBe('P0 incident open for more than 1 hour');
    expect(s.timeline.some((e) => e.kind === 'sla_breached')).toBe(false);
    await skip(180);
    s = await engaged(id, ['oncall', 'engineering_manager', 'vp_engineering']);
    expect(s.escalations[2]?.reason).toBe('P0 incident open for more than 4 hours');
    await close(handle);
  });

  it('raising P3 to P0 after 30 min escalates at once on the P0 clock', async () => {
    const { id, handle } = await open({ type: 'provider_outage', severity: 'P3', affected: { providers: ['twilio'] } });
    await engaged(id, ['oncall']);
    await skip(30);
    expect(roles(await state(id))).toEqual(['oncall']);
    await send(handle, changeSeverityUpdate, { by: 'alice', severity: 'P0', reason: 'all SMS failing' });
    // P0: acknowledge within 15 min, long past; nobody but the manager applies to an outage
    const s = await engaged(id, ['oncall', 'engineering_manager']);
    expect(s.timeline.some((e) => e.kind === 'sla_breached')).toBe(true);
    await close(handle);
  });

  it('a data breach notifies VP, legal and the CISO at once and runs the GDPR 72-hour deadline with reminders', async () => {
    const { id, handle } = await open({ type: 'compromised_token', severity: 'P1', dataBreach: true });
    let s = await engaged(id, ['oncall', 'vp_engineering', 'legal', 'ciso']);
    await eventually(
      async () => emailsTo('legal@example.com', id),
      (m) => m.length === 1,
      'legal email',
    );
    await eventually(
      async () => emailsTo('ciso@example.com', id),
      (m) => m.length === 1,
      'CISO email',
    );
    const gdpr = s.tasks.find((t) => t.id === 'gdpr-notification')!;
    expect(new Date(gdpr.dueAt).getTime() - new Date(gdpr.createdAt).getTime()).toBe(72 * 3600_000);
    await send(handle, acknowledgeUpdate, { by: 'sam' });

    const reminders = async (n: number) =>
      eventually(
        () => state(id),
        (s) => s.timeline.filter((e) => e.kind === 'task_reminder').length === n,
        `${n} GDPR reminder(s)`,
      );
    await skip(1441);
    await reminders(1);
    await skip(1440);
    await reminders(2);
    await skip(1080);
    await reminders(3);
    await skip(300);
    s = await reminders(4);
    expect(s.tasks[0]?.status).toBe('open');
    await skip(60); // 72 h 01 min
    s = await eventually(
      () => state(id),
      (s) => s.tasks.some((t) => t.status === 'overdue'),
      'GDPR deadline overdue',
    );
    expect(s.timeline.filter((e) => e.kind === 'task_overdue')[0]?.message).toContain(
      'Regulatory notification (GDPR 72 hours)',
    );
    // reminders and the overdue notice reach legal and the CISO by email too (1 page + 4 + 1)
    await eventually(
      async () => emailsTo('legal@example.com', id),
      (m) => m.length === 6,
      'legal reminder emails',
    );
    await eventually(
      async () => slackThread(await state(id)),
      (texts) => texts.some((t) => t.startsWith(':warning: Overdue')),
      'overdue notice in Slack',
    );

    await send(handle, completeTaskUpdate, {
      by: 'legal',
      taskId: 'gdpr-notification',
      outcome: 'done',
      note: 'regulator notified',
    });
    s = await eventually(
      () => state(id),
      (s) => s.tasks[0]?.status === 'done',
      'GDPR task done',
    );
    expect(s.tasks[0]?.completedBy).toBe('legal');
    await close(handle);
  });

  it('external escalation: provider support within 30 min, ISP/CDN within 15 min for a DDoS, as tasks with deadlines', async () => {
    const outage = await open({ type: 'provider_outage', severity: 'P1', affected: { providers: ['twilio'] } });
    const ddos = await open({ type: 'abuse', severity: 'P0', ddos: true });
    let a = await state(outage.id);
    let b = await state(ddos.id);
    expect(
      a.tasks.map((t) => [t.id, (new Date(t.dueAt).getTime() - new Date(t.createdAt).getTime()) / 60_000]),
    ).toEqual([['provider-support', 30]]);
    expect(
      b.tasks.map((t) => [t.id, (new Date(t.dueAt).getTime() - new Date(t.createdAt).getTime()) / 60_000]),
    ).toEqual([['isp-cdn', 15]]);
    await eventually(
      async () => slackThread(await state(outage.id)),
      (texts) => texts.some((t) => t.includes('Twilio support')),
      'provider support task in Slack',
    );

    await skip(16);
    b = await eventually(
      () => state(ddos.id),
      (s) => s.tasks[0]?.status === 'overdue',
      'ISP/CDN task overdue',
    );
    await eventually(
      () => state(outage.id),
      (s) => s.tasks[0]?.remindersSent === 0 && s.tasks[0]?.status === 'open',
      'provider task still open',
    );
    await skip(5);
    await eventually(
      () => state(outage.id),
      (s) => s.tasks[0]?.remindersSent === 1,
      'provider support reminder',
    );
    await send(handle(outage.id), completeTaskUpdate, {
      by: 'omar',
      taskId: 'provider-support',
      outcome: 'done',
      note: 'ticket 123, ETA 1h',
    });
    await skip(20);
    a = await state(outage.id);
    expect(a.tasks[0]?.status).toBe('done');
    expect(a.timeline.some((e) => e.kind === 'task_overdue')).toBe(false);
    expect(b.timeline.some((e) => e.kind === 'task_overdue')).toBe(true);
    await close(outage.handle);
    await close(ddos.handle);
  });

  const handle = (id: string) => client().workflow.getHandle(id);

  /**
   * Sends an update and waits until the workflow has accepted it. The time-skipping server is
   * slow to hand back an update's result once its clock runs hours ahead of real time, so the
   * tests read the outcome from the state instead.
   */
  /**
   * Closes an incident the way a responder would (a preventive action, then a forced
   * resolution) and waits for the workflow to finish. Terminating instead would strand the
   * activities in flight, and the test server does not skip time while an activity is open.
   */
  async function close(target: WorkflowHandle): Promise<void> {
    await send(target, addPreventiveActionUpdate, { by: 'test', description: 'drill follow-up', category: 'process' });
    await send(target, resolveUpdate, { by: 'test', resolution: 'drill over', force: true, reason: 'test clean-up' });
    await target.result();
  }

  async function send<Arg>(
    target: WorkflowHandle,
    def: UpdateDefinition<IncidentState, [Arg]>,
    arg: Arg,
  ): Promise<void> {
    await target.startUpdate(def, { args: [arg], waitForStage: WorkflowUpdateStage.ACCEPTED });
  }
});
