/**
 * The delivery contract shared by the challenge workflow, the delivery activities, the API
 * and the runbooks. Nothing here carries a secret or a recipient: the activities resolve
 * both from the challenge id.
 */
import { defineUpdate } from '@temporalio/workflow';
import type { Channel, ProviderName } from '../providers/types';
import { CHALLENGE_ENDS } from './auth';

export const CHANNEL_PROVIDERS: Record<Channel, readonly ProviderName[]> = {
  sms: ['twilio', 'plivo'],
  email: ['sendgrid', 'ses'],
};
export const CHANNELS: readonly Channel[] = ['sms', 'email'];
export const PROVIDERS: readonly ProviderName[] = ['twilio', 'plivo', 'sendgrid', 'ses'];

export function channelOfProvider(provider: ProviderName): Channel {
  return provider === 'twilio' || provider === 'plivo' ? 'sms' : 'email';
}

/** Stable failure types of the delivery activities (ApplicationFailure.type). */
export const DeliveryErrorType = {
  /** invalid recipient or a rejected request: no retry, no failover */
  permanent: 'ProviderPermanentError',
  /** retry this provider (after nextRetryDelay) */
  transient: 'ProviderTransientError',
  /** stop calling this provider for this send: retries used up, a timeout, a long Retry-After */
  exhausted: 'ProviderExhaustedError',
  /** a switch to the backup of a route that has none (the responder actions, not the send) */
  noBackup: 'NoBackupError',
} as const;

export type ErrorClass = 'transient' | 'permanent';

/** What the send activity's failure details carry (no message text, no recipient). */
export interface SendFailureDetails {
  provider: ProviderName;
  errorClass: ErrorClass;
  errorCode?: string;
  status?: number;
  retryAfterMs?: number;
}

/** One provider in a send's plan: `maxCalls` provider calls at most (a probe gets one). */
export interface DeliveryStep {
  provider: ProviderName;
  maxCalls: number;
  /** this call is the half-open probe of a provider whose circuit was open */
  probe: boolean;
}

export type DeliveryPlan =
  /** the challenge ended before this send */
  | { kind: 'skipped' }
  /** unknown user or no phone/email (the no-enumeration decoy); channelDown: no provider would have taken it */
  | { kind: 'no_recipient'; channel: Channel; channelDown: boolean }
  | { kind: 'send'; channel: Channel; primary: ProviderName; steps: DeliveryStep[] };

export interface PlanDeliveryInput {
  challengeId: string;
  sendNumber: number;
}

export interface SendDeliveryInput {
  challengeId: string;
  sendNumber: number;
  provider: ProviderName;
  maxCalls: number;
  /** set when an earlier provider of this send failed: counted as a failover */
  failoverFrom?: ProviderName;
  /**
   * the route's primary: the provider that takes the message records the send's outcome (`sent`
   * if it is this one, else `failed_over`) in the same transaction as the call's own bookkeeping
   */
  primary: ProviderName;
}

export type SendDeliveryResult = { outcome: 'sent'; provider: ProviderName } | { outcome: 'skipped' };

/** delivery_outcome on auth_challenges; `skipped`: the challenge ended before any provider was called */
export type DeliveryOutcome = 'sent' | 'failed_over' | 'failed' | 'no_recipient' | 'skipped';

/** auth_challenges.delivery_status: NULL until a send has an outcome, then whether the message reached the user. */
export const DELIVERY_STATUSES = ['delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** An outcome no provider took (a provider that takes a send records it itself, see SendDeliveryInput). */
export interface RecordDeliveryInput {
  challengeId: string;
  sendNumber: number;
  outcome: Exclude<DeliveryOutcome, 'sent' | 'failed_over'>;
  provider?: ProviderName;
  errorClass?: ErrorClass;
  errorCode?: string;
  channelDown?: boolean;
}

export type DeliverySummary = { outcome: DeliveryOutcome; provider?: ProviderName; errorClass?: ErrorClass };

/**
 * A responder's (or the outage runbook's) resend of a failed delivery through the challenge
 * workflow. Idempotent per failure: the same failure id never queues a second message, and a
 * failure already superseded by a later send queues none.
 */
export interface RedeliverInput {
  failureId: string;
  failedSendNumber: number;
}

export type RedeliverResult =
  | { outcome: 'queued'; sendNumber: number; duplicate: boolean }
  | { outcome: 'superseded'; sendNumber: number }
  | { outcome: 'expired' }
  | { outcome: 'already_used' }
  | { outcome: 'revoked' }
  | { outcome: 'locked' };

export const redeliverUpdate = defineUpdate<RedeliverResult, [RedeliverInput]>('redeliver');

/** What GET .../auth/challenges/:id answers (see src/delivery/publicState.ts for the rule). */
export const PUBLIC_CHALLENGE_STATUSES = ['pending', ...DELIVERY_STATUSES, ...CHALLENGE_ENDS] as const;
export type PublicChallengeStatus = (typeof PUBLIC_CHALLENGE_STATUSES)[number];
