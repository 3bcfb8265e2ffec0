/** Every SDK client Warden uses, built here and nowhere else. */
import { Agent } from 'node:http';
import { SESClient } from '@aws-sdk/client-ses';
import { Client as SendGridClient } from '@sendgrid/client';
import { MailService } from '@sendgrid/mail';
import { WebClient } from '@slack/web-api';
import { Client as PlivoClient } from 'plivo';
import twilio from 'twilio';
import type { Config } from '../config';
import type { Logger } from '../telemetry/logger';
import { slackLogger } from './slack';
import { WardenTwilioHttpClient } from './twilio-http';

export interface SdkClients {
  twilio: twilio.Twilio;
  plivo: PlivoClient;
  sendgrid: MailService;
  ses: SESClient;
  slack: WebClient;
  /** base URLs for the two services that have no SDK */
  statusUrl(provider: string): string;
  hcaptchaVerifyUrl: string;
  close(): void;
}

const HCAPTCHA_VERIFY = 'https://api.hcaptcha.com/siteverify';

/**
 * Builds the SDK clients. A provider whose `sandbox` flag is set (no real credentials) talks
 * to `providers.sandboxUrl` through the SDK's own base-URL override; otherwise it talks to the
 * real endpoint. SDK-level retries are off or short: Temporal owns retries and failover, and a
 * client retrying on its own would hide outages and stretch activity timeouts.
 */
export function createSdkClients(config: Config, logger: Logger): SdkClients {
  const p = config.providers;
  const timeout = p.timeoutMs;
  // Keep-alive for sandbox traffic, on an agent we own so close() can drop its sockets.
  const sandboxAgent = new Agent({ keepAlive: true, maxSockets: 64 });

  const twilioClient = twilio(p.twilio.accountSid, p.twilio.authToken, {
    httpClient: new WardenTwilioHttpClient(p.twilio.sandbox ? p.sandboxUrl : undefined, {
      timeout,
      httpAgent: p.twilio.sandbox ? sandboxAgent : undefined,
    }),
    autoRetry: false,
  });

  const plivoClient = new PlivoClient(p.plivo.authId, p.plivo.authToken, {
    timeout,
    ...(p.plivo.sandbox ? { url: `${p.sandboxUrl}/v1/Account/${p.plivo.authId}` } : {}),
  });

  // A private client: the @sendgrid/mail default export is a process-wide singleton.
  const sendgridHttp = new SendGridClient();
  sendgridHttp.setApiKey(p.sendgrid.apiKey); // resets baseUrl, so the override comes after
  if (p.sendgrid.sandbox) sendgridHttp.setDefaultRequest('baseUrl', `${p.sandboxUrl}/`);
  const sendgrid = new MailService();
  sendgrid.setClient(sendgridHttp);
  sendgrid.setTimeout(timeout);

  const ses = new SESClient({
    region: p.ses.region,
    credentials: { accessKeyId: p.ses.accessKeyId, secretAccessKey: p.ses.secretAccessKey },
    ...(p.ses.sandbox ? { endpoint: `${p.sandboxUrl}/ses` } : {}),
    maxAttempts: 1,
    requestHandler: { requestTimeout: timeout, connectionTimeout: timeout, throwOnRequestTimeout: true },
  });

  const slack = new WebClient(p.slack.botToken, {
    ...(p.slack.sandbox ? { slackApiUrl: `${p.sandboxUrl}/slack/api/` } : {}),
    timeout,
    // The default retries ten times over ~30 minutes; a caller waiting on an incident post
    // should learn about a Slack outage in seconds. 429s are surfaced, not slept on.
    retryConfig: { retries: 2, factor: 2, minTimeout: 100, maxTimeout: 1_000, randomize: true },
    rejectRateLimitedCalls: true,
    logger: slackLogger(logger),
  });

  return {
    twilio: twilioClient,
    plivo: plivoClient,
    sendgrid,
    ses,
    slack,
    statusUrl: (provider) => p.statusUrlTemplate.replace('%s', encodeURIComponent(provider)),
    hcaptchaVerifyUrl: p.hcaptcha.sandbox ? `${p.sandboxUrl}/hcaptcha/siteverify` : HCAPTCHA_VERIFY,
    close() {
      ses.destroy();
      sandboxAgent.destroy();
    },
  };
}
