/**
 * The two halves of one send that touch the outside world: planning it (route + shared
 * circuit state, claiming a half-open probe) and one provider call with its bookkeeping.
 * The order of providers and when to move on is the workflow's (src/workflows/delivery).
 */
import { performance } from 'node:perf_hooks';
import { aad, unseal } from '../auth/crypto';
import { magicLinkUrl, renderMagicLinkEmail, renderOtpSms, webOtpHost } from '../auth/messages';
import { ProviderError, type SendResult } from '../providers';
import type { ProviderName } from '../providers/types';
import type { Runtime } from '../runtime';
import { ChallengeErrorType, sendIdempotencyKey, type AuthMethod } from '../shared/auth';
import {
  channelOfProvider,
  type DeliveryPlan,
  type PlanDeliveryInput,
  type SendDeliveryInput,
  type SendDeliveryResult,
  type SendFailureDetails,
} from '../shared/delivery';
import {
  availability,
  claimProbe,
  loadCircuits,
  planSteps,
  recordOutcome,
  routeOrder,
  type Availability,
  type Circuit,
} from './circuit';
import { announceCircuit, auditCircuit, type CircuitChange } from './events';
import { beginCall, callFailed, callSucceeded, sentBy, unresolvedCall } from './ledger';
import { recordSentOutcome } from './outcomes';
import { decide, errorCode, type SendDecision } from './policy';
import { COUNTRY_NOT_ALLOWED, smsCountryAllowed } from './countries';
import { prefixRefusal, SMS_PREFIX_BLOCKED } from './prefixBlocks';
import { METHOD_CHANNEL, type Route } from './routes';

export type SenderRuntime = Pick<Runtime, 'db' | 'logger' | 'metrics' | 'config' | 'providers' | 'keys' | 'routes'>;

export class ChallengeNotFoundError extends Error {
  override name = ChallengeErrorType.notFound;
}

/** A failed provider call, with what the policy decided about it. */
export class SendFailure extends Error {
  override name = 'SendFailure';
  constructor(
    message: string,
    readonly decision: SendDecision,
    readonly details: SendFailureDetails,
  ) {
    super(message);
  }
}

interface Target {
  user_id: string;
  method: AuthMethod;
  key_id: string | null;
  sealed_secret: Buffer | null;
  expires_at: Date;
  phone: string | null;
  email: string | null;
  /** the message's language: the user's, then the app's (docs/messages.md) */
  user_locale: string | null;
  app_locale: string | null;
  /** the app's web origins: the first is the site an SMS code is bound to */
  web_origins: string[] | null;
}

async function loadTarget(runtime: SenderRuntime, challengeId: string): Promise<Target> {
  const { rows } = await runtime.db.query<Target>(
    `SELECT c.user_id, c.method, c.key_id, c.sealed_secret, c.expires_at, u.phone, u.email,
            u.locale AS user_locale, a.locale AS app_locale, a.web_origins
       FROM auth_challenges c
       -- a disabled user has no phone or email here: like an unknown user's, the challenge
       -- is issued and never delivered
       LEFT JOIN users u ON u.sub = c.user_id AND u.disabled_at IS NULL
       LEFT JOIN challenge_bindings b ON b.challenge_id = c.id
       LEFT JOIN apps a ON a.client_id = b.client_id
      WHERE c.id = $1`,
    [challengeId],
  );
  if (!rows[0]) throw new ChallengeNotFoundError(`challenge ${challengeId} has no row`);
  return rows[0];
}

const recipient = (t: Target) => (t.method === 'sms_otp' ? t.phone : t.email);

const fallbackOf = (route: Route, provider: ProviderName): ProviderName | null =>
  provider === route.primary ? route.backup : provider === route.backup ? route.primary : null;

function closed(provider: ProviderName): Circuit {
  return {
    provider,
    channel: channelOfProvider(provider),
    state: 'closed',
    consecutiveFailures: 0,
    openedAt: null,
    probeLeaseUntil: null,
    probeKey: null,
    throttledUntil: null,
  };
}

export async function planDelivery(runtime: SenderRuntime, input: PlanDeliveryInput): Promise<DeliveryPlan> {
  const target = await loadTarget(runtime, input.challengeId);
  if (!target.sealed_secret || !target.key_id) return { kind: 'skipped' };
  const channel = METHOD_CHANNEL[target.method];
  const route = await runtime.routes.get(channel);
  const order = routeOrder(route);
  const key = sendIdempotencyKey(input.challengeId, input.sendNumber);
  const { circuits, now } = await loadCircuits(runtime.db, order);
  const status = new Map<ProviderName, Availability | 'probe_claimed'>(
    order.map((p) => [p, availability(circuits.get(p) ?? closed(p), now, key, route.circuitCooldownSeconds)]),
  );
  if (!recipient(target)) {
    const down = order.every((p) => status.get(p) !== 'usable' && status.get(p) !== 'probe_due');
    return { kind: 'no_recipient', channel, channelDown: down };
  }
  for (const provider of order) {
    if (status.get(provider) !== 'probe_due') continue;
    const claim = await runtime.db.transaction(async (tx) => {
      const claimed = await claimProbe(tx, provider, key, route.circuitCooldownSeconds);
      if (!claimed.claimed || claimed.previous !== 'open') return { claimed: claimed.claimed };
      const change: CircuitChange = {
        provider,
        channel,
        transition: 'half_opened',
        consecutiveFailures: circuits.get(provider)?.consecutiveFailures ?? 0,
        fallback: fallbackOf(route, provider),
        actor: 'breaker',
      };
      return { claimed: true, change, audit: await auditCircuit(tx, change) };
    });
    if (claim.change) announceCircuit(runtime, claim.change, claim.audit);
    status.set(provider, claim.claimed ? 'probe_claimed' : 'probing_elsewhere');
  }
  return { kind: 'send', channel, primary: route.primary, steps: planSteps(order, status) };
}

async function render(
  runtime: SenderRuntime,
  challengeId: string,
  target: Target,
  to: string,
  provider: ProviderName,
  key: string,
): Promise<() => Promise<SendResult>> {
  const dataKey = await runtime.keys.get(target.key_id!);
  const secret = unseal(dataKey.seal, target.sealed_secret!, aad.storedSecret(challengeId)).toString('utf8');
  const { providers, config } = runtime;
  const options = { settings: config.messages, locales: [target.user_locale, target.app_locale] };
  if (provider === 'twilio' || provider === 'plivo') {
    const host = webOtpHost(target.web_origins, config.publicBaseUrl);
    const body = renderOtpSms(secret, target.expires_at, { ...options, webOtpHost: host });
    const statusCallbackUrl = `${config.delivery.callbackBaseUrl}/callbacks/v1/${provider}/status`;
    return () => providers.sms[provider].send({ to, body, idempotencyKey: key, statusCallbackUrl });
  }
  const link = magicLinkUrl(config.publicBaseUrl, challengeId, secret);
  const email = renderMagicLinkEmail(link, target.expires_at, options);
  return () => providers.email[provider].send({ to, ...email, idempotencyKey: key });
}

/**
 * How a call came about: a send (`send`), the repeat of an earlier provider's unrecorded call
 * before a failover (`resolving`), or the backup's re-send of a send its provider took but never
 * reported (`receipt`, src/delivery/receipts.ts: that send is recorded as sent already).
 */
export type CallMode = 'send' | 'resolving' | 'receipt';

/**
 * One provider call for one send. A send the ledger already records as sent (by any provider)
 * is answered from the ledger without calling anyone; otherwise the call is marked `sending`
 * before it goes out, and its outcome, the circuit's and any circuit switch's audit row land
 * in one short transaction after it. `heartbeat` keeps the activity alive during a slow call,
 * so a killed worker's attempt is noticed within the heartbeat timeout, not the call timeout.
 */
export async function sendDelivery(
  runtime: SenderRuntime,
  input: SendDeliveryInput,
  heartbeat: () => void = () => {},
  mode: CallMode = 'send',
): Promise<SendDeliveryResult> {
  const { challengeId, sendNumber, provider } = input;
  const { db, metrics } = runtime;
  const key = sendIdempotencyKey(challengeId, sendNumber);
  const channel = channelOfProvider(provider);
  const log = runtime.logger.child({ component: 'delivery' });

  // the provider that takes the message records the send's outcome
  const sent = (by: ProviderName) =>
    ({ challengeId, sendNumber, provider: by, outcome: by === input.primary ? 'sent' : 'failed_over' }) as const;
  /** the ledger already says a provider took this send: answered without calling anyone */
  const alreadySent = async (by: ProviderName): Promise<SendDeliveryResult> => {
    await db.transaction((tx) => recordSentOutcome(tx, sent(by)));
    return { outcome: 'sent', provider: by };
  };
  // a receipt re-send goes out although another provider took the send: only its own row counts
  const done = mode === 'receipt' ? undefined : await sentBy(db, key);
  if (done) return alreadySent(done);
  // A failover must not send a second message while an earlier provider's call may have
  // reached the user: that call is repeated first, with the same key (the provider
  // deduplicates); only once that call is recorded as failed does this provider get the send.
  const unresolved = mode === 'send' ? await unresolvedCall(db, key, provider) : undefined;
  if (unresolved) {
    log.warn(
      { challengeId, send: sendNumber, provider, unresolved },
      'repeating an earlier provider call whose outcome was never recorded before failing over; same idempotency key',
    );
    try {
      return await sendDelivery(runtime, { ...input, provider: unresolved }, heartbeat, 'resolving');
    } catch (err) {
      if (!(err instanceof SendFailure)) throw err;
    }
  }
  const target = await loadTarget(runtime, challengeId);
  if (!target.sealed_secret || !target.key_id) return { outcome: 'skipped' };
  const to = recipient(target);
  if (!to)
    throw new SendFailure(
      'the user has no recipient for this channel any more',
      { action: 'fail' },
      { provider, errorClass: 'permanent', errorCode: 'no_recipient' },
    );
  // every provider call of every send checks the number the user has now (src/delivery/countries.ts)
  if (channel === 'sms' && !smsCountryAllowed(runtime.config.budgets.smsCountries, to)) {
    metrics.budgetRefusals.inc({ reason: 'country_not_allowed', action: 'send' });
    throw new SendFailure(
      'SMS to this country is not allowed',
      { action: 'fail' },
      { provider, errorClass: 'permanent', errorCode: COUNTRY_NOT_ALLOWED },
    );
  }
  // a number prefix blocked for SMS pumping (src/delivery/prefixBlocks.ts), whichever provider this is
  const pumping = channel === 'sms' ? await prefixRefusal(runtime, to) : undefined;
  if (pumping)
    throw new SendFailure(
      pumping,
      { action: 'fail' },
      { provider, errorClass: 'permanent', errorCode: SMS_PREFIX_BLOCKED },
    );
  const call = await render(runtime, challengeId, target, to, provider, key);
  const route = await runtime.routes.get(channel);

  const begun = await beginCall(db, { key, provider, challengeId, sendNumber, channel });
  if (!begun) return alreadySent(provider);
  if (begun.previous === 'sending')
    log.warn(
      { challengeId, send: sendNumber, provider },
      'repeating a send whose outcome was lost (a worker died mid-call); same idempotency key',
    );
  if (input.failoverFrom && begun.calls === 1)
    metrics.deliveryFailovers.inc({
      channel,
      from: input.failoverFrom,
      to: provider,
      scope: mode === 'receipt' ? 'receipt' : 'message',
    });

  metrics.deliveryAttempts.inc({ channel, provider });
  const started = performance.now();
  const beat = setInterval(heartbeat, 1000);
  let result: SendResult;
  try {
    result = await call();
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    metrics.deliveryFailures.inc({ channel, provider, error_class: err.kind });
    const decision = decide(err, begun.calls, input.maxCalls);
    const code = errorCode(err);
    const change = await db.transaction(async (tx) => {
      await callFailed(tx, { key, provider, errorClass: err.kind, errorCode: code });
      if (err.kind !== 'transient') return undefined;
      const outcome = await recordOutcome(tx, {
        provider,
        event: 'failure',
        threshold: route.failoverThreshold,
        retryAfterMs: err.status === 429 ? err.retryAfterMs : undefined,
      });
      if (!outcome.transition) return undefined;
      const c: CircuitChange = {
        provider,
        channel,
        transition: outcome.transition,
        consecutiveFailures: outcome.consecutiveFailures,
        fallback: fallbackOf(route, provider),
        actor: 'breaker',
      };
      return { c, audit: await auditCircuit(tx, c) };
    });
    if (change) announceCircuit(runtime, change.c, change.audit);
    log.warn(
      {
        challengeId,
        send: sendNumber,
        channel,
        provider,
        errorClass: err.kind,
        errorCode: code,
        status: err.status,
        call: begun.calls,
        decision: decision.action,
      },
      `failed to send ${channel} via ${provider}`,
    );
    throw new SendFailure(err.message, decision, {
      provider,
      errorClass: err.kind,
      errorCode: code,
      status: err.status,
      retryAfterMs: err.retryAfterMs,
    });
  } finally {
    clearInterval(beat);
    metrics.deliveryDuration.observe({ channel, provider }, (performance.now() - started) / 1000);
  }

  const change = await db.transaction(async (tx) => {
    await callSucceeded(tx, { key, provider, providerMessageId: result.providerMessageId });
    const outcome = await recordOutcome(tx, { provider, event: 'success', threshold: route.failoverThreshold });
    // last: the challenge row is locked only for the end of this transaction
    await recordSentOutcome(tx, sent(provider));
    if (!outcome.transition) return undefined;
    const c: CircuitChange = {
      provider,
      channel,
      transition: outcome.transition,
      consecutiveFailures: 0,
      fallback: fallbackOf(route, provider),
      actor: 'breaker',
    };
    return { c, audit: await auditCircuit(tx, c) };
  });
  if (change) announceCircuit(runtime, change.c, change.audit);
  return { outcome: 'sent', provider };
}

/**
 * The re-send of a send whose provider never reported it, through the backup with the send's
 * own idempotency key: the same sealed secret goes out, and the backup's receipt finds the send.
 */
export function resendAfterMissingReceipt(
  runtime: SenderRuntime,
  input: SendDeliveryInput,
  heartbeat: () => void = () => {},
): Promise<SendDeliveryResult> {
  return sendDelivery(runtime, input, heartbeat, 'receipt');
}
