/**
 * The contract of the receipt watch: a provider's delivery report, as the callback handlers
 * signal it to the challenge workflow, and the two activities that act on a missing one. Kept
 * apart from deliver.ts so the callback side (src/delivery/reports.ts) can import the signal
 * without the workflow code. Nothing here carries a secret or a recipient.
 */
import { defineSignal } from '@temporalio/workflow';
import type { ProviderName } from '../../providers/types';

/** A delivered or failed report for one send (by any provider of it). */
export interface DeliveryReceipt {
  sendNumber: number;
  outcome: 'delivered' | 'failed';
}

export const deliveryReceiptSignal = defineSignal<[DeliveryReceipt]>('deliveryReceipt');

export interface ReceiptTimeoutInput {
  challengeId: string;
  sendNumber: number;
  /** the provider that took the send and never reported it */
  provider: ProviderName;
}

export type ReceiptTimeoutResult =
  /** re-send once through the route's backup, with the send's own key (and so its secret) */
  | { action: 'resend'; backup: ProviderName; primary: ProviderName; maxCalls: number }
  /**
   * reported: a receipt arrived after all (the signal was lost or raced the timer); ended: the
   * challenge ended; no_backup: the route has no backup, or the send was the backup's already
   */
  | { action: 'none'; reason: 'reported' | 'ended' | 'no_backup' };
