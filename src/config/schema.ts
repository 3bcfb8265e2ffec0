/**
 * Every setting Warden reads from the environment, with its default written once.
 * Values that responders change during an incident (rate limits, delivery routes, channel
 * switches) live in Postgres instead, so they change at runtime without a restart.
 */
import { Type, type Static } from '@sinclair/typebox';

const port = (defaultPort: number) => Type.Integer({ minimum: 0, maximum: 65535, default: defaultPort });
const optionalString = Type.Optional(Type.String({ minLength: 1 }));
/** what durationMs (src/shared/format.ts) reads: `90s`, `5m`, `1h`, `30d` */
const DURATION = '^[1-9][0-9]{0,5}(s|m|h|d)$';
/** a retention horizon: a duration, or `off` (kept for ever) */
const HORIZON = '^([1-9][0-9]{0,5}(s|m|h|d)|off)$';

export const ConfigSchema = Type.Object({
  // where the dev stack keeps its embedded Postgres cluster, Temporal SQLite file and keys
  WARDEN_DATA_DIR: Type.String({ default: '.data' }),
  WARDEN_TOOLS_DIR: Type.String({ default: '.tools' }),
  // production: refuse to start while a provider has no credentials (it would talk to the
  // sandbox) or a development convenience is on; development: the sandbox stands in for them
  WARDEN_ENV: Type.Union([Type.Literal('production'), Type.Literal('development')], { default: 'production' }),
  WARDEN_HOST: Type.String({ default: '127.0.0.1' }),
  WARDEN_PUBLIC_PORT: port(8080),
  WARDEN_ADMIN_PORT: port(9090),
  WARDEN_METRICS_PORT: port(8888),
  // Slack and Alertmanager on a listener of their own (so that the admin port need not face
  // the internet); unset = they are served on the admin port
  WARDEN_INTEGRATIONS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  WARDEN_SANDBOX_PORT: port(8099),
  // links in emails point here; default http://<host>:<public port>
  WARDEN_PUBLIC_BASE_URL: optionalString,
  // the `iss` of the tokens Warden signs for apps and the issuer of its discovery document
  // (docs/tokens.md): an http(s) URL without query or fragment; default WARDEN_PUBLIC_BASE_URL
  WARDEN_ISSUER: optionalString,
  // Bearer token for everything under /admin/api/; no default on purpose
  WARDEN_ADMIN_TOKEN: Type.String({ minLength: 16 }),
  // comma-separated IPs or CIDRs whose X-Forwarded-For is believed
  WARDEN_TRUSTED_PROXIES: Type.String({ default: '' }),
  // the broadest block anyone may add (API, runbook, Slack): /0 is never allowed
  WARDEN_BLOCK_MIN_PREFIX_V4: Type.Integer({ minimum: 1, maximum: 32, default: 16 }),
  WARDEN_BLOCK_MIN_PREFIX_V6: Type.Integer({ minimum: 1, maximum: 128, default: 32 }),
  // IPv6 clients are limited per /64; each /48 may make this many times the per-IP limit in
  // the per-IP window (src/auth/ipBucket.ts)
  WARDEN_RATE_LIMIT_V6_48_FACTOR: Type.Integer({ minimum: 1, maximum: 1000, default: 4 }),
  // Load shedding (docs/scaling.md#load-shedding): initiates, and separately verifies, in flight
  // per API process; beyond it a request waits in a short queue or is refused with 503
  // `overloaded`. Unset = derived at start from the CPU count, one bcrypt hash's time and the
  // SLO; `off` = no limit. The queue (unset = as long as the concurrency) and its longest wait
  // (ms; unset = a quarter of the SLO); the latency admitted requests are held to; one bcrypt
  // hash at the service's cost (ms; unset = measured at start)
  WARDEN_ADMISSION_CONCURRENCY: Type.Optional(Type.String({ pattern: '^([1-9][0-9]{0,4}|off)$' })),
  WARDEN_ADMISSION_QUEUE: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
  WARDEN_ADMISSION_QUEUE_WAIT_MS: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  WARDEN_ADMISSION_SLO_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 200 }),
  WARDEN_ADMISSION_BCRYPT_MS: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000 })),
  // refused requests in the audit trail: one row per client, action, reason and window of this
  // many seconds, the later refusals' count added every this many ms and on close
  WARDEN_REFUSAL_AUDIT_WINDOW_S: Type.Integer({ minimum: 1, maximum: 86_400, default: 60 }),
  WARDEN_REFUSAL_AUDIT_FLUSH_MS: Type.Integer({ minimum: 50, maximum: 600_000, default: 5000 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),

  DATABASE_URL: optionalString,
  // the country of phone numbers written without +<country code> in the users API (ISO 3166
  // alpha-2, e.g. US); unset = only international numbers are accepted
  WARDEN_DEFAULT_PHONE_COUNTRY: Type.Optional(Type.String({ pattern: '^[A-Z]{2}$' })),
  // Budgets (docs/security.md). Messages per phone number or email address, whoever asks
  // (initiates and resends), per rolling hour and day; a device the account signed in from has
  // budgets of its own
  WARDEN_DESTINATION_MAX_PER_HOUR: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10 }),
  WARDEN_DESTINATION_MAX_PER_DAY: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
  // the countries SMS may go to, by E.164 calling code (`1,44,49`), or `*` for all; unset = the
  // calling code of WARDEN_DEFAULT_PHONE_COUNTRY, or 1 (North America) without one; empty = unset
  WARDEN_SMS_COUNTRIES: Type.Optional(
    Type.String({ pattern: '^\\s*(\\*|\\+?[0-9]{1,3}(\\s*,\\s*\\+?[0-9]{1,3})*)?\\s*$' }),
  ),
  // wrong SMS codes per account per rolling day (20: under 1% chance of a guessed code a year),
  // after how many wrong codes in a row verifies slow down, and the backoff (doubling, capped)
  WARDEN_GUESS_MAX_PER_DAY: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
  WARDEN_GUESS_FREE_FAILURES: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 3 }),
  WARDEN_GUESS_BACKOFF_BASE_S: Type.Integer({ minimum: 1, maximum: 86_400, default: 2 }),
  WARDEN_GUESS_BACKOFF_MAX_S: Type.Integer({ minimum: 1, maximum: 86_400, default: 900 }),
  // the client_id of the registered app (src/auth/apps.ts) an initiate belongs to when it names
  // none; unset or empty = every initiate must name its app (`npm start` and the tests: warden-dev)
  WARDEN_DEFAULT_APP: Type.Optional(Type.String({ pattern: '^([a-z0-9][a-z0-9._-]{2,63})?$' })),
  // the normal pool (docs/incident-response.md): 25 open connections, 5-minute lifetime
  WARDEN_DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 500, default: 25 }),
  WARDEN_DB_CONN_MAX_LIFETIME_S: Type.Integer({ minimum: 0, default: 300 }),
  WARDEN_DB_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 5000 }),
  // idle connections kept in the normal pool: 5
  WARDEN_DB_POOL_MAX_IDLE: Type.Integer({ minimum: 0, maximum: 500, default: 5 }),
  // comma-separated candidate servers (primary and replicas) for failover; DATABASE_URL is always one
  WARDEN_DATABASE_URLS: optionalString,
  // how often each process checks its server's role and the database control plane
  WARDEN_DB_WATCH_INTERVAL_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 2000 }),
  WARDEN_EMBEDDED_PG_PORT: port(5433),

  TEMPORAL_ADDRESS: Type.String({ default: '127.0.0.1:7233' }),
  TEMPORAL_NAMESPACE: Type.String({ default: 'default' }),
  TEMPORAL_UI_PORT: port(8233),
  WARDEN_TASK_QUEUE: Type.String({ default: 'warden' }),
  // path to an existing `temporal` binary; otherwise PATH, then the tools folder
  TEMPORAL_CLI: optionalString,
  TEMPORAL_TEST_SERVER: optionalString,
  // TLS to the Temporal frontend: `on`/`off`; unset = on as soon as any setting below is set
  // (`off` beside one of them is refused rather than sending certificates or a key in clear)
  TEMPORAL_TLS: Type.Optional(Type.String({ pattern: '^(on|off|true|false)$' })),
  // PEM file of the CA that signed the frontend's certificate; unset = the system's roots
  TEMPORAL_TLS_CA: optionalString,
  // mTLS: PEM files of this client's certificate and its private key, both or neither
  TEMPORAL_TLS_CERT: optionalString,
  TEMPORAL_TLS_KEY: optionalString,
  // the name the frontend's certificate must carry (and the SNI sent) when it is not the host
  // of TEMPORAL_ADDRESS
  TEMPORAL_TLS_SERVER_NAME: optionalString,
  // API key (Temporal Cloud), sent as `authorization: Bearer <key>` on every call; implies TLS
  TEMPORAL_API_KEY: optionalString,

  // Keys. The keyring file holds the key-encryption keys (versioned); data keys (OTP
  // peppers, seal keys) live wrapped in Postgres so a rotation reaches every process.
  WARDEN_KEYRING_FILE: optionalString,
  WARDEN_KEYRING: optionalString,
  // key for the Temporal payload codec (base64, 32 bytes, or a JSON keyring)
  WARDEN_PAYLOAD_KEYS: optionalString,
  WARDEN_PAYLOAD_KEYS_FILE: optionalString,

  // Providers. When real credentials are absent, the SDK is pointed at the sandbox.
  // default http://127.0.0.1:<sandbox port>
  WARDEN_SANDBOX_URL: optionalString,
  WARDEN_PROVIDER_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 5000 }),
  TWILIO_ACCOUNT_SID: optionalString,
  TWILIO_AUTH_TOKEN: optionalString,
  TWILIO_CREDENTIALS_FILE: optionalString,
  TWILIO_FROM: Type.String({ default: '+15005550006' }),
  PLIVO_AUTH_ID: optionalString,
  PLIVO_AUTH_TOKEN: optionalString,
  PLIVO_CREDENTIALS_FILE: optionalString,
  PLIVO_FROM: Type.String({ default: '+15005550007' }),
  SENDGRID_API_KEY: optionalString,
  SENDGRID_CREDENTIALS_FILE: optionalString,
  SES_REGION: Type.String({ default: 'us-east-1' }),
  SES_ACCESS_KEY_ID: optionalString,
  SES_SECRET_ACCESS_KEY: optionalString,
  SES_CREDENTIALS_FILE: optionalString,
  EMAIL_FROM: Type.String({ default: 'Warden <no-reply@warden.example>' }),
  // Messages people read (docs/messages.md): an operator's folder of templates that override the
  // shipped ones (templates/) key by key; the locale when neither the user's nor the app's has
  // templates; the product name and support address the templates show (unset: no support line)
  WARDEN_TEMPLATES_DIR: optionalString,
  WARDEN_DEFAULT_LOCALE: Type.String({ pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$', default: 'en' }),
  WARDEN_PRODUCT_NAME: Type.String({ pattern: '^[^\\u0000-\\u001f\\u007f]{1,60}$', default: 'Warden' }),
  WARDEN_SUPPORT_EMAIL: Type.Optional(
    Type.String({ pattern: '^[^\\s@<>"(),;:]+@[^\\s@<>"(),;:]+\\.[^\\s@<>"(),;:]+$' }),
  ),
  SLACK_BOT_TOKEN: optionalString,
  SLACK_SIGNING_SECRET: optionalString,
  SLACK_CREDENTIALS_FILE: optionalString,
  SLACK_CHANNEL: Type.String({ default: '#incidents' }),
  // the only Slack workspace whose requests are accepted; unset = the Slack endpoints answer
  // 503 not_configured (the dev stack and the tests use the sandbox's T0SANDBOX)
  SLACK_TEAM_ID: Type.Optional(Type.String({ pattern: '^[TE][A-Z0-9]{2,30}$' })),
  // who may do what from Slack: comma-separated `<user U…/W… or user group S…>=<viewer|responder|admin>`;
  // unset = nobody has a role (anyone in the workspace may still open an incident)
  SLACK_ROLES: Type.String({ default: '' }),
  // incidents opened from Slack at this severity or more severe by someone below responder
  // start their runbook only once a responder approves
  SLACK_APPROVAL_SEVERITY: Type.Union(
    (['P0', 'P1', 'P2', 'P3'] as const).map((s) => Type.Literal(s)),
    { default: 'P1' },
  ),
  HCAPTCHA_SECRET: optionalString,
  HCAPTCHA_SITE_KEY: optionalString,
  // status pages polled by the provider-outage runbook; %s is the provider name
  WARDEN_STATUS_URL_TEMPLATE: optionalString,
  // Delivery status callbacks. The public base URL providers call back on (Twilio
  // StatusCallback, Plivo url); default WARDEN_PUBLIC_BASE_URL. Signatures are checked against it.
  WARDEN_CALLBACK_BASE_URL: optionalString,
  // SendGrid's signed Event Webhook: the verification key SendGrid shows (base64 DER or PEM);
  // unset = the SendGrid events endpoint answers 503 not_configured
  SENDGRID_WEBHOOK_PUBLIC_KEY: optionalString,
  // SES events through SNS: the secret path segment of the subscription URL (required to accept
  // any), the signing certificate (or public key) PEM to verify signatures offline, the topic ARN
  SES_SNS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  SES_SNS_SIGNING_CERT: optionalString,
  SES_SNS_TOPIC_ARN: optionalString,
  // Inbound email for the delivery canary (docs/canary.md). SendGrid Inbound Parse is unsigned:
  // the secret path segment of its URL is all that protects it (unset = it answers 503). SES
  // receipts come through an SNS subscription authenticated like SES events (SES_SNS_TOKEN,
  // SES_SNS_SIGNING_CERT); this pins the receipt rule's topic, which is not the events' one.
  SENDGRID_INBOUND_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  SES_INBOUND_TOPIC_ARN: optionalString,
  // How long a send the provider took may go without a delivered or failed receipt before it is
  // re-sent once through the route's backup (0: never). Email receipts come later than SMS ones.
  WARDEN_RECEIPT_DEADLINE_SMS_MS: Type.Integer({ minimum: 0, default: 20000 }),
  WARDEN_RECEIPT_DEADLINE_EMAIL_MS: Type.Integer({ minimum: 0, default: 120000 }),
  // SMS pumping (docs/delivery.md#sms-pumping): how often SMS sent and codes verified per number
  // prefix are compared (`off`: never, nothing is blocked); the windows, each with the messages
  // it must hold before its conversion is judged (`1h:50,1d:300`); the verified share below
  // which a prefix is blocked (0: measure only); how old an open challenge must be to count as
  // unverified; how long a block lasts; the prefix's digits after the `+`
  WARDEN_SMS_PUMPING_INTERVAL: Type.String({ pattern: HORIZON, default: '1m' }),
  WARDEN_SMS_PUMPING_WINDOWS: Type.String({
    pattern:
      '^\\s*[1-9][0-9]{0,5}(s|m|h|d)\\s*:\\s*[1-9][0-9]{0,6}(\\s*,\\s*[1-9][0-9]{0,5}(s|m|h|d)\\s*:\\s*[1-9][0-9]{0,6})*\\s*$',
    default: '1h:50',
  }),
  WARDEN_SMS_PUMPING_MIN_CONVERSION: Type.Number({ minimum: 0, maximum: 1, default: 0.1 }),
  WARDEN_SMS_PUMPING_GRACE: Type.String({ pattern: '^[0-9]{1,6}(s|m|h|d)$', default: '1m' }),
  WARDEN_SMS_PUMPING_BLOCK: Type.String({ pattern: DURATION, default: '6h' }),
  WARDEN_SMS_PUMPING_PREFIX_DIGITS: Type.Integer({ minimum: 3, maximum: 12, default: 6 }),
  // The delivery canary (docs/canary.md): the `sub` of a user whose phone and email are the
  // operator's and answer through the providers' inbound webhooks; unset = no canary. How often it signs in
  // (`90s`, `5m`, `1h`; at least a minute) and how long it waits for the message to come back.
  WARDEN_CANARY_USER: optionalString,
  WARDEN_CANARY_INTERVAL: Type.String({ pattern: '^[1-9][0-9]*(s|m|h)$', default: '5m' }),
  WARDEN_CANARY_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 60000 }),

  // Retention (docs/operations.md#retention): how long rows are kept (`90s`, `30m`, `48h`,
  // `30d`; `off` keeps them for ever), trimmed by a schedule every WARDEN_RETENTION_INTERVAL in
  // batches of WARDEN_RETENTION_BATCH rows per statement.
  WARDEN_RETENTION_INTERVAL: Type.String({ pattern: DURATION, default: '1h' }),
  WARDEN_RETENTION_BATCH: Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 }),
  // ended challenges (an open one is never deleted)
  WARDEN_RETENTION_CHALLENGES: Type.String({ pattern: HORIZON, default: '30d' }),
  WARDEN_RETENTION_VALIDATION_ATTEMPTS: Type.String({ pattern: HORIZON, default: '90d' }),
  WARDEN_RETENTION_RATE_LIMIT_ATTEMPTS: Type.String({ pattern: HORIZON, default: '2d' }),
  // delivery_attempts (the provider call ledger) and delivery_failures
  WARDEN_RETENTION_DELIVERY: Type.String({ pattern: HORIZON, default: '90d' }),
  WARDEN_RETENTION_SLACK_SIGNATURES: Type.String({ pattern: HORIZON, default: '1d' }),
  WARDEN_RETENTION_CANARY_RUNS: Type.String({ pattern: HORIZON, default: '30d' }),
  WARDEN_RETENTION_AUDIT_EVENTS: Type.String({ pattern: HORIZON, default: '400d' }),
  // how long a user's export (docs/privacy.md) stays downloadable before it is deleted: it is
  // personal data, kept only as long as it takes to hand it over
  WARDEN_PRIVACY_EXPORT_TTL: Type.String({ pattern: DURATION, default: '7d' }),
  // how long the Temporal dev server of `npm start` keeps closed workflows (challenges,
  // incidents, runbooks, retention runs) in its namespace, at least an hour; a Temporal server of
  // one's own keeps the retention its operator gave the namespace
  WARDEN_DEV_TEMPORAL_RETENTION: Type.String({ pattern: DURATION, default: '3d' }),
  // the channels each run signs in through (`sms`, `email`, comma-separated); unset = every
  // channel the canary user has a phone or an email for
  WARDEN_CANARY_CHANNELS: Type.Optional(Type.String({ pattern: '^\\s*(sms|email)\\s*(,\\s*(sms|email)\\s*)*$' })),

  // Codec server (/codec/decode, /codec/encode on the admin port) for the Temporal UI and CLI.
  // "token": Bearer WARDEN_CODEC_TOKEN, a token that can only decode (not the admin token).
  // "none": no authentication, accepted only while WARDEN_HOST is a loopback address (dev stack).
  WARDEN_CODEC_AUTH: Type.Union([Type.Literal('token'), Type.Literal('none')], { default: 'token' }),
  WARDEN_CODEC_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  // Bearer token for /codec/encode (the CLI's `--codec-endpoint` when it sends input); the
  // decode token cannot encode and this one cannot decode; unset = encode answers 503
  WARDEN_CODEC_ENCODE_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  // browser origins of the Temporal UI allowed to call the codec; default the dev server's UI
  WARDEN_CODEC_CORS_ORIGINS: optionalString,
  // OpenTelemetry traces over OTLP/HTTP (e.g. http://jaeger:4318); unset = tracing off, no cost
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString,
  OTEL_SERVICE_NAME: Type.String({ default: 'warden' }),

  // Incidents. Contacts of the escalation paths (JSON, see deploy/contacts.example.json);
  // unset = the default contacts (docs/incident-response.md).
  WARDEN_CONTACTS_FILE: optionalString,
  // Bearer token Alertmanager presents on POST /alertmanager/webhook; no default on purpose:
  // unset, the endpoint answers 503 not_configured
  WARDEN_ALERTMANAGER_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  // the recovery checklist's "alerts configured" item: Prometheus' rules API when set,
  // otherwise the rules file
  WARDEN_PROMETHEUS_URL: optionalString,
  WARDEN_ALERT_RULES_FILE: Type.String({ default: 'deploy/prometheus/rules.yml' }),
  // comma-separated /metrics URLs the checklist reads latencies from (the API processes when
  // the worker runs apart from them); unset = this process's own registry
  WARDEN_CHECKLIST_METRICS_URLS: optionalString,
  // the performance targets (p95, docs/incident-response.md) the checklist judges against;
  // raise them only for environments that are slow by design (a laptop, CI), never to make an
  // incident go away
  WARDEN_P95_GENERATION_MS: Type.Integer({ minimum: 1, default: 500 }),
  WARDEN_P95_VALIDATION_MS: Type.Integer({ minimum: 1, default: 200 }),
  WARDEN_P95_PROVIDER_MS: Type.Integer({ minimum: 1, default: 1000 }),

  // Runbooks. Severities at which destructive runbook steps wait for a responder's
  // approval (comma-separated; containment at P0 is always approved automatically)
  WARDEN_RUNBOOK_APPROVAL_SEVERITIES: Type.String({
    default: 'P1,P2,P3',
    pattern: '^\\s*(P[0-3]\\s*(,\\s*P[0-3]\\s*)*)?$',
  }),
  // log files the compromised-token leak scan reads besides this process's recent log lines
  // (comma-separated paths, e.g. where the deployment tees the API's and workers' logs)
  WARDEN_LEAK_SCAN_LOG_FILES: optionalString,
});

export type Env = Static<typeof ConfigSchema>;
