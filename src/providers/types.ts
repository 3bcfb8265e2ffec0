export type Channel = 'sms' | 'email';
export type SmsProviderName = 'twilio' | 'plivo';
export type EmailProviderName = 'sendgrid' | 'ses';
export type ProviderName = SmsProviderName | EmailProviderName;
/** Every outside service Warden calls, for errors and status pages. */
export type ExternalService = ProviderName | 'slack' | 'statuspage' | 'hcaptcha';

export interface OutgoingSms {
  to: string;
  body: string;
  idempotencyKey: string;
  statusCallbackUrl?: string;
}

export interface OutgoingEmail {
  to: string;
  subject: string;
  text: string;
  html?: string;
  idempotencyKey: string;
}

export interface SendResult {
  provider: ProviderName;
  providerMessageId: string;
  latencyMs: number;
}

export interface SmsProvider {
  readonly name: SmsProviderName;
  send(msg: OutgoingSms): Promise<SendResult>;
}

export interface EmailProvider {
  readonly name: EmailProviderName;
  send(msg: OutgoingEmail): Promise<SendResult>;
}

/** Statuspage's indicator vocabulary: https://doers.statuspage.io/api/v2/status/ */
export type StatusIndicator = 'none' | 'minor' | 'major' | 'critical';

export interface ProviderStatus {
  indicator: StatusIndicator;
  description: string;
}
