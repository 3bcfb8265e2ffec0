import type { BlockLimits } from '../auth/blocklist';
import { canonicalLocale, loadCatalog, TemplateError } from '../auth/messageCatalog';
import type { MessageSettings } from '../auth/messages';
import { CANARY_CHANNELS, type CanaryChannel } from '../shared/canary';
import { isRole, type Role } from '../shared/roles';
import { durationMs } from '../shared/format';
import { SLACK_WINDOW_SECONDS } from '../incidents/slackSignature';
import type { RetentionTable } from '../shared/retention';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import envSchema from 'env-schema';
import { temporalTransport } from '../temporal/connectionOptions';
import { budgetConfig, type BudgetConfig } from './budgets';
import { smsPumpingConfig, type SmsPumpingConfig } from './smsPumping';
import { overloadConfig, type OverloadConfig } from './overload';
import { ConfigSchema, type Env } from './schema';

export { ConfigSchema };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ProviderEndpoint {
  /** true when no real credentials are configured and the SDK talks to the sandbox */
  sandbox: boolean;
}

export interface Config {
  dataDir: string;
  toolsDir: string;
  /** `development` lets the provider sandbox stand in for missing credentials */
  env: 'production' | 'development';
  host: string;
  /** `integrations`: Slack and Alertmanager's own listener, when they have one */
  ports: { public: number; admin: number; metrics: number; sandbox: number; integrations?: number };
  publicBaseUrl: string;
  /** the `iss` of the tokens signed for apps, and the discovery document's issuer (no trailing slash) */
  issuer: string;
  adminToken: string;
  trustedProxies: string[];
  /** the users API's country for national phone numbers; unset = international only */
  defaultPhoneCountry?: string;
  /** registered apps: the one an initiate naming none belongs to (unset: every initiate names one) */
  apps: { defaultClientId?: string };
  /** the broadest IP block anyone may add */
  blockLimits: BlockLimits;
  /** an IPv6 /48's rate limit as a multiple of the per-IP (per /64) one */
  rateLimitV6SiteFactor: number;
  /** admission control and refusal aggregation (docs/scaling.md#load-shedding) */
  overload: OverloadConfig;
  /** the destination and account guess budgets, and the SMS countries (docs/security.md) */
  budgets: BudgetConfig;
  /** SMS pumping: conversion per number prefix, and the blocks it adds (docs/delivery.md#sms-pumping) */
  smsPumping: SmsPumpingConfig;
  logLevel: Env['LOG_LEVEL'];
  database: {
    url?: string;
    poolMax: number;
    poolMaxIdle: number;
    /** failover candidates besides DATABASE_URL (WARDEN_DATABASE_URLS) */
    candidates: string[];
    watchIntervalMs: number;
    connMaxLifetimeS: number;
    statementTimeoutMs: number;
    embeddedPort: number;
  };
  temporal: {
    address: string;
    namespace: string;
    uiPort: number;
    taskQueue: string;
    cli?: string;
    testServer?: string;
    /** unset = plaintext (the dev server) */
    tls?: TemporalTls;
    /** sent as `authorization: Bearer <key>` on every call (Temporal Cloud); implies `tls` */
    apiKey?: string;
  };
  keys: { keyringFile?: string; keyring?: string; payloadKeys?: string; payloadKeysFile?: string };
  /** `token` decodes only, `encodeToken` encodes only */
  codec: { auth: 'token' | 'none'; token?: string; encodeToken?: string; corsOrigins: string[] };
  tracing: { otlpEndpoint?: string; serviceName: string };
  incidents: {
    contactsFile?: string;
    alertmanagerToken?: string;
    prometheusUrl?: string;
    alertRulesFile: string;
    checklistMetricsUrls: string[];
    /** p95 targets in ms: generation, validation, provider calls */
    p95TargetsMs: { generation: number; validation: number; provider: number };
  };
  runbooks: {
    /** severities at which destructive steps wait for approval (P0 containment never waits) */
    approvalSeverities: Array<'P0' | 'P1' | 'P2' | 'P3'>;
    leakScanLogFiles: string[];
  };
  delivery: {
    /** the public base URL given to providers for status callbacks */
    callbackBaseUrl: string;
    sendgridWebhookPublicKey?: string;
    sesSnsToken?: string;
    sesSnsSigningCert?: string;
    sesSnsTopicArn?: string;
    /** the secret path segment of the SendGrid Inbound Parse URL (the canary's email) */
    sendgridInboundToken?: string;
    /** the SNS topic of the SES receipt rule (the canary's email), when pinned */
    sesInboundTopicArn?: string;
    /** per channel: how long a taken send waits for its receipt before the backup re-sends it (0: never) */
    receiptDeadlineMs: Record<'sms' | 'email', number>;
  };
  /** the delivery canary (src/canary); undefined when WARDEN_CANARY_USER is unset */
  canary?: {
    user: string;
    intervalSeconds: number;
    timeoutMs: number;
    /** WARDEN_CANARY_CHANNELS; undefined: every channel the canary user has a contact for */
    channels?: CanaryChannel[];
  };
  /** retention (src/retention, docs/operations.md#retention) */
  retention: RetentionConfig;
  /** data-subject requests (docs/privacy.md): how long an export stays downloadable */
  privacy: { exportTtlMs: number };
  /** the templates of the messages people read, checked at load (docs/messages.md) */
  messages: MessageSettings;
  /** the closed-workflow retention `npm start` gives its Temporal dev server's namespace */
  devTemporalRetentionSeconds: number;
  providers: {
    sandboxUrl: string;
    timeoutMs: number;
    statusUrlTemplate: string;
    twilio: ProviderEndpoint & { accountSid: string; authToken: string; from: string };
    plivo: ProviderEndpoint & { authId: string; authToken: string; from: string };
    sendgrid: ProviderEndpoint & { apiKey: string };
    ses: ProviderEndpoint & { region: string; accessKeyId: string; secretAccessKey: string };
    emailFrom: string;
    slack: ProviderEndpoint & {
      botToken: string;
      signingSecret?: string;
      channel: string;
      /** the only workspace accepted; unset = the Slack endpoints are not configured */
      teamId?: string;
      /** roles of Slack users (`U…`, `W…`) and user groups (`S…`) */
      roles: SlackRoles;
      /** Slack-opened incidents this severe or worse, by a non-responder, wait before their runbook */
      approvalSeverity: 'P0' | 'P1' | 'P2' | 'P3';
    };
    hcaptcha: ProviderEndpoint & { secret: string; siteKey: string };
  };
}

export interface RetentionConfig {
  intervalSeconds: number;
  /** rows per delete statement */
  batch: number;
  /** how long each table's rows are kept, in ms; null: for ever */
  horizonsMs: Record<RetentionTable, number | null>;
}

type Credentials = Record<string, string | undefined>;

/** How Warden reaches the Temporal frontend over TLS; the files are read once, at config load. */
export interface TemporalTls {
  /** the CA of the frontend's certificate; unset = the system's trusted roots */
  ca?: Buffer;
  /** mTLS: this client's certificate and private key */
  clientCert?: { crt: Buffer; key: Buffer };
  /** the name the frontend's certificate is checked against (and the SNI), instead of the address's host */
  serverName?: string;
}

export interface SlackRoles {
  users: Record<string, Role>;
  groups: Record<string, Role>;
}

/** `U0AAA=admin,S0BBB=responder`; a malformed entry names the variable, not the whole value. */
export function parseSlackRoles(value: string): SlackRoles {
  const roles: SlackRoles = { users: {}, groups: {} };
  for (const entry of list(value)) {
    const match = /^([UWS][A-Z0-9]{2,30})\s*=\s*(\w+)$/.exec(entry);
    if (!match || !isRole(match[2])) {
      throw new ConfigError(
        `SLACK_ROLES: "${entry.slice(0, 60)}" is not <Slack user U…/W… or user group S…>=<viewer|responder|admin>`,
      );
    }
    const [, id, role] = match as unknown as [string, string, Role];
    roles[id.startsWith('S') ? 'groups' : 'users'][id] = role;
  }
  return roles;
}

/** A provider's credentials file: a JSON object whose keys are the env names without prefix. */
function readCredentialsFile(file: string | undefined): Credentials {
  if (!file) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    // never echo the file's contents: it holds secrets
    throw new ConfigError(`cannot read credentials file ${file}: ${(err as Error).name}`);
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new ConfigError(`credentials file ${file} must hold a JSON object`);
  }
  return parsed as Credentials;
}

/** A PEM file named by a TEMPORAL_TLS_* variable. Errors name the variable and the file, never the contents. */
function readPemFile(variable: string, file: string): Buffer {
  // a PEM pasted in place of the path (or supplied through `<variable>_FILE`) would be echoed below
  if (file.includes('\n') || file.includes('-----BEGIN')) {
    throw new ConfigError(`${variable} must be the path of a PEM file, not its contents`);
  }
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new ConfigError(`cannot read ${variable} (${file}): ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!pem.includes('-----BEGIN ')) throw new ConfigError(`${variable} (${file}) is not a PEM file`);
  return pem;
}

/**
 * TLS to Temporal: on when TEMPORAL_TLS says so or any TLS setting or the API key is set (an API
 * key is never sent in clear); an explicit `off` beside them is a contradiction, not a choice.
 */
function temporalTls(env: Env): TemporalTls | undefined {
  const implying = (
    [
      'TEMPORAL_TLS_CA',
      'TEMPORAL_TLS_CERT',
      'TEMPORAL_TLS_KEY',
      'TEMPORAL_TLS_SERVER_NAME',
      'TEMPORAL_API_KEY',
    ] as const
  ).filter((name) => env[name] !== undefined);
  const switched =
    env.TEMPORAL_TLS === undefined ? undefined : env.TEMPORAL_TLS === 'on' || env.TEMPORAL_TLS === 'true';
  if (switched === false && implying.length) {
    throw new ConfigError(
      `TEMPORAL_TLS=${env.TEMPORAL_TLS} contradicts ${implying.join(', ')}: unset one or the other`,
    );
  }
  if (!switched && !implying.length) return undefined;
  if ((env.TEMPORAL_TLS_CERT === undefined) !== (env.TEMPORAL_TLS_KEY === undefined)) {
    throw new ConfigError('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (mTLS): set both or neither');
  }
  return {
    ca: env.TEMPORAL_TLS_CA ? readPemFile('TEMPORAL_TLS_CA', env.TEMPORAL_TLS_CA) : undefined,
    clientCert:
      env.TEMPORAL_TLS_CERT && env.TEMPORAL_TLS_KEY
        ? {
            crt: readPemFile('TEMPORAL_TLS_CERT', env.TEMPORAL_TLS_CERT),
            key: readPemFile('TEMPORAL_TLS_KEY', env.TEMPORAL_TLS_KEY),
          }
        : undefined,
    serverName: env.TEMPORAL_TLS_SERVER_NAME,
  };
}

/**
 * Docker-secrets convention: `X_FILE=/run/secrets/x` supplies `X` from a file, so secrets
 * never have to sit in the environment. An explicit `X` wins; an empty file supplies nothing.
 */
function withFileSecrets(source: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const data: Record<string, string | undefined> = { ...source };
  for (const key of Object.keys(ConfigSchema.properties)) {
    const file = source[`${key}_FILE`];
    if (data[key] === undefined && file) {
      try {
        const value = readFileSync(file, 'utf8').trim();
        // an empty file is a secret not yet written: the setting stays unset
        if (value) data[key] = value;
      } catch (err) {
        throw new ConfigError(`cannot read ${key}_FILE (${file}): ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
  }
  return data;
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `90s`, `5m`, `1h` in seconds; a canary more often than once a minute would eat the user's rate limit. */
function canaryInterval(value: string): number {
  // the schema's pattern admits only what durationMs reads
  const seconds = durationMs(value)! / 1000;
  if (seconds < 60) throw new ConfigError('WARDEN_CANARY_INTERVAL must be at least 1m');
  return seconds;
}

/**
 * WARDEN_ISSUER, the token issuer: an http(s) URL without credentials, query or fragment, kept
 * without its trailing slash so `<issuer>/.well-known/...` is well formed and an app compares
 * `iss` against exactly the string the discovery document shows.
 */
function issuerUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (
    !url ||
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    /[?#]/.test(value) ||
    url.username ||
    url.password
  ) {
    throw new ConfigError('WARDEN_ISSUER must be an absolute http(s) URL without credentials, query or fragment');
  }
  return value.replace(/\/+$/, '');
}

/** A retention horizon in ms (null: `off`, kept for ever), at least `minMs` when set. */
function horizon(variable: string, value: string, minMs = 1000): number | null {
  if (value === 'off') return null;
  // the schema's pattern admits only what durationMs reads
  const ms = durationMs(value)!;
  if (ms < minMs) throw new ConfigError(`${variable} must be at least ${minMs / 1000}s (or off)`);
  return ms;
}

function retentionConfig(env: Env): RetentionConfig {
  const delivery = horizon('WARDEN_RETENTION_DELIVERY', env.WARDEN_RETENTION_DELIVERY);
  return {
    intervalSeconds: durationMs(env.WARDEN_RETENTION_INTERVAL)! / 1000,
    batch: env.WARDEN_RETENTION_BATCH,
    horizonsMs: {
      auth_challenges: horizon('WARDEN_RETENTION_CHALLENGES', env.WARDEN_RETENTION_CHALLENGES),
      challenge_validation_attempts: horizon(
        'WARDEN_RETENTION_VALIDATION_ATTEMPTS',
        env.WARDEN_RETENTION_VALIDATION_ATTEMPTS,
      ),
      rate_limit_attempts: horizon('WARDEN_RETENTION_RATE_LIMIT_ATTEMPTS', env.WARDEN_RETENTION_RATE_LIMIT_ATTEMPTS),
      delivery_attempts: delivery,
      delivery_failures: delivery,
      // a signature forgotten while Slack's timestamp check still accepts its request could be replayed
      slack_request_signatures: horizon(
        'WARDEN_RETENTION_SLACK_SIGNATURES',
        env.WARDEN_RETENTION_SLACK_SIGNATURES,
        2 * SLACK_WINDOW_SECONDS * 1000,
      ),
      canary_runs: horizon('WARDEN_RETENTION_CANARY_RUNS', env.WARDEN_RETENTION_CANARY_RUNS),
      audit_events: horizon('WARDEN_RETENTION_AUDIT_EVENTS', env.WARDEN_RETENTION_AUDIT_EVENTS),
    },
  };
}

/**
 * The message templates, read and checked here: a broken or incomplete one stops every process
 * at start with its file and key named, instead of failing a user's sign-in later.
 */
function messageSettings(env: Env): MessageSettings {
  let catalog;
  try {
    catalog = loadCatalog({
      overrideDir: env.WARDEN_TEMPLATES_DIR ? path.resolve(env.WARDEN_TEMPLATES_DIR) : undefined,
    });
  } catch (err) {
    if (err instanceof TemplateError) throw new ConfigError(`message templates: ${err.message}`);
    throw err;
  }
  const defaultLocale = canonicalLocale(env.WARDEN_DEFAULT_LOCALE);
  if (!defaultLocale || !catalog.locales.has(defaultLocale))
    throw new ConfigError(
      `WARDEN_DEFAULT_LOCALE names a locale without templates (there are: ${[...catalog.locales.keys()].join(', ')})`,
    );
  return { catalog, defaultLocale, productName: env.WARDEN_PRODUCT_NAME, supportEmail: env.WARDEN_SUPPORT_EMAIL };
}

/** A closed workflow's history stays readable at least an hour: long enough to look at what just ran. */
function devTemporalRetention(value: string): number {
  const seconds = durationMs(value)! / 1000;
  if (seconds < 3600) throw new ConfigError('WARDEN_DEV_TEMPORAL_RETENTION must be at least 1h');
  return seconds;
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Reads and validates the environment. Throws ConfigError naming the offending variables,
 * never their values.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  let env: Env;
  try {
    env = envSchema<Env>({ schema: ConfigSchema, data: withFileSecrets(source), dotenv: false });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }

  const twilioFile = readCredentialsFile(env.TWILIO_CREDENTIALS_FILE);
  const plivoFile = readCredentialsFile(env.PLIVO_CREDENTIALS_FILE);
  const sendgridFile = readCredentialsFile(env.SENDGRID_CREDENTIALS_FILE);
  const sesFile = readCredentialsFile(env.SES_CREDENTIALS_FILE);
  const slackFile = readCredentialsFile(env.SLACK_CREDENTIALS_FILE);

  const twilioSid = env.TWILIO_ACCOUNT_SID ?? twilioFile.account_sid;
  const twilioToken = env.TWILIO_AUTH_TOKEN ?? twilioFile.auth_token;
  const plivoId = env.PLIVO_AUTH_ID ?? plivoFile.auth_id;
  const plivoToken = env.PLIVO_AUTH_TOKEN ?? plivoFile.auth_token;
  const sendgridKey = env.SENDGRID_API_KEY ?? sendgridFile.api_key;
  const sesKeyId = env.SES_ACCESS_KEY_ID ?? sesFile.access_key_id;
  const sesSecret = env.SES_SECRET_ACCESS_KEY ?? sesFile.secret_access_key;
  const slackToken = env.SLACK_BOT_TOKEN ?? slackFile.bot_token;
  const slackSigning = env.SLACK_SIGNING_SECRET ?? slackFile.signing_secret;

  const sandboxUrl = (env.WARDEN_SANDBOX_URL ?? `http://127.0.0.1:${env.WARDEN_SANDBOX_PORT}`).replace(/\/+$/, '');
  const publicHost = env.WARDEN_HOST === '0.0.0.0' || env.WARDEN_HOST === '::' ? '127.0.0.1' : env.WARDEN_HOST;
  const dataDir = path.resolve(env.WARDEN_DATA_DIR);
  const publicBaseUrl = (env.WARDEN_PUBLIC_BASE_URL ?? `http://${publicHost}:${env.WARDEN_PUBLIC_PORT}`).replace(
    /\/+$/,
    '',
  );
  const issuer = env.WARDEN_ISSUER ? issuerUrl(env.WARDEN_ISSUER) : publicBaseUrl;
  if (env.WARDEN_CODEC_AUTH === 'none' && !isLoopback(env.WARDEN_HOST)) {
    throw new ConfigError('WARDEN_CODEC_AUTH=none is only allowed while WARDEN_HOST is a loopback address');
  }

  return Object.freeze({
    dataDir,
    toolsDir: path.resolve(env.WARDEN_TOOLS_DIR),
    env: env.WARDEN_ENV,
    host: env.WARDEN_HOST,
    ports: {
      public: env.WARDEN_PUBLIC_PORT,
      admin: env.WARDEN_ADMIN_PORT,
      metrics: env.WARDEN_METRICS_PORT,
      sandbox: env.WARDEN_SANDBOX_PORT,
      integrations: env.WARDEN_INTEGRATIONS_PORT,
    },
    publicBaseUrl,
    issuer,
    adminToken: env.WARDEN_ADMIN_TOKEN,
    trustedProxies: list(env.WARDEN_TRUSTED_PROXIES),
    defaultPhoneCountry: env.WARDEN_DEFAULT_PHONE_COUNTRY,
    apps: { defaultClientId: env.WARDEN_DEFAULT_APP || undefined },
    blockLimits: { minPrefixV4: env.WARDEN_BLOCK_MIN_PREFIX_V4, minPrefixV6: env.WARDEN_BLOCK_MIN_PREFIX_V6 },
    rateLimitV6SiteFactor: env.WARDEN_RATE_LIMIT_V6_48_FACTOR,
    overload: overloadConfig(env),
    budgets: budgetConfig(env, (message) => new ConfigError(message)),
    smsPumping: smsPumpingConfig(env, (message) => new ConfigError(message)),
    logLevel: env.LOG_LEVEL,
    database: {
      url: env.DATABASE_URL,
      poolMax: env.WARDEN_DB_POOL_MAX,
      poolMaxIdle: Math.min(env.WARDEN_DB_POOL_MAX_IDLE, env.WARDEN_DB_POOL_MAX),
      candidates: list(env.WARDEN_DATABASE_URLS ?? ''),
      watchIntervalMs: env.WARDEN_DB_WATCH_INTERVAL_MS,
      connMaxLifetimeS: env.WARDEN_DB_CONN_MAX_LIFETIME_S,
      statementTimeoutMs: env.WARDEN_DB_STATEMENT_TIMEOUT_MS,
      embeddedPort: env.WARDEN_EMBEDDED_PG_PORT,
    },
    temporal: {
      address: env.TEMPORAL_ADDRESS,
      namespace: env.TEMPORAL_NAMESPACE,
      uiPort: env.TEMPORAL_UI_PORT,
      taskQueue: env.WARDEN_TASK_QUEUE,
      cli: env.TEMPORAL_CLI,
      testServer: env.TEMPORAL_TEST_SERVER,
      tls: temporalTls(env),
      apiKey: env.TEMPORAL_API_KEY,
    },
    keys: {
      keyringFile: env.WARDEN_KEYRING_FILE,
      keyring: env.WARDEN_KEYRING,
      payloadKeys: env.WARDEN_PAYLOAD_KEYS,
      payloadKeysFile: env.WARDEN_PAYLOAD_KEYS_FILE,
    },
    codec: {
      auth: env.WARDEN_CODEC_AUTH,
      token: env.WARDEN_CODEC_TOKEN,
      encodeToken: env.WARDEN_CODEC_ENCODE_TOKEN,
      corsOrigins: env.WARDEN_CODEC_CORS_ORIGINS
        ? list(env.WARDEN_CODEC_CORS_ORIGINS)
        : [`http://127.0.0.1:${env.TEMPORAL_UI_PORT}`, `http://localhost:${env.TEMPORAL_UI_PORT}`],
    },
    tracing: { otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: env.OTEL_SERVICE_NAME },
    incidents: {
      contactsFile: env.WARDEN_CONTACTS_FILE,
      alertmanagerToken: env.WARDEN_ALERTMANAGER_TOKEN,
      prometheusUrl: env.WARDEN_PROMETHEUS_URL?.replace(/\/+$/, ''),
      alertRulesFile: path.resolve(env.WARDEN_ALERT_RULES_FILE),
      checklistMetricsUrls: list(env.WARDEN_CHECKLIST_METRICS_URLS ?? ''),
      p95TargetsMs: {
        generation: env.WARDEN_P95_GENERATION_MS,
        validation: env.WARDEN_P95_VALIDATION_MS,
        provider: env.WARDEN_P95_PROVIDER_MS,
      },
    },
    runbooks: {
      approvalSeverities: [...new Set(list(env.WARDEN_RUNBOOK_APPROVAL_SEVERITIES))] as Array<
        'P0' | 'P1' | 'P2' | 'P3'
      >,
      leakScanLogFiles: list(env.WARDEN_LEAK_SCAN_LOG_FILES ?? ''),
    },
    delivery: {
      callbackBaseUrl: (env.WARDEN_CALLBACK_BASE_URL ?? publicBaseUrl).replace(/\/+$/, ''),
      sendgridWebhookPublicKey: env.SENDGRID_WEBHOOK_PUBLIC_KEY,
      sesSnsToken: env.SES_SNS_TOKEN,
      sesSnsSigningCert: env.SES_SNS_SIGNING_CERT,
      sesSnsTopicArn: env.SES_SNS_TOPIC_ARN,
      sendgridInboundToken: env.SENDGRID_INBOUND_TOKEN,
      sesInboundTopicArn: env.SES_INBOUND_TOPIC_ARN,
      receiptDeadlineMs: { sms: env.WARDEN_RECEIPT_DEADLINE_SMS_MS, email: env.WARDEN_RECEIPT_DEADLINE_EMAIL_MS },
    },
    ...(env.WARDEN_CANARY_USER
      ? {
          canary: {
            user: env.WARDEN_CANARY_USER,
            intervalSeconds: canaryInterval(env.WARDEN_CANARY_INTERVAL),
            timeoutMs: env.WARDEN_CANARY_TIMEOUT_MS,
            ...(env.WARDEN_CANARY_CHANNELS
              ? { channels: CANARY_CHANNELS.filter((c) => list(env.WARDEN_CANARY_CHANNELS!).includes(c)) }
              : {}),
          },
        }
      : {}),
    retention: retentionConfig(env),
    privacy: { exportTtlMs: durationMs(env.WARDEN_PRIVACY_EXPORT_TTL)! },
    messages: messageSettings(env),
    devTemporalRetentionSeconds: devTemporalRetention(env.WARDEN_DEV_TEMPORAL_RETENTION),
    providers: {
      sandboxUrl,
      timeoutMs: env.WARDEN_PROVIDER_TIMEOUT_MS,
      statusUrlTemplate: env.WARDEN_STATUS_URL_TEMPLATE ?? `${sandboxUrl}/status/%s/api/v2/status.json`,
      twilio: {
        sandbox: !(twilioSid && twilioToken),
        // the SDK insists on an AC-prefixed SID even when it talks to the sandbox
        accountSid: twilioSid ?? 'AC00000000000000000000000000000000',
        authToken: twilioToken ?? 'sandbox',
        from: env.TWILIO_FROM,
      },
      plivo: {
        sandbox: !(plivoId && plivoToken),
        authId: plivoId ?? 'MA0000000000000000SANDBOX',
        authToken: plivoToken ?? 'sandbox',
        from: env.PLIVO_FROM,
      },
      sendgrid: { sandbox: !sendgridKey, apiKey: sendgridKey ?? 'SG.sandbox' },
      ses: {
        sandbox: !(sesKeyId && sesSecret),
        region: env.SES_REGION,
        accessKeyId: sesKeyId ?? 'AKIASANDBOX',
        secretAccessKey: sesSecret ?? 'sandbox',
      },
      emailFrom: env.EMAIL_FROM,
      slack: {
        sandbox: !slackToken,
        botToken: slackToken ?? 'xoxb-sandbox',
        signingSecret: slackSigning,
        channel: env.SLACK_CHANNEL,
        teamId: env.SLACK_TEAM_ID,
        roles: parseSlackRoles(env.SLACK_ROLES),
        approvalSeverity: env.SLACK_APPROVAL_SEVERITY,
      },
      hcaptcha: {
        sandbox: !env.HCAPTCHA_SECRET,
        secret: env.HCAPTCHA_SECRET ?? '0x0000000000000000000000000000000000000000',
        siteKey: env.HCAPTCHA_SITE_KEY ?? '10000000-ffff-ffff-ffff-000000000001',
      },
    },
  });
}

/** What is safe to print at startup: no tokens, no credentials, no connection strings. */
export function describeConfig(config: Config): Record<string, unknown> {
  const p = config.providers;
  return {
    ports: config.ports,
    temporal: {
      address: config.temporal.address,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      transport: temporalTransport(config.temporal),
    },
    database: config.database.url ? 'DATABASE_URL' : `embedded (port ${config.database.embeddedPort})`,
    providers: Object.fromEntries(
      (['twilio', 'plivo', 'sendgrid', 'ses', 'slack', 'hcaptcha'] as const).map((name) => [
        name,
        p[name].sandbox ? `sandbox ${p.sandboxUrl}` : 'live',
      ]),
    ),
  };
}
