/**
 * Registered applications (clients): every sign-in belongs to one. An app has a `client_id`,
 * the redirect URIs a sign-in may return to (an exact-match list), the browser origins that
 * may call Warden for it, the methods it may use, the lifetime of the tokens issued to it and
 * optional limits of its own on initiates and verifies. Server-side apps authenticate with API
 * keys (`wak_` and 43 base64url characters), kept like operators' tokens: shown once, stored
 * as a SHA-256 digest (src/auth/secretTokens.ts), several live at once so a key can be rotated
 * without a gap. Every change is audited with the acting operator, never with a key.
 * docs/apps.md is the operator's view of all this.
 */
import type { Database, Queryable } from '../db/database';
import { AUTH_METHODS, type AuthMethod } from '../shared/auth';
import type { Logger } from '../telemetry/logger';
import { AuditEventType, insertAudit, logAudit, type AuditEvent } from './audit';
import { liveSecretSql, newSecret, secretDigest, secretHint, secretShape, staleUseSql } from './secretTokens';

export const CLIENT_ID_PATTERN = '^[a-z0-9][a-z0-9._-]{2,63}$';
const CLIENT_ID = new RegExp(CLIENT_ID_PATTERN);
/** a language tag such as en or pt-BR, as the users' locale (migrations/0090, 0150) */
export const LOCALE_PATTERN = '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$';
const LOCALE = new RegExp(LOCALE_PATTERN);
export const APP_KEY_PREFIX = 'wak_';
const KEY_SHAPE = secretShape(APP_KEY_PREFIX);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Bounds the service holds every app to (the admin API's schemas repeat them). */
export const APP_BOUNDS = {
  nameLength: 200,
  localeLength: 35,
  urls: 50,
  urlLength: 2048,
  tokenTtlSeconds: { min: 60, max: 86_400, default: 900 },
  limitWindowSeconds: { min: 1, max: 86_400 },
  limitMaxAttempts: { min: 1, max: 1_000_000 },
  labelLength: 100,
  keyExpiresInSeconds: { min: 60, max: 10 * 366 * 86_400 },
} as const;

/** HTTP only on these hosts (a browser or native app on the operator's own machine). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
/**
 * The shapes the URL parser's leniency must not widen (it reads `https:host` and `https:///host`
 * as `https://host/`, and `127.1` as `127.0.0.1`): the text as written has to be plain. These are
 * the same rules as warden_app_urls_ok in migrations/0110_apps.sql.
 */
const HTTPS_AS_WRITTEN = /^https:\/\/[^/?#\\]/i;
const LOOPBACK_AS_WRITTEN = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:[0-9]{1,5})?([/?]|$)/i;

export interface AppLimit {
  windowSeconds: number;
  maxAttempts: number;
}

/** An app as the sign-in flow sees it. */
export interface App {
  clientId: string;
  name: string;
  redirectUris: string[];
  webOrigins: string[];
  methods: AuthMethod[];
  tokenTtlSeconds: number;
  initiateLimit: AppLimit | null;
  verifyLimit: AppLimit | null;
  /** the language of its users' messages when they have none of their own (docs/messages.md) */
  locale: string | null;
  disabled: boolean;
}

/** What may be set on an app (everything but its client_id). */
export interface AppSettings {
  name: string;
  redirectUris: string[];
  webOrigins: string[];
  methods: AuthMethod[];
  tokenTtlSeconds: number;
  initiateLimit: AppLimit | null;
  verifyLimit: AppLimit | null;
  locale: string | null;
}

/** A new app: its id, name and methods; the rest defaults to none / 900 s / no limits. */
export type AppSpec = { clientId: string; name: string; methods: AuthMethod[] } & Partial<AppSettings>;

type LimitView = { window_seconds: number; max_attempts: number } | null;

/** An app as the admin API shows it. */
export interface AppView {
  client_id: string;
  name: string;
  redirect_uris: string[];
  web_origins: string[];
  methods: AuthMethod[];
  token_ttl_seconds: number;
  initiate_limit: LimitView;
  verify_limit: LimitView;
  locale: string | null;
  disabled: boolean;
  disabled_at: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
}

/** An API key as listings show it: never the key, never its digest. */
export interface AppKeyView {
  id: string;
  client_id: string;
  hint: string;
  label: string | null;
  created_by: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  active: boolean;
}

export type AppErrorCode = 'invalid_request' | 'not_found' | 'app_exists';

export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly code: AppErrorCode,
    message: string,
    /** the admin API's name of the field at fault (snake_case) */
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface AppDeps {
  db: Database;
  logger: Logger;
}

// ---- checking what is given ---------------------------------------------------------------

const invalid = (field: string, message: string) => new AppError('invalid_request', message, field);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const FIELDS: Record<keyof AppSettings, string> = {
  name: 'name',
  redirectUris: 'redirect_uris',
  webOrigins: 'web_origins',
  methods: 'methods',
  tokenTtlSeconds: 'token_ttl_seconds',
  initiateLimit: 'initiate_limit',
  verifyLimit: 'verify_limit',
  locale: 'locale',
};

export function checkClientId(value: unknown): string {
  if (typeof value !== 'string' || !CLIENT_ID.test(value))
    throw invalid(
      'client_id',
      `client_id must be 3 to 64 of a-z 0-9 . _ - starting with a letter or digit (${CLIENT_ID_PATTERN})`,
    );
  return value;
}

/**
 * One redirect URI (`origin` false) or web origin (`origin` true): absolute, https or http on a
 * loopback host, no user or password, no wildcard, no fragment; an origin is exactly
 * scheme://host[:port] as browsers send it (lower case, no path, no default port).
 */
export function checkUrl(value: unknown, field: string, origin: boolean): string {
  const what = origin ? 'a web origin' : 'a redirect URI';
  if (typeof value !== 'string' || value === '' || value.length > APP_BOUNDS.urlLength)
    throw invalid(field, `${what} must be a URL of at most ${APP_BOUNDS.urlLength} characters`);
  const shown = JSON.stringify(value.slice(0, 100));
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f\\]/.test(value))
    throw invalid(field, `${what} must not contain spaces, control characters or backslashes: ${shown}`);
  if (value.includes('#')) throw invalid(field, `${what} must not have a fragment (#…): ${shown}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(field, `${what} must be an absolute URL: ${shown}`);
  }
  const https = url.protocol === 'https:' && HTTPS_AS_WRITTEN.test(value);
  const loopback = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname) && LOOPBACK_AS_WRITTEN.test(value);
  if (!https && !loopback)
    throw invalid(field, `${what} must be https, or http on 127.0.0.1, [::1] or localhost only: ${shown}`);
  if (url.username || url.password) throw invalid(field, `${what} must not carry a user or password: ${shown}`);
  if (url.hostname.includes('*')) throw invalid(field, `${what} cannot hold a wildcard; list each one: ${shown}`);
  if (origin && url.origin !== value)
    throw invalid(
      field,
      `a web origin is scheme://host[:port] exactly as browsers send it (${url.origin}), not ${shown}`,
    );
  return value;
}

function checkUrls(value: unknown, field: string, origin: boolean): string[] {
  if (!Array.isArray(value) || value.length > APP_BOUNDS.urls)
    throw invalid(field, `${field} must be a list of at most ${APP_BOUNDS.urls} URLs`);
  return [...new Set(value.map((v) => checkUrl(v, field, origin)))];
}

function checkLimit(value: unknown, field: string): AppLimit | null {
  if (value === null) return null;
  const { windowSeconds, maxAttempts } = (value ?? {}) as Partial<Record<keyof AppLimit, unknown>>;
  const within = (n: unknown, b: { min: number; max: number }) =>
    Number.isInteger(n) && (n as number) >= b.min && (n as number) <= b.max;
  if (
    typeof value !== 'object' ||
    !within(windowSeconds, APP_BOUNDS.limitWindowSeconds) ||
    !within(maxAttempts, APP_BOUNDS.limitMaxAttempts)
  )
    throw invalid(
      field,
      `${field} must be null or {window_seconds: 1..${APP_BOUNDS.limitWindowSeconds.max}, max_attempts: 1..${APP_BOUNDS.limitMaxAttempts.max}}`,
    );
  return { windowSeconds: windowSeconds as number, maxAttempts: maxAttempts as number };
}

/** Checks the given settings (undefined: not given), naming the field of the first fault. */
export function checkAppSettings(raw: { [K in keyof AppSettings]?: unknown }): Partial<AppSettings> {
  const out: Partial<AppSettings> = {};
  if (raw.name !== undefined) {
    const name = raw.name;
    if (typeof name !== 'string' || !name.trim() || name.length > APP_BOUNDS.nameLength || CONTROL.test(name))
      throw invalid('name', `name must be 1 to ${APP_BOUNDS.nameLength} characters without control characters`);
    out.name = name;
  }
  if (raw.redirectUris !== undefined) out.redirectUris = checkUrls(raw.redirectUris, FIELDS.redirectUris, false);
  if (raw.webOrigins !== undefined) out.webOrigins = checkUrls(raw.webOrigins, FIELDS.webOrigins, true);
  if (raw.methods !== undefined) {
    const methods = raw.methods;
    if (
      !Array.isArray(methods) ||
      methods.length === 0 ||
      !methods.every((m) => (AUTH_METHODS as readonly unknown[]).includes(m))
    )
      throw invalid('methods', `methods must list at least one of ${AUTH_METHODS.join(', ')}`);
    out.methods = AUTH_METHODS.filter((m) => methods.includes(m));
  }
  if (raw.tokenTtlSeconds !== undefined) {
    const ttl = raw.tokenTtlSeconds;
    const { min, max } = APP_BOUNDS.tokenTtlSeconds;
    if (!Number.isInteger(ttl) || (ttl as number) < min || (ttl as number) > max)
      throw invalid('token_ttl_seconds', `token_ttl_seconds must be a whole number from ${min} to ${max}`);
    out.tokenTtlSeconds = ttl as number;
  }
  if (raw.initiateLimit !== undefined) out.initiateLimit = checkLimit(raw.initiateLimit, FIELDS.initiateLimit);
  if (raw.verifyLimit !== undefined) out.verifyLimit = checkLimit(raw.verifyLimit, FIELDS.verifyLimit);
  if (raw.locale !== undefined) {
    const locale = raw.locale;
    if (
      locale !== null &&
      (typeof locale !== 'string' || locale.length > APP_BOUNDS.localeLength || !LOCALE.test(locale))
    )
      throw invalid('locale', 'locale must be null or a language tag such as en, pt-BR');
    out.locale = locale;
  }
  return out;
}

/** A whole new app's settings, defaults filled in. */
function checkSpec(spec: AppSpec): { clientId: string; settings: AppSettings } {
  const clientId = checkClientId(spec.clientId);
  if (spec.name === undefined) throw invalid('name', 'name is required');
  if (spec.methods === undefined) throw invalid('methods', 'methods is required');
  const given = checkAppSettings(spec);
  return {
    clientId,
    settings: {
      name: given.name!,
      methods: given.methods!,
      redirectUris: given.redirectUris ?? [],
      webOrigins: given.webOrigins ?? [],
      tokenTtlSeconds: given.tokenTtlSeconds ?? APP_BOUNDS.tokenTtlSeconds.default,
      initiateLimit: given.initiateLimit ?? null,
      verifyLimit: given.verifyLimit ?? null,
      locale: given.locale ?? null,
    },
  };
}

// ---- rows ---------------------------------------------------------------------------------

const APP_COLUMN_NAMES = [
  'client_id',
  'name',
  'redirect_uris',
  'web_origins',
  'methods',
  'token_ttl_seconds',
  'initiate_window_seconds',
  'initiate_max_attempts',
  'verify_window_seconds',
  'verify_max_attempts',
  'locale',
  'created_by',
  'created_at',
  'updated_at',
  'disabled_at',
];
/** The columns of an AppRow, qualified by `alias` when given. */
const appColumns = (alias?: string) => APP_COLUMN_NAMES.map((c) => (alias ? `${alias}.${c}` : c)).join(', ');
const APP_COLUMNS = appColumns();
const KEY_COLUMNS = `id, client_id, hint, label, created_by, created_at, expires_at, last_used_at, revoked_at,
  ${liveSecretSql('app_keys')} AS active`;

interface AppRow {
  client_id: string;
  name: string;
  redirect_uris: string[];
  web_origins: string[];
  methods: AuthMethod[];
  token_ttl_seconds: number;
  initiate_window_seconds: number | null;
  initiate_max_attempts: number | null;
  verify_window_seconds: number | null;
  verify_max_attempts: number | null;
  locale: string | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  disabled_at: Date | null;
}
type KeyRow = Omit<AppKeyView, 'created_at' | 'expires_at' | 'last_used_at' | 'revoked_at'> & {
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
};

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const limitOf = (windowSeconds: number | null, maxAttempts: number | null): AppLimit | null =>
  windowSeconds === null || maxAttempts === null ? null : { windowSeconds, maxAttempts };
const limitView = (limit: AppLimit | null): LimitView =>
  limit && { window_seconds: limit.windowSeconds, max_attempts: limit.maxAttempts };

function settingsOf(r: AppRow): AppSettings {
  return {
    name: r.name,
    redirectUris: r.redirect_uris,
    webOrigins: r.web_origins,
    methods: r.methods,
    tokenTtlSeconds: r.token_ttl_seconds,
    initiateLimit: limitOf(r.initiate_window_seconds, r.initiate_max_attempts),
    verifyLimit: limitOf(r.verify_window_seconds, r.verify_max_attempts),
    locale: r.locale,
  };
}

function appOf(r: AppRow): App {
  const s = settingsOf(r);
  return Object.freeze({
    clientId: r.client_id,
    ...s,
    redirectUris: Object.freeze(s.redirectUris) as string[],
    webOrigins: Object.freeze(s.webOrigins) as string[],
    methods: Object.freeze(s.methods) as AuthMethod[],
    initiateLimit: s.initiateLimit && Object.freeze(s.initiateLimit),
    verifyLimit: s.verifyLimit && Object.freeze(s.verifyLimit),
    disabled: r.disabled_at !== null,
  });
}

/** Settings in the admin API's spelling (views, audit details). */
function settingsView(s: Partial<AppSettings>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(s) as Array<[keyof AppSettings, unknown]>)
    out[FIELDS[key]] = key === 'initiateLimit' || key === 'verifyLimit' ? limitView(value as AppLimit | null) : value;
  return out;
}

export function appView(r: AppRow): AppView {
  const s = settingsOf(r);
  return {
    client_id: r.client_id,
    name: s.name,
    redirect_uris: s.redirectUris,
    web_origins: s.webOrigins,
    methods: s.methods,
    token_ttl_seconds: s.tokenTtlSeconds,
    initiate_limit: limitView(s.initiateLimit),
    verify_limit: limitView(s.verifyLimit),
    locale: s.locale,
    disabled: r.disabled_at !== null,
    disabled_at: iso(r.disabled_at),
    created_by: r.created_by,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

const keyView = (r: KeyRow): AppKeyView => ({
  ...r,
  created_at: r.created_at.toISOString(),
  expires_at: iso(r.expires_at),
  last_used_at: iso(r.last_used_at),
  revoked_at: iso(r.revoked_at),
});

/** The settings' columns, $2..$11 after the client_id, as an insert or update gives them. */
const settingsParams = (s: AppSettings): unknown[] => [
  s.name,
  s.redirectUris,
  s.webOrigins,
  s.methods,
  s.tokenTtlSeconds,
  s.initiateLimit?.windowSeconds ?? null,
  s.initiateLimit?.maxAttempts ?? null,
  s.verifyLimit?.windowSeconds ?? null,
  s.verifyLimit?.maxAttempts ?? null,
  s.locale,
];

// ---- the per-process cache of findApp -----------------------------------------------------

/**
 * findApp answers from here for a few seconds: every initiate reads its app. A change made in
 * this process drops the entry at once; another process's change is seen within CACHE_MS.
 * authenticateAppKey always reads the database, so a disabled app's keys stop at once.
 */
const CACHE_MS = 5_000;
const CACHE_MAX = 1_000;
const cache = new Map<string, { db: Queryable; app: App | undefined; until: number }>();
/** bumped by every forget: a read that began before a change does not cache what it read */
let generation = 0;

/** Drops the cached app (all of them without an id). */
export function forgetApp(clientId?: string): void {
  generation++;
  if (clientId === undefined) cache.clear();
  else cache.delete(clientId);
}

// ---- reading ------------------------------------------------------------------------------

/** The app (disabled ones included, with `disabled`), or undefined when there is none. */
export async function findApp(db: Queryable, clientId: string): Promise<App | undefined> {
  if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) return undefined;
  const now = Date.now();
  const hit = cache.get(clientId);
  if (hit && hit.db === db && hit.until > now) return hit.app;
  const started = generation;
  const { rows } = await db.query<AppRow>(`SELECT ${APP_COLUMNS} FROM apps WHERE client_id = $1`, [clientId]);
  const app = rows[0] && appOf(rows[0]);
  // unknown ids are cached too (a client sending garbage is not a read each), within a bound
  if (started !== generation) return app;
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(clientId, { db, app, until: now + CACHE_MS });
  return app;
}

export async function getApp(db: Queryable, clientId: string): Promise<AppView> {
  const { rows } = await db.query<AppRow>(`SELECT ${APP_COLUMNS} FROM apps WHERE client_id = $1`, [
    checkClientId(clientId),
  ]);
  if (!rows[0]) throw new AppError('not_found', `no app ${clientId}`);
  return appView(rows[0]);
}

/** A page of apps in client_id order after `cursor`. */
export async function listApps(
  db: Queryable,
  q: { cursor?: string; limit: number },
): Promise<{ apps: AppView[]; next_cursor: string | null }> {
  const { rows } = await db.query<AppRow>(
    `SELECT ${APP_COLUMNS} FROM apps WHERE ($1::text IS NULL OR client_id > $1) ORDER BY client_id LIMIT $2`,
    [q.cursor ?? null, q.limit + 1],
  );
  const page = rows.slice(0, q.limit).map(appView);
  return { apps: page, next_cursor: rows.length > q.limit ? page[page.length - 1]!.client_id : null };
}

// ---- changing -----------------------------------------------------------------------------

/**
 * `work` and its audit row in one transaction (both land or neither does); the row is logged
 * once committed. No audit row when `work` reports none (a change that changed nothing).
 */
async function audited<T>(
  deps: AppDeps,
  clientId: string,
  work: (q: Queryable) => Promise<{ result: T; audit?: AuditEvent }>,
): Promise<T> {
  const { result, row } = await deps.db.transaction(async (client) => {
    const done = await work(client);
    return { result: done.result, row: done.audit ? await insertAudit(client, done.audit) : undefined };
  });
  forgetApp(clientId);
  logAudit(deps.logger, row);
  return result;
}

const auditEvent = (type: string, actor: string, clientId: string, details: Record<string, unknown>): AuditEvent => ({
  type,
  details: { actor, client_id: clientId, ...details },
});

export async function createApp(deps: AppDeps, spec: AppSpec, actor: string): Promise<AppView> {
  const { clientId, settings } = checkSpec(spec);
  return audited(deps, clientId, async (q) => {
    const { rows } = await q.query<AppRow>(
      `INSERT INTO apps (client_id, name, redirect_uris, web_origins, methods, token_ttl_seconds,
                         initiate_window_seconds, initiate_max_attempts, verify_window_seconds, verify_max_attempts,
                         locale, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (client_id) DO NOTHING RETURNING ${APP_COLUMNS}`,
      [clientId, ...settingsParams(settings), actor],
    );
    if (!rows[0]) throw new AppError('app_exists', `an app ${clientId} exists`, 'client_id');
    return {
      result: appView(rows[0]),
      audit: auditEvent(AuditEventType.appCreated, actor, clientId, settingsView(settings)),
    };
  });
}

async function lockedApp(q: Queryable, clientId: string): Promise<AppRow> {
  const { rows } = await q.query<AppRow>(`SELECT ${APP_COLUMNS} FROM apps WHERE client_id = $1 FOR UPDATE`, [
    checkClientId(clientId),
  ]);
  if (!rows[0]) throw new AppError('not_found', `no app ${clientId}`);
  return rows[0];
}

/**
 * Applies the given settings. The audit row names each changed field with its value before and
 * after (an app's settings are configuration, not personal data); a change that changes nothing
 * writes none.
 */
export async function updateApp(
  deps: AppDeps,
  clientId: string,
  change: Partial<AppSettings>,
  actor: string,
): Promise<AppView> {
  const given = checkAppSettings(change);
  return audited(deps, clientId, async (q) => {
    const row = await lockedApp(q, clientId);
    const before = settingsOf(row);
    const next: AppSettings = { ...before, ...given };
    const changed = (Object.keys(given) as Array<keyof AppSettings>).filter(
      (k) => JSON.stringify(before[k]) !== JSON.stringify(next[k]),
    );
    if (!changed.length) return { result: appView(row) };
    const { rows } = await q.query<AppRow>(
      `UPDATE apps SET name = $2, redirect_uris = $3, web_origins = $4, methods = $5, token_ttl_seconds = $6,
              initiate_window_seconds = $7, initiate_max_attempts = $8,
              verify_window_seconds = $9, verify_max_attempts = $10, locale = $11, updated_at = now()
        WHERE client_id = $1 RETURNING ${APP_COLUMNS}`,
      [clientId, ...settingsParams(next)],
    );
    const pick = (s: AppSettings) => settingsView(Object.fromEntries(changed.map((k) => [k, s[k]])));
    return {
      result: appView(rows[0]!),
      audit: auditEvent(AuditEventType.appUpdated, actor, clientId, {
        fields: changed.map((k) => FIELDS[k]),
        before: pick(before),
        after: pick(next),
      }),
    };
  });
}

/**
 * Disables the app (its keys stop authenticating at once, and the sign-in flow refuses it) or
 * enables it again. Doing it twice changes nothing and audits nothing the second time.
 */
export async function setAppDisabled(
  deps: AppDeps,
  clientId: string,
  disabled: boolean,
  actor: string,
): Promise<AppView> {
  return audited(deps, clientId, async (q) => {
    const row = await lockedApp(q, clientId);
    if ((row.disabled_at !== null) === disabled) return { result: appView(row) };
    const { rows } = await q.query<AppRow>(
      `UPDATE apps SET disabled_at = CASE WHEN $2::boolean THEN now() END, updated_at = now()
        WHERE client_id = $1 RETURNING ${APP_COLUMNS}`,
      [clientId, disabled],
    );
    return {
      result: appView(rows[0]!),
      audit: auditEvent(disabled ? AuditEventType.appDisabled : AuditEventType.appEnabled, actor, clientId, {}),
    };
  });
}

/**
 * Registers the app when there is none with its client_id, and otherwise leaves the existing
 * one exactly as it is (an operator's changes to it stand): what a start-up seed calls, any
 * number of times. Not audited, like the seeded users.
 */
export async function ensureApp(db: Database, spec: AppSpec, actor = 'warden'): Promise<App> {
  const { clientId, settings } = checkSpec(spec);
  await db.write(
    `INSERT INTO apps (client_id, name, redirect_uris, web_origins, methods, token_ttl_seconds,
                       initiate_window_seconds, initiate_max_attempts, verify_window_seconds, verify_max_attempts,
                       locale, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (client_id) DO NOTHING`,
    [clientId, ...settingsParams(settings), actor],
  );
  forgetApp(clientId);
  const app = await findApp(db, clientId);
  if (!app) throw new Error(`app ${clientId} was neither found nor created`);
  return app;
}

// ---- keys ---------------------------------------------------------------------------------

function checkKeyInput(input: { label?: unknown; expiresInSeconds?: unknown }): {
  label: string | null;
  expiresInSeconds: number | null;
} {
  const { label, expiresInSeconds } = input;
  if (
    label !== undefined &&
    label !== null &&
    (typeof label !== 'string' || !label.trim() || label.length > APP_BOUNDS.labelLength || CONTROL.test(label))
  )
    throw invalid('label', `label must be 1 to ${APP_BOUNDS.labelLength} characters without control characters`);
  const { min, max } = APP_BOUNDS.keyExpiresInSeconds;
  if (
    expiresInSeconds !== undefined &&
    expiresInSeconds !== null &&
    (!Number.isInteger(expiresInSeconds) || (expiresInSeconds as number) < min || (expiresInSeconds as number) > max)
  )
    throw invalid('expires_in_seconds', `expires_in_seconds must be a whole number from ${min} to ${max}`);
  return { label: (label as string | undefined) ?? null, expiresInSeconds: (expiresInSeconds as number) ?? null };
}

/**
 * A new API key for the app: the only time it is ever seen in full. A disabled app may get one
 * (it works once the app is enabled), so that a leaked key can be replaced before the app is
 * let back in.
 */
export async function createAppKey(
  deps: AppDeps,
  clientId: string,
  input: { label?: string | null; expiresInSeconds?: number | null },
  actor: string,
): Promise<{ key: string; info: AppKeyView }> {
  const { label, expiresInSeconds } = checkKeyInput(input);
  const key = newSecret(APP_KEY_PREFIX);
  const info = await audited(deps, clientId, async (q) => {
    await lockedApp(q, clientId);
    const { rows } = await q.query<KeyRow>(
      `INSERT INTO app_keys (client_id, key_sha256, hint, label, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::int IS NULL THEN NULL ELSE now() + make_interval(secs => $6::int) END)
       RETURNING ${KEY_COLUMNS}`,
      [clientId, secretDigest(key), secretHint(key, APP_KEY_PREFIX), label, actor, expiresInSeconds],
    );
    const created = keyView(rows[0]!);
    return {
      result: created,
      audit: auditEvent(AuditEventType.appKeyCreated, actor, clientId, {
        key_id: created.id,
        label,
        expires_at: created.expires_at,
      }),
    };
  });
  return { key, info };
}

export async function listAppKeys(db: Queryable, clientId: string): Promise<AppKeyView[]> {
  await getApp(db, clientId);
  const { rows } = await db.query<KeyRow>(
    `SELECT ${KEY_COLUMNS} FROM app_keys WHERE client_id = $1 ORDER BY created_at, id`,
    [clientId],
  );
  return rows.map(keyView);
}

/** Revokes one key at once; revoking it again changes nothing (and audits nothing). */
export async function revokeAppKey(deps: AppDeps, clientId: string, keyId: string, actor: string): Promise<AppKeyView> {
  checkClientId(clientId);
  if (!UUID.test(keyId)) throw new AppError('not_found', `no key ${keyId} for app ${clientId}`);
  return audited(deps, clientId, async (q) => {
    const found = await q.query<{ revoked: boolean }>(
      'SELECT revoked_at IS NOT NULL AS revoked FROM app_keys WHERE id = $1 AND client_id = $2 FOR UPDATE',
      [keyId, clientId],
    );
    if (!found.rows[0]) throw new AppError('not_found', `no key ${keyId} for app ${clientId}`);
    const { rows } = await q.query<KeyRow>(
      `UPDATE app_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
      [keyId],
    );
    return {
      result: keyView(rows[0]!),
      audit: found.rows[0].revoked
        ? undefined
        : auditEvent(AuditEventType.appKeyRevoked, actor, clientId, { key_id: keyId }),
    };
  });
}

/**
 * The app whose live key this is (the lookup goes by the key's digest, never by the key), when
 * the app is enabled; undefined for anything else: unknown, revoked, expired, or a disabled
 * app. last_used_at is refreshed at most once a minute, never holds up the caller, and is
 * skipped while the database is read-only.
 */
export async function authenticateAppKey(db: Database, key: string): Promise<App | undefined> {
  if (typeof key !== 'string' || !KEY_SHAPE.test(key)) return undefined;
  const { rows } = await db.query<AppRow & { key_id: string; stale: boolean }>(
    `SELECT ${appColumns('a')}, k.id AS key_id, ${staleUseSql('k')} AS stale
       FROM app_keys k JOIN apps a ON a.client_id = k.client_id
      WHERE k.key_sha256 = $1 AND ${liveSecretSql('k')} AND a.disabled_at IS NULL`,
    [secretDigest(key)],
  );
  const row = rows[0];
  if (!row) return undefined;
  if (row.stale && !db.readOnly)
    void db.write('UPDATE app_keys SET last_used_at = now() WHERE id = $1', [row.key_id]).catch(() => {});
  return appOf(row);
}

// ---- per-app rate limits ------------------------------------------------------------------

export type AppRateLimitDecision =
  { allowed: true } | { allowed: false; retryAfterSeconds: number; limit: number; windowSeconds: number };

const RETENTION = '2 days';
const CLEANUP_EVERY_MS = 60_000;
let lastCleanup = 0;

/**
 * The app's own sliding-window limit on `action`, across all its users and addresses (the
 * per-user and per-IP limits of src/auth/rateLimit.ts apply besides it). An app without a
 * limit for the action is always allowed, without a database round trip.
 *
 * How: one statement, warden_app_rate_limit_check (migrations/0110_apps.sql), with the rules of
 * warden_rate_limit_check: an advisory lock per app and action serialises concurrent checks
 * until the statement commits, so a burst admits exactly the limit; refused attempts are
 * recorded but do not count; a check reads at most the limit's worth of rows. The rows live in
 * app_rate_limit_attempts rather than rate_limit_attempts, whose other readers (the abuse
 * runbook, the captcha gate) count every refused row there. The lock makes an app's checks
 * one at a time: that is the price of an exact shared limit, a short statement each.
 */
export async function checkAppRateLimit(
  db: Database,
  app: App,
  action: 'initiate' | 'verify',
): Promise<AppRateLimitDecision> {
  const limit = action === 'initiate' ? app.initiateLimit : app.verifyLimit;
  if (!limit) return { allowed: true };
  const { rows } = await db.write<{ allowed: boolean; retry_after: number | null }>(
    'SELECT allowed, retry_after FROM warden_app_rate_limit_check($1, $2, $3, $4)',
    [app.clientId, action, limit.windowSeconds, limit.maxAttempts],
  );
  maybeCleanup(db);
  const row = rows[0]!;
  if (row.allowed) return { allowed: true };
  return {
    allowed: false,
    retryAfterSeconds: row.retry_after ?? 1,
    limit: limit.maxAttempts,
    windowSeconds: limit.windowSeconds,
  };
}

/** Rows older than any window are dead weight; at most once a minute per process. */
function maybeCleanup(db: Database): void {
  const now = Date.now();
  if (now - lastCleanup < CLEANUP_EVERY_MS) return;
  lastCleanup = now;
  db.write('DELETE FROM app_rate_limit_attempts WHERE attempted_at < now() - $1::interval', [RETENTION]).catch(
    () => {},
  );
}
