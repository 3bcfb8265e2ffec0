/**
 * What production refuses. Without a provider's credentials its SDK talks to the provider
 * sandbox, which is what development wants and what would, in production, deliver no code and
 * page nobody while looking healthy. So with WARDEN_ENV=production (the default) every entry
 * point checks the configuration before it starts anything, and names every problem at once.
 */
import { ConfigError, type Config } from './index';

const PROVIDERS = {
  twilio: 'TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_CREDENTIALS_FILE): SMS',
  plivo: 'PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN (or PLIVO_CREDENTIALS_FILE): SMS failover',
  sendgrid: 'SENDGRID_API_KEY (or SENDGRID_CREDENTIALS_FILE): email',
  ses: 'SES_ACCESS_KEY_ID and SES_SECRET_ACCESS_KEY (or SES_CREDENTIALS_FILE): email failover',
  slack: 'SLACK_BOT_TOKEN (or SLACK_CREDENTIALS_FILE): incident alerts and pages',
  hcaptcha: 'HCAPTCHA_SECRET and HCAPTCHA_SITE_KEY: the CAPTCHA wall of abuse mitigation',
} as const;

export type ProviderName = keyof typeof PROVIDERS;

/** `live` or `sandbox` for each provider: what every entry point logs at start. */
export function providerModes(config: Config): Record<ProviderName, 'live' | 'sandbox'> {
  const p = config.providers;
  return Object.fromEntries(
    (Object.keys(PROVIDERS) as ProviderName[]).map((name) => [name, p[name].sandbox ? 'sandbox' : 'live']),
  ) as Record<ProviderName, 'live' | 'sandbox'>;
}

/** Everything that keeps this configuration from running in production; empty when it may. */
export function productionProblems(config: Config): string[] {
  const problems: string[] = [];
  const modes = providerModes(config);
  for (const name of Object.keys(PROVIDERS) as ProviderName[]) {
    if (modes[name] === 'sandbox')
      problems.push(`${name} has no credentials (${PROVIDERS[name]}) and would use the sandbox`);
  }
  if (!config.providers.slack.signingSecret)
    problems.push('SLACK_SIGNING_SECRET is not set: Slack requests cannot be verified');
  if (config.delivery.sesSnsToken && !config.delivery.sesSnsSigningCert)
    problems.push('SES_SNS_TOKEN is set without SES_SNS_SIGNING_CERT: SES events must be signature-checked');
  if (config.codec.auth === 'none') problems.push('WARDEN_CODEC_AUTH=none: the codec must require its token');
  return problems;
}

/** Throws a ConfigError listing every problem when the configuration may not run as it is. */
export function assertStartable(config: Config): void {
  if (config.env !== 'production') return;
  const problems = productionProblems(config);
  if (problems.length === 0) return;
  throw new ConfigError(
    `WARDEN_ENV=production refuses to start:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
      'Configure them, or set WARDEN_ENV=development to use the provider sandbox on purpose.',
  );
}
