import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  parsePublicKey,
  snsCanonical,
  verifyPlivo,
  verifySendgrid,
  verifySns,
  verifyTwilio,
} from '../../src/delivery/callbackAuth';
import { afterOutcome, availability, planSteps, routeOrder, type Circuit } from '../../src/delivery/circuit';
import { decide, MAX_CALLS_PER_PROVIDER, RETRY_AFTER_CAP_MS } from '../../src/delivery/policy';
import { publicStatus } from '../../src/delivery/publicState';
import { CHALLENGE_ENDS } from '../../src/shared/auth';
import { DEFAULT_ROUTES, RouteValidationError, validateRoute } from '../../src/delivery/routes';
import {
  plivoDeliveredCallback,
  sendgridEventCallback,
  sesEventCallback,
  snsStringToSign,
  twilioDeliveredCallback,
} from '../../src/sandbox/callbacks';

describe('error classification and retry policy', () => {
  const transient = (extra: Partial<{ providerCode: string; retryAfterMs: number }> = {}) => ({
    kind: 'transient' as const,
    ...extra,
  });

  it('never retries or fails over a permanent error', () => {
    expect(decide({ kind: 'permanent' }, 1, 3)).toEqual({ action: 'fail' });
  });

  it('retries a transient error on the same provider until its calls are used up, then fails over', () => {
    expect(decide(transient(), 1, MAX_CALLS_PER_PROVIDER)).toEqual({ action: 'retry' });
    expect(decide(transient(), 2, MAX_CALLS_PER_PROVIDER)).toEqual({ action: 'retry' });
    expect(decide(transient(), 3, MAX_CALLS_PER_PROVIDER)).toEqual({ action: 'failover', reason: 'retries_exhausted' });
    // a half-open probe gets one call
    expect(decide(transient(), 1, 1)).toEqual({ action: 'failover', reason: 'retries_exhausted' });
  });

  it('fails over at once after a timeout: it was slow and may have been sent', () => {
    expect(decide(transient({ providerCode: 'TIMEOUT' }), 1, 3)).toEqual({ action: 'failover', reason: 'timeout' });
  });

  it('waits for a short Retry-After and fails over instead of waiting for a long one', () => {
    expect(decide(transient({ retryAfterMs: 1000 }), 1, 3)).toEqual({ action: 'retry', delayMs: 1000 });
    expect(decide(transient({ retryAfterMs: 0 }), 1, 3)).toEqual({ action: 'retry', delayMs: 250 });
    expect(decide(transient({ retryAfterMs: RETRY_AFTER_CAP_MS + 1 }), 1, 3)).toEqual({
      action: 'failover',
      reason: 'throttled',
    });
  });
});

describe('the circuit breaker rule', () => {
  it('opens at the threshold of consecutive failures, and a success closes it from any state', () => {
    expect(afterOutcome({ state: 'closed', consecutiveFailures: 3 }, 'failure', 5)).toEqual({
      state: 'closed',
      consecutiveFailures: 4,
    });
    expect(afterOutcome({ state: 'closed', consecutiveFailures: 4 }, 'failure', 5)).toEqual({
      state: 'open',
      consecutiveFailures: 5,
      transition: 'opened',
    });
    expect(afterOutcome({ state: 'open', consecutiveFailures: 6 }, 'failure', 5)).toEqual({
      state: 'open',
      consecutiveFailures: 7,
    });
    expect(afterOutcome({ state: 'half_open', consecutiveFailures: 7 }, 'failure', 5)).toEqual({
      state: 'open',
      consecutiveFailures: 8,
      transition: 'reopened',
    });
    expect(afterOutcome({ state: 'half_open', consecutiveFailures: 7 }, 'success', 5)).toEqual({
      state: 'closed',
      consecutiveFailures: 0,
      transition: 'closed',
    });
    expect(afterOutcome({ state: 'closed', consecutiveFailures: 2 }, 'success', 5)).toEqual({
      state: 'closed',
      consecutiveFailures: 0,
    });
  });

  const now = new Date('2026-01-15T10:00:00Z');
  const circuit = (patch: Partial<Circuit>): Circuit => ({
    provider: 'twilio',
    channel: 'sms',
    state: 'closed',
    consecutiveFailures: 0,
    openedAt: null,
    probeLeaseUntil: null,
    probeKey: null,
    throttledUntil: null,
    ...patch,
  });

  it('lets an open provider be probed once its cool-down has passed, by one send at a time', () => {
    const opened = new Date(now.getTime() - 10_000);
    expect(availability(circuit({ state: 'open', openedAt: opened }), now, 'k1', 30)).toBe('open');
    expect(availability(circuit({ state: 'open', openedAt: opened }), now, 'k1', 5)).toBe('probe_due');
    const leased = circuit({ state: 'half_open', probeLeaseUntil: new Date(now.getTime() + 1000), probeKey: 'k1' });
    expect(availability(leased, now, 'k1', 5)).toBe('probe_due');
    expect(availability(leased, now, 'k2', 5)).toBe('probing_elsewhere');
    expect(
      availability(
        circuit({ state: 'half_open', probeLeaseUntil: new Date(now.getTime() - 1), probeKey: 'k1' }),
        now,
        'k2',
        5,
      ),
    ).toBe('probe_due');
    expect(availability(circuit({ throttledUntil: new Date(now.getTime() + 500) }), now, 'k1', 5)).toBe('throttled');
  });

  it('plans usable providers first with full retries, probes with one call, the rest as a one-call last resort', () => {
    const order = routeOrder(DEFAULT_ROUTES.sms);
    expect(order).toEqual(['twilio', 'plivo']);
    expect(
      planSteps(
        order,
        new Map([
          ['twilio', 'usable'],
          ['plivo', 'usable'],
        ]),
      ),
    ).toEqual([
      { provider: 'twilio', maxCalls: 3, probe: false },
      { provider: 'plivo', maxCalls: 3, probe: false },
    ]);
    expect(
      planSteps(
        order,
        new Map([
          ['twilio', 'open'],
          ['plivo', 'usable'],
        ]),
      ),
    ).toEqual([
      { provider: 'plivo', maxCalls: 3, probe: false },
      { provider: 'twilio', maxCalls: 1, probe: false },
    ]);
    expect(
      planSteps(
        order,
        new Map([
          ['twilio', 'probe_claimed'],
          ['plivo', 'usable'],
        ]),
      ),
    ).toEqual([
      { provider: 'twilio', maxCalls: 1, probe: true },
      { provider: 'plivo', maxCalls: 3, probe: false },
    ]);
    expect(routeOrder({ ...DEFAULT_ROUTES.email, mode: 'backup' })).toEqual(['ses']);
  });
});

describe('route validation', () => {
  it.each([
    [{ primary: 'sendgrid' }, /primary_provider/],
    [{ backup: 'twilio' }, /differ/],
    [{ failoverThreshold: 0 }, /failover_threshold/],
    [{ circuitCooldownSeconds: 0 }, /circuit_cooldown_seconds/],
    [{ backup: null, mode: 'backup' }, /backup_provider/],
  ])('refuses %o', (patch, message) => {
    expect(() => validateRoute({ ...DEFAULT_ROUTES.sms, ...patch } as never)).toThrow(RouteValidationError);
    expect(() => validateRoute({ ...DEFAULT_ROUTES.sms, ...patch } as never)).toThrow(message);
  });

  it('accepts the default routes and a route without a backup', () => {
    expect(() => validateRoute(DEFAULT_ROUTES.sms)).not.toThrow();
    expect(() => validateRoute({ ...DEFAULT_ROUTES.email, backup: null })).not.toThrow();
  });
});

describe('the public challenge state', () => {
  const now = new Date('2026-01-15T10:00:00Z');
  const later = new Date('2026-01-15T10:05:00Z');
  const row = (patch: Partial<Parameters<typeof publicStatus>[0]>) => ({
    status: 'open',
    expires_at: later,
    delivery_outcome: null,
    delivery_status: null,
    delivery_error_class: null,
    ...patch,
  });

  it('hides person-specific failures and decoys, shows outages and ends', () => {
    expect(publicStatus(row({}), now)).toBe('pending');
    expect(publicStatus(row({ delivery_status: 'delivered', delivery_outcome: 'sent' }), now)).toBe('delivered');
    expect(publicStatus(row({ delivery_status: 'delivered', delivery_outcome: 'no_recipient' }), now)).toBe(
      'delivered',
    );
    expect(publicStatus(row({ delivery_status: 'failed', delivery_outcome: 'no_recipient' }), now)).toBe('failed');
    expect(
      publicStatus(
        row({ delivery_status: 'failed', delivery_outcome: 'failed', delivery_error_class: 'transient' }),
        now,
      ),
    ).toBe('failed');
    expect(
      publicStatus(
        row({ delivery_status: 'failed', delivery_outcome: 'failed', delivery_error_class: 'permanent' }),
        now,
      ),
    ).toBe('delivered');
    // a report of delivery that beats the send's own record: still pending until the send has an outcome
    expect(publicStatus(row({ delivery_status: 'delivered' }), now)).toBe('pending');
    expect(publicStatus(row({ delivery_status: 'delivered', delivery_outcome: 'sent', expires_at: now }), now)).toBe(
      'expired',
    );
    for (const end of CHALLENGE_ENDS)
      expect(publicStatus(row({ status: end, delivery_status: 'failed', delivery_outcome: 'failed' }), now)).toBe(end);
  });
});

describe("callback signatures (Warden verifies what the sandbox signs the providers' way)", () => {
  const url = 'https://warden.example/callbacks/v1/twilio/status?idempotency_key=challenge-1%2Fsend-1';

  it('accepts a Twilio signature by the auth token and refuses another token or a changed parameter', () => {
    const cb = twilioDeliveredCallback(url, 'token-1', { sid: 'SM1', accountSid: 'AC1', from: '+1', to: '+2' });
    const signature = cb.headers['X-Twilio-Signature'];
    expect(verifyTwilio('token-1', signature, url, cb.params)).toBe(true);
    expect(verifyTwilio('token-2', signature, url, cb.params)).toBe(false);
    expect(verifyTwilio('token-1', signature, url, { ...cb.params, MessageStatus: 'failed' })).toBe(false);
    expect(verifyTwilio('token-1', undefined, url, cb.params)).toBe(false);
  });

  it('accepts a Plivo V3 signature and refuses a changed URL', () => {
    const plivoUrl = url.replace('twilio', 'plivo');
    const cb = plivoDeliveredCallback(plivoUrl, 'token-1', { uuid: 'u1', from: '+1', to: '+2' });
    const [signature, nonce] = [cb.headers['X-Plivo-Signature-V3'], cb.headers['X-Plivo-Signature-V3-Nonce']];
    expect(verifyPlivo('token-1', signature, nonce, plivoUrl, cb.params)).toBe(true);
    expect(verifyPlivo('token-1', signature, nonce, plivoUrl.replace('send-1', 'send-2'), cb.params)).toBe(false);
    expect(verifyPlivo('token-1', signature, undefined, plivoUrl, cb.params)).toBe(false);
  });

  it('verifies SendGrid ECDSA over timestamp + raw body with the key as SendGrid shows it (base64 DER)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const key = parsePublicKey(publicKey.export({ type: 'spki', format: 'der' }).toString('base64'));
    const cb = sendgridEventCallback(
      'https://x',
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      { id: 'm1', to: 'a@b.c', idempotencyKey: 'k' },
      'delivered',
    );
    const body = Buffer.from(cb.body!.text);
    const signature = cb.headers['X-Twilio-Email-Event-Webhook-Signature'];
    const timestamp = cb.headers['X-Twilio-Email-Event-Webhook-Timestamp'];
    expect(verifySendgrid(key, body, signature, timestamp)).toBe(true);
    expect(verifySendgrid(key, Buffer.from(cb.body!.text.replace('delivered', 'bounce')), signature, timestamp)).toBe(
      false,
    );
    expect(verifySendgrid(key, body, signature, String(Number(timestamp) + 1))).toBe(false);
    expect(
      verifySendgrid(
        parsePublicKey(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
        body,
        signature,
        timestamp,
      ),
    ).toBe(true);
  });

  it('verifies an SNS SignatureVersion 2 message against a pinned key and builds the same string to sign', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cb = sesEventCallback(
      'https://x',
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      'http://sandbox',
      { id: 'm1', to: 'a@b.c', from: 'w@x.y', tagValue: 'k' },
      'Delivery',
    );
    const message = JSON.parse(cb.body!.text) as Record<string, string>;
    expect(snsCanonical(message)).toBe(snsStringToSign(message));
    expect(verifySns(publicKey, message)).toBe(true);
    expect(verifySns(publicKey, { ...message, Message: message.Message!.replace('Delivery', 'Bounce') })).toBe(false);
    expect(verifySns(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey, message)).toBe(false);
    expect(verifySns(publicKey, { ...message, SignatureVersion: '3' })).toBe(false);
  });
});
