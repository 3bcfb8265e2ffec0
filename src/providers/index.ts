import type { WebClient } from '@slack/web-api';
import type { Config } from '../config';
import type { Logger } from '../telemetry/logger';
import { createSdkClients } from './clients';
import { SendGridEmail, SesEmail } from './email';
import { PlivoSms, TwilioSms } from './sms';
import type { EmailProvider, EmailProviderName, ProviderStatus, SmsProvider, SmsProviderName } from './types';
import { fetchStatusPage, verifyHcaptcha, type CaptchaResult } from './web';

export * from './types';
export { ProviderError, ProviderPermanentError, ProviderTransientError, type ProviderErrorKind } from './errors';
export type { CaptchaResult } from './web';
export { slackError } from './slack';

/** Services with a status page the outage runbook can poll. */
export type StatusPageName = SmsProviderName | EmailProviderName | 'slack';

export interface Providers {
  sms: Record<SmsProviderName, SmsProvider>;
  email: Record<EmailProviderName, EmailProvider>;
  /** @slack/web-api client; its retries are short (see clients.ts) and 429s are raised */
  slack: WebClient;
  statusPage(provider: StatusPageName): Promise<ProviderStatus>;
  hcaptcha: { verify(responseToken: string, remoteIp?: string): Promise<CaptchaResult> };
  /** drops pooled connections (SES, the sandbox keep-alive agent) */
  close(): Promise<void>;
}

export function createProviders(config: Config, logger: Logger): Providers {
  const p = config.providers;
  const clients = createSdkClients(config, logger);
  const log = logger.child({ component: 'providers' });
  const timeoutMs = p.timeoutMs;

  return {
    sms: {
      twilio: new TwilioSms(clients.twilio, { from: p.twilio.from, timeoutMs, logger: log }),
      plivo: new PlivoSms(clients.plivo, {
        from: p.plivo.from,
        timeoutMs,
        logger: log,
        ...(p.plivo.sandbox ? { defaultCallbackUrl: `${p.sandboxUrl}/sandbox/callbacks/plivo` } : {}),
      }),
    },
    email: {
      sendgrid: new SendGridEmail(clients.sendgrid, { from: p.emailFrom, timeoutMs, logger: log }),
      ses: new SesEmail(clients.ses, { from: p.emailFrom, timeoutMs, logger: log }),
    },
    slack: clients.slack,
    statusPage: (provider) => fetchStatusPage(clients.statusUrl(provider), timeoutMs),
    hcaptcha: {
      verify: (responseToken, remoteIp) =>
        verifyHcaptcha(
          clients.hcaptchaVerifyUrl,
          timeoutMs,
          { secret: p.hcaptcha.secret, siteKey: p.hcaptcha.siteKey },
          responseToken,
          remoteIp,
        ),
    },
    async close() {
      clients.close();
    },
  };
}
