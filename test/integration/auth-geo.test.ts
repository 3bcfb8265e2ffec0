/**
 * Geo permissions for SMS (src/delivery/countries.ts): with the default list (calling code 1), a
 * code is never sent to another country. The refusal happens in the send activity, on every
 * provider call, against the number the user has at that moment; the caller's answer is the one
 * an unknown user gets, so it tells nothing about the account.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryActivities } from '../../src/activities/delivery';
import { DeliveryErrorType } from '../../src/shared/delivery';
import {
  challengeRow,
  deviceOf,
  initiate,
  messages,
  post,
  putSettings,
  secretFor,
  waitFor,
} from '../helpers/authClient';
import { requestsFor, sendKey } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const REFUSED = 'destination_country_not_allowed';

describe('SMS countries', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  const users = (method: 'POST' | 'PATCH', url: string, payload: Record<string, unknown>) =>
    h.admin.inject({ method, url: `/admin/api/v1/users${url}`, headers: h.adminHeaders, payload });
  const failureOf = async (challengeId: string) =>
    waitFor('the failure row', async () => {
      const rows = await h.sql<{ error_code: string; error_class: string; send_number: number }>(
        'SELECT error_code, error_class, send_number FROM delivery_failures WHERE challenge_id = $1',
        [challengeId],
      );
      return rows[0];
    });
  const publicStatus = async (challengeId: string) => {
    const res = await h.public.inject({
      url: `/browser/api/v1/identity/auth/challenges/${challengeId}`,
      headers: { cookie: `warden_device=${deviceOf.get(challengeId)}` },
    });
    return res.json<{ status: string }>().status;
  };
  const refusals = async () =>
    Number(
      /warden_budget_refusals_total\{[^}]*reason="country_not_allowed"[^}]*\} (\d+)/.exec(
        await h.runtime.registry.metrics(),
      )?.[1] ?? 0,
    );

  it('refuses a number in a country not allowed before any provider is called, and answers like for an unknown user', async () => {
    const phone = '+447700900555';
    expect((await users('POST', '', { sub: 'geo-gb', phone })).statusCode).toBe(201);
    const real = await initiate(h, 'otp', 'geo-gb');
    const unknown = await initiate(h, 'otp', 'geo-nobody-4711');
    expect(real.statusCode).toBe(202);
    expect(unknown.statusCode).toBe(202);
    expect(Object.keys(real.json()).sort()).toEqual(Object.keys(unknown.json()).sort());
    const id = real.json<{ challenge_id: string }>().challenge_id;
    const decoy = unknown.json<{ challenge_id: string }>().challenge_id;

    expect(await failureOf(id)).toEqual({ error_code: REFUSED, error_class: 'permanent', send_number: 1 });
    expect(await challengeRow(h, id)).toMatchObject({ delivery_outcome: 'failed', delivery_status: 'failed' });
    // nothing reached a provider, let alone the phone
    expect(await requestsFor(h, sendKey(id))).toEqual([]);
    expect(await messages(h, phone)).toEqual([]);
    // the challenge's own browser reads what it reads for the decoy
    await waitFor('the decoy outcome', async () =>
      (await challengeRow(h, decoy))?.delivery_outcome ? true : undefined,
    );
    expect(await publicStatus(id)).toBe('delivered');
    expect(await publicStatus(decoy)).toBe('delivered');
    const audit = await h.sql<{ outcome: string; details: Record<string, unknown> }>(
      `SELECT outcome, details FROM audit_events WHERE event_type = 'identity.delivery.failed' AND challenge_id = $1`,
      [id],
    );
    expect(audit).toMatchObject([{ outcome: 'permanent', details: { error_code: REFUSED, channel: 'sms' } }]);
    expect(JSON.stringify(audit)).not.toContain('7700900555');
    expect(await refusals()).toBeGreaterThanOrEqual(1);
  });

  it('refuses in the send activity: a phone changed after the challenge began, a resend, a failover, a backup re-send', async () => {
    await putSettings(h, { resend_cooldown_seconds: 0 });
    expect((await users('POST', '', { sub: 'geo-move', phone: '+15555550961' })).statusCode).toBe(201);
    const started = await initiate(h, 'otp', 'geo-move');
    const id = started.json<{ challenge_id: string }>().challenge_id;
    await secretFor(h, id);
    expect(await messages(h, '+15555550961')).toHaveLength(1);

    const moved = '+447700900556';
    expect((await users('PATCH', '/geo-move', { phone: moved })).statusCode).toBe(200);
    const before = await refusals();
    const resent = await post(h, '/otp/resend', { challenge_id: id });
    expect(resent.statusCode).toBe(202);
    expect(await failureOf(id)).toEqual({ error_code: REFUSED, error_class: 'permanent', send_number: 2 });
    expect(await requestsFor(h, sendKey(id, 2))).toEqual([]);

    // the activity itself, as the workflow calls it: the backup provider after a failover, and
    // the backup's re-send of a send whose receipt never came
    const activities = createDeliveryActivities(h.runtime);
    const env = new MockActivityEnvironment();
    const refusal = (run: Promise<unknown>) =>
      run.then(
        () => undefined,
        (e: unknown) => e,
      );
    const failover = await refusal(
      env.run(activities.sendDelivery, {
        challengeId: id,
        sendNumber: 2,
        provider: 'plivo' as const,
        maxCalls: 3,
        primary: 'twilio' as const,
        failoverFrom: 'twilio' as const,
      }),
    );
    const receipt = await refusal(
      env.run(activities.resendOnBackup, {
        challengeId: id,
        sendNumber: 1,
        provider: 'plivo' as const,
        maxCalls: 3,
        primary: 'twilio' as const,
        failoverFrom: 'twilio' as const,
      }),
    );
    for (const err of [failover, receipt]) {
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: DeliveryErrorType.permanent, nonRetryable: true });
      expect((err as ApplicationFailure).details?.[0]).toMatchObject({ provider: 'plivo', errorCode: REFUSED });
    }
    expect(await requestsFor(h, sendKey(id, 1))).toHaveLength(1);
    expect(await requestsFor(h, sendKey(id, 2))).toEqual([]);
    expect(await messages(h, moved)).toEqual([]);
    expect(await refusals()).toBe(before + 3);
  });
});
