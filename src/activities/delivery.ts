/**
 * Delivery as activities. The challenge workflow runs planDelivery -> sendDelivery (one
 * provider call per attempt; Temporal retries it; the provider that takes the message records
 * the outcome), or recordDeliveryOutcome when none did. A send taken answers the channel's receipt
 * deadline: when it passes with no receipt, noteMissingReceipt counts the silence against the
 * provider and resendOnBackup re-sends the send once through the backup (src/delivery/receipts.ts).
 * The provider-outage runbook uses the
 * responder actions below, whose contracts are:
 *
 * - switchDeliveryRoute({channel, to: 'backup'|'primary'}): `backup` routes everything through
 *   the backup until switched back; `primary` returns to automatic routing with the primary's
 *   circuit closed. Idempotent (switching to where it is changes nothing but the audit trail).
 * - setDeliveryChannelEnabled({channel, enabled}): the auth.<method>.enabled switch;
 *   a disabled channel answers 503 channel_disabled on initiate and resend. Idempotent.
 * - listDeliveryFailures({since, until, channel?, resendableOnly?}): the failures to resend.
 * - resendFailedDelivery({failureId}): resends one failure through its challenge workflow,
 *   at most once ever (a retry answers the first outcome), only while the challenge is open.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { NoBackupError, routeStatus, setChannelEnabled, switchRoute, type ActorContext } from '../delivery/admin';
import { recordDeliveryOutcome } from '../delivery/outcomes';
import { listDeliveryFailures, resendFailedDelivery, type FailureWindow } from '../delivery/resend';
import { noteMissingReceipt } from '../delivery/receipts';
import {
  ChallengeNotFoundError,
  planDelivery,
  resendAfterMissingReceipt,
  sendDelivery,
  SendFailure,
} from '../delivery/sender';
import type { StatusPageName } from '../providers';
import type { Channel } from '../providers/types';
import type { Runtime } from '../runtime';
import { ChallengeErrorType } from '../shared/auth';
import {
  channelOfProvider,
  DeliveryErrorType,
  type PlanDeliveryInput,
  type RecordDeliveryInput,
  type SendDeliveryInput,
  type SendDeliveryResult,
} from '../shared/delivery';
import type { ReceiptTimeoutInput } from '../workflows/delivery/receipt';

function failure(err: SendFailure): ApplicationFailure {
  const { decision, details } = err;
  if (decision.action === 'retry') {
    return ApplicationFailure.create({
      type: DeliveryErrorType.transient,
      message: err.message,
      details: [details],
      ...(decision.delayMs !== undefined ? { nextRetryDelay: decision.delayMs } : {}),
    });
  }
  const type = decision.action === 'fail' ? DeliveryErrorType.permanent : DeliveryErrorType.exhausted;
  const why = decision.action === 'failover' ? ` (${decision.reason})` : '';
  return ApplicationFailure.create({ type, message: `${err.message}${why}`, nonRetryable: true, details: [details] });
}

/** A provider call's failures as the workflow's retry policy reads them. */
async function send<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof SendFailure) throw failure(err);
    if (err instanceof ChallengeNotFoundError)
      throw ApplicationFailure.nonRetryable(err.message, ChallengeErrorType.notFound);
    throw err;
  }
}

export function createDeliveryActivities(
  runtime: Pick<
    Runtime,
    'db' | 'logger' | 'metrics' | 'config' | 'providers' | 'temporal' | 'keys' | 'settings' | 'routes'
  >,
) {
  const actor = (): ActorContext['actor'] =>
    `workflow:${Context.current().info.workflowExecution?.workflowId ?? 'standalone'}`;

  return {
    async planDelivery(input: PlanDeliveryInput) {
      try {
        return await planDelivery(runtime, input);
      } catch (err) {
        if (err instanceof ChallengeNotFoundError)
          throw ApplicationFailure.nonRetryable(err.message, ChallengeErrorType.notFound);
        throw err;
      }
    },

    async sendDelivery(input: SendDeliveryInput): Promise<SendDeliveryResult & { receiptDeadlineMs?: number }> {
      const context = Context.current();
      const sent = await send(() => sendDelivery(runtime, input, () => context.heartbeat()));
      if (sent.outcome !== 'sent') return sent;
      // how long the workflow waits for this send's receipt before the backup re-sends it
      const deadline = runtime.config.delivery.receiptDeadlineMs[channelOfProvider(sent.provider)];
      return deadline > 0 ? { ...sent, receiptDeadlineMs: deadline } : sent;
    },

    async noteMissingReceipt(input: ReceiptTimeoutInput) {
      return noteMissingReceipt(runtime, input);
    },

    async resendOnBackup(input: SendDeliveryInput) {
      const context = Context.current();
      return send(() => resendAfterMissingReceipt(runtime, input, () => context.heartbeat()));
    },

    async recordDeliveryOutcome(input: RecordDeliveryInput): Promise<void> {
      await recordDeliveryOutcome(runtime, input);
    },

    // ---- for the provider-outage runbook ------------------------------------------------------

    async getDeliveryRoutes() {
      return routeStatus(runtime);
    },

    async switchDeliveryRoute(input: {
      channel: Channel;
      to: 'backup' | 'primary';
      reason?: string;
      incidentId?: string;
    }) {
      try {
        const route = await switchRoute(runtime, input.channel, input.to, {
          actor: actor(),
          reason: input.reason,
          incidentId: input.incidentId,
        });
        return { channel: route.channel, mode: route.mode, primary: route.primary, backup: route.backup };
      } catch (err) {
        if (err instanceof NoBackupError)
          throw ApplicationFailure.nonRetryable(err.message, DeliveryErrorType.noBackup);
        throw err;
      }
    },

    async setDeliveryChannelEnabled(input: {
      channel: Channel;
      enabled: boolean;
      reason?: string;
      incidentId?: string;
    }) {
      const route = await setChannelEnabled(runtime, input.channel, input.enabled, {
        actor: actor(),
        reason: input.reason,
        incidentId: input.incidentId,
      });
      return { channel: route.channel, enabled: route.enabled };
    },

    async listDeliveryFailures(input: FailureWindow) {
      return listDeliveryFailures(runtime.db, input);
    },

    async resendFailedDelivery(input: { failureId: string; incidentId?: string }) {
      return resendFailedDelivery(runtime, input.failureId, { actor: actor(), incidentId: input.incidentId });
    },

    /** The provider's Statuspage indicator (none, minor, major, critical). */
    async providerStatus(input: { provider: StatusPageName }) {
      return runtime.providers.statusPage(input.provider);
    },
  };
}
