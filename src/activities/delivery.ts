import { performance } from 'node:perf_hooks';
import { ApplicationFailure } from '@temporalio/common';
import { aad, unseal } from '../auth/crypto';
import { magicLinkUrl, renderMagicLinkEmail, renderOtpSms } from '../auth/messages';
import { authServices } from '../auth/services';
import { ProviderError, type Channel, type ProviderName, type SendResult } from '../providers';
import type { Runtime } from '../runtime';
import { sendIdempotencyKey, type AuthMethod } from '../shared/auth';

/**
 * Delivery of a challenge's secret: one send (the n-th of the challenge) through the channel's
 * primary provider, and on a transient failure once through the backup. Issue 4 deepens this
 * (retries, circuit breaker, callbacks); the workflow only knows `deliverChallenge`.
 *
 * Every send carries the idempotency key `challenge-<id>/send-<n>`, so an activity retry after
 * a lost reply is deduplicated by the provider instead of texting the code twice.
 */
export interface DeliverChallengeInput {
  challengeId: string;
  sendNumber: number;
}

export type DeliveryOutcome =
  | { outcome: 'sent' | 'failed_over'; provider: ProviderName }
  | { outcome: 'failed'; provider: ProviderName; errorClass: 'transient' | 'permanent' }
  /** unknown user or no phone/email: nobody to send to (the anti-enumeration decoy) */
  | { outcome: 'no_recipient' }
  /** the challenge ended before this send */
  | { outcome: 'skipped' };

interface ChallengeRow {
  user_id: string;
  method: AuthMethod;
  key_id: string | null;
  sealed_secret: Buffer | null;
  expires_at: Date;
  phone: string | null;
  email: string | null;
}

const ROUTE_PROVIDERS: Record<Channel, readonly string[]> = { sms: ['twilio', 'plivo'], email: ['sendgrid', 'ses'] };

export function createDeliveryActivities(runtime: Runtime) {
  const { db, metrics, providers, config } = runtime;

  async function sendVia(channel: Channel, provider: string, to: string, secret: string, row: ChallengeRow, challengeId: string, key: string): Promise<SendResult> {
    if (!ROUTE_PROVIDERS[channel].includes(provider)) {
      throw ApplicationFailure.nonRetryable(`delivery route names unknown ${channel} provider ${provider}`, 'DeliveryRouteError');
    }
    metrics.deliveryAttempts.inc({ channel, provider });
    const started = performance.now();
    try {
      if (channel === 'sms') {
        const body = renderOtpSms(secret, row.expires_at);
        return await providers.sms[provider as 'twilio' | 'plivo'].send({ to, body, idempotencyKey: key });
      }
      const email = renderMagicLinkEmail(magicLinkUrl(config.publicBaseUrl, challengeId, secret), row.expires_at);
      return await providers.email[provider as 'sendgrid' | 'ses'].send({ to, ...email, idempotencyKey: key });
    } catch (err) {
      if (err instanceof ProviderError) metrics.deliveryFailures.inc({ channel, provider, error_class: err.kind });
      throw err;
    } finally {
      metrics.deliveryDuration.observe({ channel, provider }, (performance.now() - started) / 1000);
    }
  }

  async function recordOutcome(challengeId: string, sendNumber: number, outcome: DeliveryOutcome, row: ChallengeRow, channel: Channel, errorCode?: string) {
    const provider = 'provider' in outcome ? outcome.provider : null;
    const label = outcome.outcome;
    await db.transaction(async (tx) => {
      await tx.query(
        `UPDATE auth_challenges
            SET sends = GREATEST(sends, $2), delivery_provider = COALESCE($3, delivery_provider), delivery_outcome = $4,
                status = CASE WHEN status IN ('pending', 'delivered', 'failed') THEN
                           CASE WHEN $4 IN ('sent', 'failed_over') THEN 'delivered'
                                WHEN $4 = 'failed' AND status = 'pending' THEN 'failed'
                                ELSE status END
                         ELSE status END
          WHERE id = $1`,
        [challengeId, sendNumber, provider, label],
      );
      if (outcome.outcome === 'failed') {
        await tx.query(
          `INSERT INTO delivery_failures (challenge_id, user_id, channel, provider, phone_number, email, error_class, error_code)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [challengeId, row.user_id, channel, outcome.provider, channel === 'sms' ? row.phone : null, channel === 'email' ? row.email : null, outcome.errorClass, errorCode ?? null],
        );
      }
    });
  }

  return {
    async deliverChallenge(input: DeliverChallengeInput): Promise<DeliveryOutcome> {
      const { challengeId, sendNumber } = input;
      const { rows } = await db.query<ChallengeRow>(
        `SELECT c.user_id, c.method, c.key_id, c.sealed_secret, c.expires_at, u.phone, u.email
           FROM auth_challenges c LEFT JOIN users u ON u.sub = c.user_id
          WHERE c.id = $1`,
        [challengeId],
      );
      const row = rows[0];
      if (!row) throw ApplicationFailure.nonRetryable(`challenge ${challengeId} has no row`, 'ChallengeNotFoundError');
      if (!row.sealed_secret || !row.key_id) return { outcome: 'skipped' };
      const channel: Channel = row.method === 'sms_otp' ? 'sms' : 'email';
      const to = channel === 'sms' ? row.phone : row.email;
      if (!to) {
        const outcome: DeliveryOutcome = { outcome: 'no_recipient' };
        await recordOutcome(challengeId, sendNumber, outcome, row, channel);
        return outcome;
      }

      const key = await authServices(runtime).keys.get(row.key_id);
      const secret = unseal(key.seal, row.sealed_secret, aad.storedSecret(challengeId)).toString('utf8');
      const route = await db.query<{ primary_provider: string; backup_provider: string | null }>(
        'SELECT primary_provider, backup_provider FROM delivery_routes WHERE channel = $1',
        [channel],
      );
      const primary = route.rows[0]?.primary_provider ?? (channel === 'sms' ? 'twilio' : 'sendgrid');
      const backup = route.rows[0]?.backup_provider ?? undefined;
      const idempotencyKey = sendIdempotencyKey(challengeId, sendNumber);

      let outcome: DeliveryOutcome;
      let errorCode: string | undefined;
      try {
        const sent = await sendVia(channel, primary, to, secret, row, challengeId, idempotencyKey);
        outcome = { outcome: 'sent', provider: sent.provider };
      } catch (primaryError) {
        if (!(primaryError instanceof ProviderError)) throw primaryError;
        outcome = { outcome: 'failed', provider: primary as ProviderName, errorClass: primaryError.kind };
        errorCode = primaryError.providerCode !== undefined ? String(primaryError.providerCode) : primaryError.status?.toString();
        if (primaryError.kind === 'transient' && backup && backup !== primary) {
          metrics.deliveryFailovers.inc({ channel, from: primary, to: backup });
          try {
            const sent = await sendVia(channel, backup, to, secret, row, challengeId, idempotencyKey);
            outcome = { outcome: 'failed_over', provider: sent.provider };
          } catch (backupError) {
            if (!(backupError instanceof ProviderError)) throw backupError;
            outcome = { outcome: 'failed', provider: backup as ProviderName, errorClass: backupError.kind };
            errorCode = backupError.providerCode !== undefined ? String(backupError.providerCode) : backupError.status?.toString();
          }
        }
      }
      await recordOutcome(challengeId, sendNumber, outcome, row, channel, errorCode);
      return outcome;
    },
  };
}
