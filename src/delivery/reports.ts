/**
 * Delivery reports from provider status callbacks (Twilio, Plivo) and event webhooks (SendGrid,
 * SES through SNS), already authenticated by the caller. A report finds its ledger row by the
 * idempotency key the message carried (the callback URL's query, custom_args, the SES tag) or
 * else by the provider's message id. Reports are idempotent: applying one twice changes nothing.
 *
 * - delivered (any send of the challenge: every send carries the same code or link): the
 *   challenge is delivered, its failure row resolved;
 * - failed (only for the challenge's latest send, only if nothing was reported delivered, and
 *   not from a provider whose silence had the backup re-send the send: that message stands,
 *   whether the backup already took it or is still being called):
 *   the challenge is failed and its failure row written, ready to be resent. A report can beat
 *   the workflow's own outcome record (the provider calls back within milliseconds); that
 *   record then keeps the reported failure (src/delivery/outcomes.ts).
 * A report also settles a ledger row left `sending` by a dead worker: the provider had it.
 * Once applied, the report is signalled to the challenge workflow, which stops waiting for the
 * send's receipt (src/delivery/receipts.ts); a signal that does not get through changes nothing,
 * since the timeout re-reads the ledger row before it re-sends anything.
 */
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Queryable } from '../db/database';
import type { ProviderName } from '../providers/types';
import type { Runtime } from '../runtime';
import { challengeWorkflowId } from '../shared/auth';
import type { ErrorClass } from '../shared/delivery';
import { deliveryReceiptSignal } from '../workflows/delivery/receipt';
import { resolveFailure, upsertFailure } from './outcomes';

export interface DeliveryReport {
  provider: ProviderName;
  idempotencyKey?: string;
  providerMessageId?: string;
  outcome: 'delivered' | 'failed';
  /** the provider's own word (delivered, undelivered, bounce, Bounce...), kept on the ledger row */
  report: string;
  errorClass?: ErrorClass;
  errorCode?: string;
}

export type ReportResult = 'applied' | 'unknown_message';

interface LedgerRow {
  challenge_id: string;
  send_number: number;
}

async function findRow(tx: Queryable, r: DeliveryReport): Promise<LedgerRow | undefined> {
  if (r.idempotencyKey) {
    const { rows } = await tx.query<LedgerRow>(
      'SELECT challenge_id, send_number FROM delivery_attempts WHERE idempotency_key = $1 AND provider = $2 FOR UPDATE',
      [r.idempotencyKey, r.provider],
    );
    if (rows[0]) return rows[0];
  }
  if (!r.providerMessageId) return undefined;
  const { rows } = await tx.query<LedgerRow>(
    'SELECT challenge_id, send_number FROM delivery_attempts WHERE provider = $1 AND provider_message_id = $2 FOR UPDATE',
    [r.provider, r.providerMessageId],
  );
  return rows[0];
}

export async function applyReport(
  runtime: Pick<Runtime, 'db' | 'logger' | 'temporal'>,
  report: DeliveryReport,
): Promise<ReportResult> {
  const applied = await runtime.db.transaction(async (tx) => {
    const row = await findRow(tx, report);
    if (!row) return undefined;
    await tx.query(
      `UPDATE delivery_attempts
          SET report = $3, report_outcome = $6, reported_at = now(),
              status = CASE WHEN status = 'sending' THEN 'sent' ELSE status END,
              provider_message_id = COALESCE(provider_message_id, $4),
              completed_at = COALESCE(completed_at, now())
        WHERE challenge_id = $1 AND send_number = $2 AND provider = $5`,
      [
        row.challenge_id,
        row.send_number,
        report.report.slice(0, 64),
        report.providerMessageId ?? null,
        report.provider,
        report.outcome,
      ],
    );
    if (report.outcome === 'delivered') {
      await tx.query(
        `UPDATE auth_challenges
            SET delivery_report = 'delivered', delivery_reported_at = now(), delivery_error_class = NULL,
                delivery_status = 'delivered'
          WHERE id = $1`,
        [row.challenge_id],
      );
      await resolveFailure(tx, row.challenge_id);
      return row;
    }
    const { rows } = await tx.query<{ id: string }>(
      `UPDATE auth_challenges
          SET delivery_report = $3, delivery_reported_at = now(), delivery_outcome = 'failed', delivery_provider = $4,
              delivery_error_class = $5, delivery_status = 'failed'
        WHERE id = $1 AND delivery_report IS DISTINCT FROM 'delivered'
          AND NOT EXISTS (SELECT 1 FROM delivery_attempts WHERE challenge_id = $1 AND send_number > $2)
          AND NOT EXISTS (SELECT 1 FROM delivery_attempts later JOIN delivery_attempts this
                             ON this.challenge_id = later.challenge_id AND this.send_number = later.send_number
                          WHERE this.challenge_id = $1 AND this.send_number = $2 AND this.provider = $4
                            AND later.id > this.id AND later.status <> 'failed')
        RETURNING id`,
      [
        row.challenge_id,
        row.send_number,
        report.report.slice(0, 64),
        report.provider,
        report.errorClass ?? 'permanent',
      ],
    );
    if (rows[0]) {
      await upsertFailure(tx, {
        challengeId: row.challenge_id,
        sendNumber: row.send_number,
        provider: report.provider,
        errorClass: report.errorClass ?? 'permanent',
        errorCode: report.errorCode,
      });
    }
    return row;
  });
  const result: ReportResult = applied ? 'applied' : 'unknown_message';
  const log = runtime.logger.child({ component: 'delivery' });
  if (applied) await signalReceipt(runtime, applied, report.outcome);
  if (result === 'unknown_message')
    log.info(
      { provider: report.provider, report: report.report },
      'delivery report for a message Warden does not know',
    );
  else if (report.outcome === 'failed')
    log.warn(
      { provider: report.provider, report: report.report, errorCode: report.errorCode },
      `failed to send: ${report.provider} reports the message ${report.report}`,
    );
  return result;
}

async function signalReceipt(
  runtime: Pick<Runtime, 'logger' | 'temporal'>,
  row: LedgerRow,
  outcome: DeliveryReport['outcome'],
): Promise<void> {
  try {
    await runtime.temporal.client.workflow
      .getHandle(challengeWorkflowId(row.challenge_id))
      .signal(deliveryReceiptSignal, { sendNumber: row.send_number, outcome });
  } catch (err) {
    // an ended challenge waits for nothing
    if (err instanceof WorkflowNotFoundError) return;
    runtime.logger
      .child({ component: 'delivery' })
      .warn(
        { challengeId: row.challenge_id, send: row.send_number, err: { name: (err as Error).name } },
        'could not signal a delivery receipt to its challenge workflow',
      );
  }
}
