import {
  plivoInboundCallback,
  sendgridInboundParseCallback,
  sesReceiptCallback,
  twilioInboundCallback,
  type CallbackSender,
  type InboundMail,
} from './callbacks';
import type { SandboxState } from './state';

/** a phone shows a message a moment after the carrier reported it delivered */
const PHONE_DELAY_MS = 250;
/** and a mailbox a moment after the provider took the email */
const MAILBOX_DELAY_MS = 250;

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

/**
 * An email the sandbox's SendGrid or SES delivered to a mailbox with inbound email
 * (POST /sandbox/mailboxes) comes back as that provider's receiving side posts it: a SendGrid
 * Inbound Parse post, or an SES receipt through SNS. A lost email (an `undelivered` fault)
 * never arrives, so it never comes back.
 */
export function deliverInboundEmail(
  state: SandboxState,
  callbacks: CallbackSender,
  provider: 'sendgrid' | 'ses',
  sandboxUrl: string,
  mail: InboundMail,
): void {
  const mailbox = state.mailboxFor(provider, mail.to);
  if (!mailbox || !state.callbacksEnabled) return;
  if (mailbox.provider === 'sendgrid')
    callbacks.schedule(sendgridInboundParseCallback(mailbox.url, mail), MAILBOX_DELAY_MS);
  else if (mailbox.privateKey)
    callbacks.schedule(sesReceiptCallback(mailbox.url, mailbox.privateKey, sandboxUrl, mail), MAILBOX_DELAY_MS);
}
