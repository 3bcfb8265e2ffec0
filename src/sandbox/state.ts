import { randomBytes } from 'node:crypto';

/** Services whose requests the sandbox can fault. Status pages are read-only and never fault. */
export const FAULTABLE = ['twilio', 'plivo', 'sendgrid', 'ses', 'slack', 'hcaptcha'] as const;
export type SandboxProvider = (typeof FAULTABLE)[number];

export const INDICATORS = ['none', 'minor', 'major', 'critical'] as const;
export type Indicator = (typeof INDICATORS)[number];

/**
 * error: answer `status`; timeout: hold the request and drop it; permanent: the provider's
 * "invalid recipient"; delay: accept and record the message but answer only after `delayMs`
 * (a worker killed meanwhile has sent it without knowing); undelivered: accept it, then
 * report it undeliverable through the provider's status callback or event webhook;
 * no_receipt: accept and record it, and never send its status callback or event (a provider
 * that went silent); late_receipt: accept and record it, and report it delivered only after
 * `delayMs`.
 */
export type FaultMode = 'error' | 'timeout' | 'permanent' | 'delay' | 'undelivered' | 'no_receipt' | 'late_receipt';
export const FAULT_MODES: readonly FaultMode[] = [
  'error',
  'timeout',
  'permanent',
  'delay',
  'undelivered',
  'no_receipt',
  'late_receipt',
];
/** modes under which the provider still accepts the message */
export const ACCEPTING_MODES: readonly FaultMode[] = ['delay', 'undelivered', 'no_receipt', 'late_receipt'];
/** modes that take `delayMs` */
export const DELAYING_MODES: readonly FaultMode[] = ['delay', 'late_receipt'];

export interface Fault {
  provider: SandboxProvider;
  mode: FaultMode;
  /** HTTP status answered in `error` mode */
  status: number;
  /** seconds, sent as Retry-After when status is 429 */
  retryAfter?: number;
  /** calls left before the fault clears itself; undefined means until cleared */
  remaining?: number;
  /** how late a `delay` fault answers, or a `late_receipt` fault reports */
  delayMs?: number;
}

/** An account-level event webhook (SendGrid Event Webhook, SES events through SNS). */
export type WebhookProvider = 'sendgrid' | 'ses';
export interface Webhook {
  provider: WebhookProvider;
  url: string;
  /** PEM private key the sandbox signs with (ECDSA P-256 for SendGrid, RSA for SNS) */
  privateKey: string;
  /** what the provider shows its customer: base64 DER (SendGrid) or PEM (SNS) */
  publicKey: string;
}

/**
 * A number with an incoming-message webhook, as an operator configures one at the provider
 * that owns it (the canary's phone): every SMS sent to it, by any provider, comes back to
 * `url` as that provider's inbound webhook, signed with `authToken`.
 */
export interface InboundNumber {
  number: string;
  provider: 'twilio' | 'plivo';
  url: string;
  authToken: string;
}

/**
 * A mailbox with inbound email, as an operator configures receiving for the canary's address:
 * every email the sandbox's `provider` delivers to it comes back to `url`, as SendGrid Inbound
 * Parse posts it (sendgrid; the URL carries its own secret path token) or as an SES receipt
 * through SNS signed with `privateKey` (ses).
 */
export interface InboundMailbox {
  address: string;
  provider: 'sendgrid' | 'ses';
  url: string;
  /** PEM private key SNS signs with (ses) */
  privateKey?: string;
  /** what the provider shows its customer: the SNS signing key's PEM public half (ses) */
  publicKey?: string;
}

/** One outbox entry, in exactly the shape `GET /sandbox/messages` promises. */
export interface OutboxMessage {
  id: string;
  provider: 'twilio' | 'plivo' | 'sendgrid' | 'ses';
  channel: 'sms' | 'email';
  to: string;
  subject: string | null;
  /** the text (an SMS, an email's plain-text part) */
  body: string;
  /** an email's HTML part, when it had one */
  html?: string;
  idempotency_key: string | null;
  created_at: string;
}

export interface SlackCall {
  method: string;
  channel: string | null;
  text: string | null;
  blocks: unknown;
  thread_ts: string | null;
  ts: string;
  /** views.open / views.update: the view, and the trigger or view it was given */
  view?: unknown;
  trigger_id?: string | null;
  view_id?: string | null;
  /** chat.postEphemeral: who saw it */
  user?: string | null;
  created_at: string;
}

export type RequestOutcome = 'accepted' | 'deduplicated' | 'faulted' | 'rejected';

/** What `GET /sandbox/requests` shows: who called what and what happened, never a body. */
export interface RequestRecord {
  seq: number;
  provider: SandboxProvider | 'statuspage';
  method: string;
  path: string;
  outcome: RequestOutcome;
  status: number;
  fault: FaultMode | null;
  idempotency_key: string | null;
  created_at: string;
}

interface Remembered {
  ids: string[];
  response: unknown;
}

const STATUS_DESCRIPTIONS: Record<Indicator, string> = {
  none: 'All Systems Operational',
  minor: 'Minor Service Outage',
  major: 'Partial System Outage',
  critical: 'Major Service Outage',
};

/** Drops the oldest entries of an insertion-ordered map beyond `max`. */
function trimMap<K, V>(map: Map<K, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) break;
    map.delete(key);
  }
}

export interface SandboxStateOptions {
  /** newest entries kept in the outbox, the Slack log, the request log and the idempotency index */
  maxEntries?: number;
  /** upper bound on how long a `timeout` fault holds a request, so nothing waits forever */
  holdCapMs?: number;
  /** send Twilio/Plivo delivery callbacks after accepting a message */
  callbacks?: boolean;
}

/**
 * Everything the sandbox remembers. One instance per sandbox server, so parallel tests that
 * each start their own sandbox never see each other's messages or faults.
 */
export class SandboxState {
  readonly maxEntries: number;
  readonly holdCapMs: number;
  callbacksEnabled: boolean;

  private outbox: OutboxMessage[] = [];
  private slack: SlackCall[] = [];
  private requests: RequestRecord[] = [];
  private seq = 0;
  private faults = new Map<SandboxProvider, Fault>();
  private indicators = new Map<string, Indicator>();
  private idempotency = new Map<string, Remembered>();
  private holds = new Set<() => void>();
  private webhooks = new Map<WebhookProvider, Webhook>();
  private inbound = new Map<string, InboundNumber>();
  private mailboxes = new Map<string, InboundMailbox>();
  private slackCounter = 0;
  private usergroups = new Map<string, string[]>();
  private closed = false;

  constructor(options: SandboxStateOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.holdCapMs = options.holdCapMs ?? 60_000;
    this.callbacksEnabled = options.callbacks ?? true;
  }

  // ---- outbox -------------------------------------------------------------------------------

  addMessage(message: Omit<OutboxMessage, 'created_at'>): OutboxMessage {
    const entry: OutboxMessage = { ...message, created_at: new Date().toISOString() };
    this.outbox.push(entry);
    if (this.outbox.length > this.maxEntries) this.outbox.splice(0, this.outbox.length - this.maxEntries);
    return entry;
  }

  /** Newest first; `to` matches exactly (phone numbers) or case-insensitively (emails). */
  messages(to?: string): OutboxMessage[] {
    const wanted = to?.toLowerCase();
    return this.outbox.filter((m) => wanted === undefined || m.to.toLowerCase() === wanted).reverse();
  }

  clearMessages(): void {
    this.outbox = [];
    this.idempotency.clear();
  }

  // ---- idempotency --------------------------------------------------------------------------

  /** The answer given the first time this provider saw this key, if it still remembers it. */
  recall(provider: SandboxProvider, key: string | null): Remembered | undefined {
    return key ? this.idempotency.get(`${provider}\u0000${key}`) : undefined;
  }

  remember(provider: SandboxProvider, key: string | null, ids: string[], response: unknown): void {
    if (!key) return;
    this.idempotency.set(`${provider}\u0000${key}`, { ids, response });
    trimMap(this.idempotency, this.maxEntries);
  }

  // ---- request log --------------------------------------------------------------------------

  recordRequest(entry: Omit<RequestRecord, 'seq' | 'created_at'>): void {
    this.seq += 1;
    this.requests.push({ seq: this.seq, ...entry, created_at: new Date().toISOString() });
    if (this.requests.length > this.maxEntries) this.requests.splice(0, this.requests.length - this.maxEntries);
  }

  requestLog(): RequestRecord[] {
    return [...this.requests].reverse();
  }

  // ---- faults -------------------------------------------------------------------------------

  /** A new fault for a provider replaces the previous one. */
  setFault(fault: Fault): void {
    this.faults.set(fault.provider, { ...fault });
  }

  clearFaults(provider?: SandboxProvider): void {
    if (provider) this.faults.delete(provider);
    else this.faults.clear();
  }

  listFaults(): Fault[] {
    return [...this.faults.values()].map((f) => ({ ...f }));
  }

  /** The fault that fires for this call, counting it down; undefined when the call goes through. */
  takeFault(provider: SandboxProvider): Fault | undefined {
    const fault = this.faults.get(provider);
    if (!fault) return undefined;
    if (fault.remaining !== undefined) {
      fault.remaining -= 1;
      if (fault.remaining <= 0) this.faults.delete(provider);
    }
    return { ...fault };
  }

  // ---- event webhooks -----------------------------------------------------------------------

  setWebhook(webhook: Webhook): void {
    this.webhooks.set(webhook.provider, { ...webhook });
  }

  webhook(provider: WebhookProvider): Webhook | undefined {
    return this.webhooks.get(provider);
  }

  listWebhooks(): Webhook[] {
    return [...this.webhooks.values()].map((w) => ({ ...w }));
  }

  clearWebhooks(provider?: WebhookProvider): void {
    if (provider) this.webhooks.delete(provider);
    else this.webhooks.clear();
  }

  // ---- inbound numbers ----------------------------------------------------------------------

  /** Numbers are compared by digits: Plivo writes them without the +. */
  setInbound(entry: InboundNumber): void {
    this.inbound.set(entry.number.replace(/\D/g, ''), { ...entry });
  }

  inboundFor(to: string): InboundNumber | undefined {
    return this.inbound.get(to.replace(/\D/g, ''));
  }

  listInbound(): InboundNumber[] {
    return [...this.inbound.values()].map((n) => ({ ...n }));
  }

  clearInbound(): void {
    this.inbound.clear();
  }

  // ---- inbound mailboxes --------------------------------------------------------------------

  /** One per address and provider; addresses compare case-insensitively. */
  setMailbox(entry: InboundMailbox): void {
    this.mailboxes.set(`${entry.provider}\u0000${entry.address.toLowerCase()}`, { ...entry });
  }

  mailboxFor(provider: InboundMailbox['provider'], address: string): InboundMailbox | undefined {
    return this.mailboxes.get(`${provider}\u0000${address.toLowerCase()}`);
  }

  listMailboxes(): InboundMailbox[] {
    return [...this.mailboxes.values()].map((m) => ({ ...m }));
  }

  clearMailboxes(): void {
    this.mailboxes.clear();
  }

  // ---- status pages -------------------------------------------------------------------------

  setIndicator(provider: string, indicator: Indicator): void {
    this.indicators.set(provider, indicator);
  }

  status(provider: string): { indicator: Indicator; description: string } {
    const indicator = this.indicators.get(provider) ?? 'none';
    return { indicator, description: STATUS_DESCRIPTIONS[indicator] };
  }

  // ---- slack --------------------------------------------------------------------------------

  /** Slack timestamps are "seconds.micros" and unique per channel; a counter keeps them unique. */
  nextSlackTs(): string {
    this.slackCounter = (this.slackCounter + 1) % 1_000_000;
    return `${Math.floor(Date.now() / 1000)}.${String(this.slackCounter).padStart(6, '0')}`;
  }

  addSlackCall(call: Omit<SlackCall, 'created_at'>): void {
    this.slack.push({ ...call, created_at: new Date().toISOString() });
    if (this.slack.length > this.maxEntries) this.slack.splice(0, this.slack.length - this.maxEntries);
  }

  /** Members of a Slack user group, as usergroups.users.list answers them. */
  setSlackUsergroup(id: string, users: string[]): void {
    this.usergroups.set(id, [...new Set(users)]);
  }

  slackUsergroup(id: string): string[] | undefined {
    return this.usergroups.get(id);
  }

  slackCalls(): SlackCall[] {
    return [...this.slack].reverse();
  }

  // ---- held requests (timeout faults) -------------------------------------------------------

  /**
   * Resolves when the request should stop being held: the client went away, the cap passed,
   * or the sandbox is closing. Held requests must never keep a server (or a test run) alive.
   */
  hold(clientGone: Promise<void>, ms = this.holdCapMs): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.holds.delete(release);
        resolve();
      };
      const timer = setTimeout(release, Math.min(ms, this.holdCapMs));
      timer.unref();
      this.holds.add(release);
      void clientGone.then(release);
    });
  }

  releaseHolds(): void {
    this.closed = true;
    for (const release of [...this.holds]) release();
  }

  get heldCount(): number {
    return this.holds.size;
  }
}

/** Provider-looking ids: an uppercase prefix and hex, like Twilio's SM + 32 hex digits. */
export function hexId(prefix: string, bytes = 16): string {
  return `${prefix}${randomBytes(bytes).toString('hex')}`;
}
