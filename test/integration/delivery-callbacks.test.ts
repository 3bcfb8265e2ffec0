/**
 * Provider status callbacks over real HTTP: the sandbox calls Warden's public port the way the
 * providers do (Twilio and Plivo signed status callbacks, SendGrid's ECDSA-signed Event Webhook,
 * SES events through an SNS subscription with a secret path token and an RSA signature), and
 * forged calls are refused without changing anything.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/process';
import { twilioSignature } from '../../src/sandbox/callbacks';
import { initiate, waitFor } from '../helpers/authClient';
import {
  deliveryOutcome,
  metric,
  publicState,
  raiseRateLimits,
  resetDelivery,
  sendKey,
  setFault,
} from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('delivery status callbacks', () => {
  let h: Harness;
  let base: string;
  const sendgridKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const snsKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const snsToken = randomBytes(16).toString('hex');

  beforeAll(async () => {
    const port = await freePort();
    h = await startHarness({
      listen: true,
      env: {
        WARDEN_PUBLIC_PORT: String(port),
        SENDGRID_WEBHOOK_PUBLIC_KEY: sendgridKeys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        SES_SNS_TOKEN: snsToken,
        SES_SNS_SIGNING_CERT: snsKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      },
    });
    base = h.servers!.urls.public;
    expect(h.config.delivery.callbackBaseUrl).toBe(`http://127.0.0.1:${port}`);
    await raiseRateLimits(h);
    for (const [provider, url, key] of [
      ['sendgrid', `${base}/callbacks/v1/sendgrid/events`, sendgridKeys.privateKey],
      ['ses', `${base}/callbacks/v1/ses/${snsToken}`, snsKeys.privateKey],
    ] as const) {
      const res = await fetch(`${h.sandbox.url}/sandbox/webhooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ provider, url, private_key: key.export({ type: 'pkcs8', format: 'pem' }).toString() }),
      });
      expect(res.status).toBe(200);
    }
  });
  afterAll(async () => h?.close());
  afterEach(async () => resetDelivery(h));

  const ledger = async (challengeId: string) =>
    (
      await h.sql<{ provider: string; report: string | null; provider_message_id: string }>(
        'SELECT provider, report, provider_message_id FROM delivery_attempts WHERE challenge_id = $1',
        [challengeId],
      )
    )[0];
  const reported = (challengeId: string) =>
    waitFor(`a delivery report for ${challengeId}`, async () => {
      const row = await ledger(challengeId);
      return row?.report ? row : undefined;
    });
  const switchTo = async (channel: string, to: 'backup' | 'primary') => {
    const res = await h.admin.inject({
      method: 'POST',
      url: `/admin/api/v1/delivery/routes/${channel}/switch`,
      headers: h.adminHeaders,
      payload: { to },
    });
    expect(res.statusCode).toBe(200);
  };

  it.each([
    ['twilio', 'otp', 'primary'],
    ['plivo', 'otp', 'backup'],
    ['sendgrid', 'magic-link', 'primary'],
    ['ses', 'magic-link', 'backup'],
  ] as const)(
    'accepts the signed "delivered" report of %s and marks the challenge delivered',
    async (provider, method, route) => {
      if (route === 'backup') await switchTo(method === 'otp' ? 'sms' : 'email', 'backup');
      const { challenge_id } = (await initiate(h, method, 'test-user')).json<{ challenge_id: string }>();
      const row = await reported(challenge_id);
      expect(row).toMatchObject({ provider, report: provider === 'ses' ? 'Delivery' : 'delivered' });
      const [challenge] = await h.sql(
        'SELECT status, delivery_status, delivery_report FROM auth_challenges WHERE id = $1',
        [challenge_id],
      );
      // a report is about delivery: the lifecycle stays the workflow's
      expect(challenge).toEqual({ status: 'open', delivery_status: 'delivered', delivery_report: 'delivered' });
      // counted once the callback has also told the challenge's workflow (after the commit)
      await waitFor('the callback counted', async () =>
        (await metric(h, 'warden_delivery_callbacks_total', { provider, outcome: 'delivered' })) >= 1
          ? true
          : undefined,
      );
    },
  );

  it('turns a carrier failure reported after acceptance into a failed, resendable delivery', async () => {
    await setFault(h, { provider: 'twilio', mode: 'undelivered', count: 1 });
    const { challenge_id } = (await initiate(h, 'otp', 'test-user-2')).json<{ challenge_id: string }>();
    await waitFor('the undelivered report', async () =>
      (await ledger(challenge_id))?.report === 'undelivered' ? true : undefined,
    );
    const [challenge] = await h.sql(
      'SELECT status, delivery_status, delivery_outcome, delivery_error_class, delivery_report FROM auth_challenges WHERE id = $1',
      [challenge_id],
    );
    expect(challenge).toEqual({
      status: 'open',
      delivery_status: 'failed',
      delivery_outcome: 'failed',
      delivery_error_class: 'transient',
      delivery_report: 'undelivered',
    });
    const failures = await h.sql(
      'SELECT provider, error_class, error_code, phone_number FROM delivery_failures WHERE challenge_id = $1',
      [challenge_id],
    );
    expect(failures).toEqual([
      { provider: 'twilio', error_class: 'transient', error_code: '30003', phone_number: '+15555550102' },
    ]);
    expect((await publicState(h, challenge_id)).body).toMatchObject({ status: 'failed' });
  });

  it('records a SendGrid bounce as a permanent failure (the public state does not reveal it)', async () => {
    await setFault(h, { provider: 'sendgrid', mode: 'undelivered', count: 1 });
    const { challenge_id } = (await initiate(h, 'magic-link', 'test-user-3')).json<{ challenge_id: string }>();
    await waitFor('the bounce', async () => ((await ledger(challenge_id))?.report === 'bounce' ? true : undefined));
    const [challenge] = await h.sql('SELECT delivery_status, delivery_error_class FROM auth_challenges WHERE id = $1', [
      challenge_id,
    ]);
    expect(challenge).toEqual({ delivery_status: 'failed', delivery_error_class: 'permanent' });
    expect(
      await h.sql('SELECT error_class, email FROM delivery_failures WHERE challenge_id = $1', [challenge_id]),
    ).toEqual([{ error_class: 'permanent', email: 'test-user-3@example.com' }]);
    expect((await publicState(h, challenge_id)).body).toMatchObject({ status: 'delivered' });
  });

  it('refuses forged callbacks with 401 and changes nothing', async () => {
    const { challenge_id } = (await initiate(h, 'otp', 'alice')).json<{ challenge_id: string }>();
    const { provider_message_id: sid } = await reported(challenge_id);
    const key = sendKey(challenge_id);
    const post = (path: string, body: string, headers: Record<string, string>) =>
      fetch(`${base}${path}`, { method: 'POST', headers, body });
    const form = { 'content-type': 'application/x-www-form-urlencoded' };

    const params = { MessageSid: sid, MessageStatus: 'failed', ErrorCode: '30007' };
    const twilioUrl = `${base}/callbacks/v1/twilio/status?idempotency_key=${encodeURIComponent(key)}`;
    const attempts = [
      // signed with the wrong auth token
      post(
        `/callbacks/v1/twilio/status?idempotency_key=${encodeURIComponent(key)}`,
        new URLSearchParams(params).toString(),
        { ...form, 'X-Twilio-Signature': twilioSignature('not-the-token', twilioUrl, params) },
      ),
      // no signature at all
      post('/callbacks/v1/twilio/status', new URLSearchParams(params).toString(), form),
      post('/callbacks/v1/plivo/status', new URLSearchParams({ MessageUUID: sid, Status: 'failed' }).toString(), {
        ...form,
        'X-Plivo-Signature-V3': 'AAAA',
        'X-Plivo-Signature-V3-Nonce': '123',
      }),
    ];
    // SendGrid: a valid signature by another key, and a genuine signature over a different body
    const events = JSON.stringify([{ event: 'bounce', idempotency_key: key, sg_message_id: 'x.filter' }]);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    attempts.push(
      post('/callbacks/v1/sendgrid/events', events, {
        'content-type': 'application/json',
        'X-Twilio-Email-Event-Webhook-Signature': sign('sha256', Buffer.from(timestamp + events), other).toString(
          'base64',
        ),
        'X-Twilio-Email-Event-Webhook-Timestamp': timestamp,
      }),
    );
    const genuine = sign('sha256', Buffer.from(`${timestamp}[]`), sendgridKeys.privateKey).toString('base64');
    attempts.push(
      post('/callbacks/v1/sendgrid/events', events, {
        'content-type': 'application/json',
        'X-Twilio-Email-Event-Webhook-Signature': genuine,
        'X-Twilio-Email-Event-Webhook-Timestamp': timestamp,
      }),
    );
    // SES: the wrong path token; the right token with a bad signature
    const sns = JSON.stringify({
      Type: 'Notification',
      MessageId: 'm',
      TopicArn: 't',
      Message: '{}',
      Timestamp: new Date().toISOString(),
      SignatureVersion: '2',
      Signature: 'AAAA',
    });
    attempts.push(post(`/callbacks/v1/ses/${'0'.repeat(32)}`, sns, { 'content-type': 'text/plain' }));
    attempts.push(post(`/callbacks/v1/ses/${snsToken}`, sns, { 'content-type': 'text/plain' }));

    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_signature' });
    }
    expect(await deliveryOutcome(h, challenge_id)).toMatchObject({
      delivery_status: 'delivered',
      delivery_outcome: 'sent',
      delivery_report: 'delivered',
    });
    expect(await h.sql('SELECT 1 FROM delivery_failures WHERE challenge_id = $1', [challenge_id])).toEqual([]);
    expect(await metric(h, 'warden_delivery_callbacks_total', { outcome: 'invalid_signature' })).toBe(7);
  });
});
