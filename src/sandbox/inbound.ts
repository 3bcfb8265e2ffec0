import { plivoInboundCallback, twilioInboundCallback, type CallbackSender } from './callbacks';
import type { SandboxState } from './state';

/** a phone shows a message a moment after the carrier reported it delivered */
const PHONE_DELAY_MS = 250;

/**
 * An SMS that reached a number with an incoming-message webhook (POST /sandbox/inbound) comes
 * back through that number's provider, whichever provider sent it, as soon as it is delivered.
 * A lost message (an `undelivered` fault) never reaches the phone, so it never comes back.
 */
export function deliverInbound(
  state: SandboxState,
  callbacks: CallbackSender,
  message: { from: string; to: string; body: string },
): void {
  const inbound = state.inboundFor(message.to);
  if (!inbound || !state.callbacksEnabled) return;
  callbacks.schedule(
    inbound.provider === 'twilio'
      ? twilioInboundCallback(inbound.url, inbound.authToken, message)
      : plivoInboundCallback(inbound.url, inbound.authToken, message),
    PHONE_DELAY_MS,
  );
}
