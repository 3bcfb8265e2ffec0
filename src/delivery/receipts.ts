/**
 * A send the provider took but never reported: no delivered and no failed receipt within the
 * channel's deadline (WARDEN_RECEIPT_DEADLINE_SMS_MS / _EMAIL_MS). The challenge workflow times
 * the deadline against the receipt signal (src/workflows/auth/challengeMachine.ts); this is what
 * happens when the deadline wins. The silence is a failure of that provider: it counts toward
 * its circuit like a failed call. The send is then re-sent once through the route's backup
 * with the same idempotency key, so the same sealed secret goes out and either provider's
 * receipt finds the send.
 *
 * Exactly once per send, whatever retries: the ledger row of the silent provider is marked
 * (`error_code = 'receipt_timeout'`, under the row's lock that applyReport also takes), and only
 * the call that marks it counts the failure. A receipt that beat the mark, even one whose signal
 * never reached the workflow, cancels everything.
 */
import type { ProviderName } from '../providers/types';
import { sendIdempotencyKey } from '../shared/auth';
import { channelOfProvider } from '../shared/delivery';
import type { ReceiptTimeoutInput, ReceiptTimeoutResult } from '../workflows/delivery/receipt';
import { availability, loadCircuits, recordOutcome } from './circuit';
import { announceCircuit, auditCircuit, type CircuitChange } from './events';
import { MAX_CALLS_PER_PROVIDER } from './policy';
import type { SenderRuntime } from './sender';

/** The mark on a ledger row whose receipt never came (error_class stays NULL: the call itself succeeded). */
export const RECEIPT_TIMEOUT = 'receipt_timeout';

interface LedgerRow {
  status: string;
  report_outcome: string | null;
  error_code: string | null;
}

export async function noteMissingReceipt(
  runtime: SenderRuntime,
  input: ReceiptTimeoutInput,
): Promise<ReceiptTimeoutResult> {
  const { challengeId, sendNumber, provider } = input;
  const { db, metrics } = runtime;
  const key = sendIdempotencyKey(challengeId, sendNumber);
  const channel = channelOfProvider(provider);
  const route = await runtime.routes.get(channel);
  const deadlineMs = runtime.config.delivery.receiptDeadlineMs[channel];

  const marked = await db.transaction(async (tx) => {
    const { rows } = await tx.query<LedgerRow>(
      'SELECT status, report_outcome, error_code FROM delivery_attempts WHERE idempotency_key = $1 AND provider = $2 FOR UPDATE',
      [key, provider],
    );
    const row = rows[0];
    if (!row || row.status !== 'sent' || row.report_outcome) return { silent: false } as const;
    // an earlier attempt of this activity marked it and counted the failure already
    if (row.error_code === RECEIPT_TIMEOUT) return { silent: true } as const;
    await tx.query('UPDATE delivery_attempts SET error_code = $3 WHERE idempotency_key = $1 AND provider = $2', [
      key,
      provider,
      RECEIPT_TIMEOUT,
    ]);
    const outcome = await recordOutcome(tx, { provider, event: 'failure', threshold: route.failoverThreshold });
    if (!outcome.transition) return { silent: true, counted: true } as const;
    const change: CircuitChange = {
      provider,
      channel,
      transition: outcome.transition,
      consecutiveFailures: outcome.consecutiveFailures,
      fallback: provider === route.primary ? route.backup : provider === route.backup ? route.primary : null,
      actor: 'breaker',
    };
    return { silent: true, counted: true, change, audit: await auditCircuit(tx, change) } as const;
  });
  if (!marked.silent) return { action: 'none', reason: 'reported' };

  const log = runtime.logger.child({ component: 'delivery' });
  if ('counted' in marked) {
    metrics.deliveryReceiptTimeouts.inc({ channel, provider });
    log.warn(
      { challengeId, send: sendNumber, channel, provider, deadlineMs },
      `no delivery receipt from ${provider} within ${deadlineMs} ms`,
    );
    if (marked.change) announceCircuit(runtime, marked.change, marked.audit);
  }

  // only a send the primary took moves: the backup's own silence has nowhere left to go
  if (provider !== route.primary || !route.backup) return { action: 'none', reason: 'no_backup' };
  const { rows } = await db.query<{ open: boolean }>(
    `SELECT sealed_secret IS NOT NULL AND expires_at > now() AS open FROM auth_challenges WHERE id = $1`,
    [challengeId],
  );
  if (!rows[0]?.open) return { action: 'none', reason: 'ended' };
  return {
    action: 'resend',
    backup: route.backup,
    primary: route.primary,
    maxCalls: await callsFor(runtime, route.backup, key, route.circuitCooldownSeconds),
  };
}

/** A backup whose circuit is not closed still gets one call, as the last resort of a send plan does. */
async function callsFor(
  runtime: SenderRuntime,
  provider: ProviderName,
  key: string,
  cooldownSeconds: number,
): Promise<number> {
  const { circuits, now } = await loadCircuits(runtime.db, [provider]);
  const circuit = circuits.get(provider);
  if (!circuit) return MAX_CALLS_PER_PROVIDER;
  return availability(circuit, now, key, cooldownSeconds) === 'usable' ? MAX_CALLS_PER_PROVIDER : 1;
}
