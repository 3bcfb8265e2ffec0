/**
 * SMS pumping (src/workflows/ops/smsPumping.ts, src/delivery/prefixBlocks.ts): many codes sent to
 * one number prefix and never verified, while another prefix converts normally. The evaluation
 * blocks the bad prefix only and opens one abuse incident (not one per run); a further send to
 * the prefix is refused before any provider is called, after the route is switched to Plivo as
 * before, and answers like an unknown user's; the good prefix still delivers; an admin lifts the
 * block. Real worker, dev server, Postgres and the providers' SDKs into the sandbox.
 */
import { ScheduleNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryActivities } from '../../src/activities/delivery';
import { ensureSmsPumpingSchedule } from '../../src/delivery/pumpingSchedule';
import { DeliveryErrorType } from '../../src/shared/delivery';
import { alertWorkflowId } from '../../src/incidents/alertmanager';
import { smsPumpingScheduleId, type SmsPumpingResult } from '../../src/shared/smsPumping';
import { initiate, messages, post, secretFor, waitFor } from '../helpers/authClient';
import { deliveryOutcome, metric, publicState, raiseRateLimits, requestsFor, sendKey } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

const BAD = '155544';
const GOOD = '155533';
const BLOCKS = '/admin/api/v1/delivery/sms/prefix-blocks';
const INCIDENT = alertWorkflowId(`warden/sms-pumping/${BAD}`);

const phone = (prefix: string, n: number) => `+${prefix}${String(n).padStart(5, '0')}`;

describe('SMS pumping', () => {
  let h: Harness;
  let runs = 0;

  beforeAll(async () => {
    h = await startHarness({
      env: {
        // 8 messages in the hour make a prefix's conversion count; an open challenge counts as
        // unverified at once, so the test need not wait out a grace
        WARDEN_SMS_PUMPING_WINDOWS: '1h:8',
        WARDEN_SMS_PUMPING_GRACE: '0s',
      },
    });
    await raiseRateLimits(h);
    for (let n = 1; n <= 12; n++) await user(`pump-bad-${n}`, phone(BAD, n));
    for (let n = 1; n <= 10; n++) await user(`pump-good-${n}`, phone(GOOD, n));
  });
  afterAll(async () => h?.close());

  async function user(sub: string, number: string) {
    const res = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/users',
      headers: h.adminHeaders,
      payload: { sub, phone: number },
    });
    expect(res.statusCode, res.body).toBe(201);
  }

  const evaluate = async (): Promise<SmsPumpingResult> =>
    h.runtime.temporal.client.workflow.execute('smsPumpingWorkflow', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `sms-pumping-test-${++runs}`,
      args: [],
    });

  /** Starts a sign-in and waits until its send has an outcome; returns the challenge id. */
  async function signIn(sub: string): Promise<string> {
    const res = await initiate(h, 'otp', sub);
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json<{ challenge_id: string }>().challenge_id;
    await deliveryOutcome(h, id);
    return id;
  }

  const outbox = async (prefix: string) => (await messages(h)).filter((m) => m.to.startsWith(`+${prefix}`));
  const failureOf = async (challengeId: string) =>
    waitFor('the failure row', async () => {
      const rows = await h.sql<{ error_code: string; error_class: string; provider: string }>(
        'SELECT error_code, error_class, provider FROM delivery_failures WHERE challenge_id = $1',
        [challengeId],
      );
      return rows[0];
    });
  const incidentRows = () =>
    h.sql<{ id: string; type: string; severity: string }>(
      'SELECT id, type, severity FROM incidents WHERE workflow_id = $1',
      [INCIDENT],
    );

  it(
    'blocks the prefix that is sent codes nobody verifies, and only it, opening one abuse incident',
    { timeout: 180_000 },
    async () => {
      for (let n = 1; n <= 10; n++) await signIn(`pump-bad-${n}`);
      for (let n = 1; n <= 8; n++) {
        const id = await signIn(`pump-good-${n}`);
        // 6 of 8 verified: 75%, as people sign in
        if (n > 6) continue;
        const verified = await post(h, '/otp/verify', { challenge_id: id, otp: await secretFor(h, id) });
        expect(verified.statusCode, verified.body).toBe(200);
      }
      expect(await outbox(BAD)).toHaveLength(10);
      expect(await outbox(GOOD)).toHaveLength(8);

      const first = await evaluate();
      expect(first).toMatchObject({ status: 'done', blocked: [BAD], incidents: [INCIDENT] });
      const blocks = await h.sql<{ prefix: string; messages: number; verified: number; settled: number }>(
        'SELECT prefix, messages, verified, settled FROM sms_prefix_blocks WHERE until > now()',
      );
      expect(blocks).toEqual([{ prefix: BAD, messages: 10, verified: 0, settled: 10 }]);

      const [incident] = await waitFor('the incident to claim its INC id', async () => {
        const rows = await incidentRows();
        return rows.length > 0 ? rows : undefined;
      });
      expect(incident).toMatchObject({ id: expect.stringMatching(/^INC-/), type: 'abuse', severity: 'P2' });
      const audit = await h.sql<{ details: Record<string, unknown> }>(
        "SELECT details FROM audit_events WHERE event_type = 'identity.sms_prefix.blocked'",
      );
      expect(audit).toEqual([{ details: expect.objectContaining({ prefix: BAD, messages: 10, verified: 0 }) }]);

      // the next runs find the prefix blocked: no second block, no second incident
      for (let i = 0; i < 2; i++)
        expect(await evaluate()).toMatchObject({ status: 'done', blocked: [], incidents: [] });
      expect(await incidentRows()).toHaveLength(1);
      const run = await h.runtime.temporal.client.workflow.getHandle(INCIDENT).describe();
      expect(run.status.name).toBe('RUNNING');

      // conversion per country and the block reach the metrics
      expect(await metric(h, 'warden_sms_prefix_blocks_active')).toBe(1);
      expect(await metric(h, 'warden_sms_country_messages', { country: '1' })).toBe(18);
      expect(await metric(h, 'warden_sms_country_conversion_ratio', { country: '1' })).toBeCloseTo(6 / 18, 5);
    },
  );

  it(
    'refuses a further send to the prefix before any provider is called, on Twilio and after a switch to Plivo',
    { timeout: 120_000 },
    async () => {
      const refused = await metric(h, 'warden_budget_refusals_total', { reason: 'prefix_blocked' });
      const sent = (await outbox(BAD)).length;

      const known = await initiate(h, 'otp', 'pump-bad-11');
      const unknown = await initiate(h, 'otp', 'pump-nobody-4711');
      expect(known.statusCode).toBe(202);
      expect(unknown.statusCode).toBe(202);
      expect(Object.keys(known.json()).sort()).toEqual(Object.keys(unknown.json()).sort());
      const id = known.json<{ challenge_id: string }>().challenge_id;
      expect(await failureOf(id)).toEqual({
        error_code: 'sms_prefix_blocked',
        error_class: 'permanent',
        provider: 'twilio',
      });
      expect(await requestsFor(h, sendKey(id))).toEqual([]);
      // the challenge's own browser reads what an unknown user's reads
      await deliveryOutcome(h, id);
      expect((await publicState(h, id)).body.status).toBe('delivered');

      const switched = await h.admin.inject({
        method: 'POST',
        url: '/admin/api/v1/delivery/routes/sms/switch',
        headers: h.adminHeaders,
        payload: { to: 'backup', reason: 'test: the backup must not get around a prefix block' },
      });
      expect(switched.statusCode, switched.body).toBe(200);
      const onPlivo = await signIn('pump-bad-12');
      expect(await failureOf(onPlivo)).toEqual({
        error_code: 'sms_prefix_blocked',
        error_class: 'permanent',
        provider: 'plivo',
      });
      expect(await requestsFor(h, sendKey(onPlivo))).toEqual([]);
      expect(await outbox(BAD)).toHaveLength(sent);
      expect(await metric(h, 'warden_budget_refusals_total', { reason: 'prefix_blocked' })).toBe(refused + 2);

      // the send activity as the workflow calls it after a failover from Twilio, and for the
      // backup's re-send of a send whose receipt never came: refused on Plivo all the same
      const activities = createDeliveryActivities(h.runtime);
      const env = new MockActivityEnvironment();
      const send = {
        challengeId: id,
        sendNumber: 1,
        provider: 'plivo' as const,
        maxCalls: 3,
        primary: 'twilio' as const,
      };
      // one at a time: a second run started alongside would reject before it is awaited
      const calls = [
        () => env.run(activities.sendDelivery, { ...send, failoverFrom: 'twilio' as const }),
        () => env.run(activities.resendOnBackup, { ...send, failoverFrom: 'twilio' as const }),
      ];
      for (const call of calls) {
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ApplicationFailure);
        expect(err).toMatchObject({ type: DeliveryErrorType.permanent, nonRetryable: true });
        expect((err as ApplicationFailure).details?.[0]).toMatchObject({
          provider: 'plivo',
          errorCode: 'sms_prefix_blocked',
        });
      }
      expect(await requestsFor(h, sendKey(id))).toEqual([]);
      expect(await outbox(BAD)).toHaveLength(sent);
      expect(await metric(h, 'warden_budget_refusals_total', { reason: 'prefix_blocked' })).toBe(refused + 4);

      // the good prefix still delivers, through Plivo now
      const good = await signIn('pump-good-9');
      expect(await secretFor(h, good)).toMatch(/^\d{6}$/);
      const delivered = (await outbox(GOOD)).filter((m) => m.idempotency_key === sendKey(good));
      expect(delivered.map((m) => m.provider)).toEqual(['plivo']);
    },
  );

  it(
    'lists and lifts a block through the admin API (admin only, audited); sends go out again',
    { timeout: 120_000 },
    async () => {
      const responder = await operatorHeaders(h, 'pump-responder', 'responder');
      const admin = await operatorHeaders(h, 'pump-admin', 'admin');
      expect((await h.admin.inject({ method: 'GET', url: BLOCKS, headers: responder })).statusCode).toBe(403);
      const listed = await h.admin.inject({ method: 'GET', url: BLOCKS, headers: admin });
      expect(listed.statusCode, listed.body).toBe(200);
      const [incident] = await incidentRows();
      expect(listed.json().blocks).toEqual([
        expect.objectContaining({
          prefix: BAD,
          active: true,
          created_by: 'sms-pumping',
          incident_id: incident!.id,
          incident_workflow_id: INCIDENT,
        }),
      ]);

      const lift = (headers: { authorization: string }, prefix = BAD) =>
        h.admin.inject({ method: 'DELETE', url: `${BLOCKS}/${prefix}`, headers });
      expect((await lift(responder)).statusCode).toBe(403);
      expect((await lift(admin, '+155544')).json()).toMatchObject({ error: 'invalid_request' });
      expect((await lift(admin, '1234567890123456')).statusCode).toBe(400);
      const badQuery = await h.admin.inject({ method: 'GET', url: `${BLOCKS}?all=maybe`, headers: admin });
      expect(badQuery.json()).toMatchObject({ error: 'invalid_request' });
      expect((await lift(admin, GOOD)).json()).toMatchObject({ error: 'not_found' });
      const lifted = await lift(admin);
      expect(lifted.statusCode, lifted.body).toBe(200);
      expect(lifted.json().block).toMatchObject({ prefix: BAD, active: false, lifted_by: 'pump-admin' });
      expect((await lift(admin)).statusCode).toBe(404);
      expect((await h.admin.inject({ method: 'GET', url: BLOCKS, headers: admin })).json().blocks).toEqual([]);
      const all = await h.admin.inject({ method: 'GET', url: `${BLOCKS}?all=true`, headers: admin });
      expect(all.json().blocks).toEqual([expect.objectContaining({ prefix: BAD, active: false })]);
      const audit = await h.sql<{ incident_id: string | null; details: Record<string, unknown> }>(
        "SELECT incident_id, details FROM audit_events WHERE event_type = 'identity.sms_prefix.lifted'",
      );
      expect(audit).toEqual([
        { incident_id: incident!.id, details: { prefix: BAD, generation: 1, actor: 'pump-admin' } },
      ]);

      const sent = (await outbox(BAD)).length;
      const after = await signIn('pump-bad-1');
      expect(await secretFor(h, after)).toMatch(/^\d{6}$/);
      expect(await outbox(BAD)).toHaveLength(sent + 1);
      // the messages behind the lifted block do not block the prefix again
      expect(await evaluate()).toMatchObject({ status: 'done', blocked: [] });
      // the gauges read Postgres at most once a second: a scrape a moment ago may still answer
      await waitFor('no block in the metrics', async () =>
        (await metric(h, 'warden_sms_prefix_blocks_active')) === 0 ? true : undefined,
      );
    },
  );

  it('runs on a schedule every worker ensures, which `off` removes', async () => {
    const handle = h.runtime.temporal.client.schedule.getHandle(smsPumpingScheduleId(h.config.temporal.taskQueue));
    try {
      expect(await ensureSmsPumpingSchedule(h.runtime)).toBe('created');
      expect(await ensureSmsPumpingSchedule(h.runtime)).toBe('updated');
      const described = await handle.describe();
      expect(described.action).toMatchObject({
        workflowType: 'smsPumpingWorkflow',
        taskQueue: h.config.temporal.taskQueue,
      });
      expect(described.spec.intervals).toMatchObject([{ every: 60_000 }]);
      const off = { ...h.config, smsPumping: { ...h.config.smsPumping, intervalSeconds: null } };
      expect(await ensureSmsPumpingSchedule({ ...h.runtime, config: off })).toBe('off');
      await expect(handle.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
      expect(await ensureSmsPumpingSchedule({ ...h.runtime, config: off })).toBe('off');
    } finally {
      await handle.delete().catch(() => {});
    }
  });
});
