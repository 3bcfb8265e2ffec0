/**
 * Users as the admin API manages them: create, change, disable, delete, list and import.
 * Phone numbers are parsed with libphonenumber-js and stored in E.164 (national formats take
 * the configured default country); email addresses are checked and their domain lower-cased.
 * Both are unique among enabled users (partial unique indexes, so two concurrent writers
 * cannot both win). Changes are audited with ids and masked facts only, never the number or
 * the address.
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import type { Database, Queryable } from '../db/database';
import type { Logger } from '../telemetry/logger';
import { AuditEventType, recordAudit } from './audit';

export const SUB_PATTERN = '^[A-Za-z0-9._@:+-]{1,128}$';
const SUB = new RegExp(SUB_PATTERN);
const LOCALE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
// one @, a local part without spaces, a dotted domain: the mailbox itself is the provider's to judge
const EMAIL = /^[^\s@]{1,64}@([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$/;
const MAX_METADATA_BYTES = 4096;

export interface UserView {
  sub: string;
  phone: string | null;
  email: string | null;
  locale: string | null;
  metadata: Record<string, unknown>;
  disabled: boolean;
  created_at: string;
  updated_at: string;
}

/** What a caller may set; `undefined` leaves a field as it is, `null` clears it. */
export interface UserInput {
  phone?: string | null;
  email?: string | null;
  locale?: string | null;
  metadata?: Record<string, unknown>;
  disabled?: boolean;
}

export type UserErrorCode = 'invalid_request' | 'user_not_found' | 'user_exists' | 'phone_taken' | 'email_taken';

export class UserError extends Error {
  override name = 'UserError';
  constructor(
    readonly code: UserErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface UserDeps {
  db: Database;
  logger: Logger;
  /** ISO 3166 country for numbers written without +country code; undefined = E.164 only */
  defaultCountry?: string;
}

/** E.164, or a UserError naming the field. */
export function normalizePhone(value: string, defaultCountry?: string): string {
  const parsed = parsePhoneNumberFromString(value, defaultCountry as CountryCode | undefined);
  if (!parsed || !parsed.isPossible())
    throw new UserError(
      'invalid_request',
      defaultCountry
        ? `phone is not a possible number (international, or national for ${defaultCountry})`
        : 'phone is not a possible number in international format (+<country code><number>)',
      'phone',
    );
  return parsed.number;
}

/** The address with its domain lower-cased, or a UserError naming the field. */
export function normalizeEmail(value: string): string {
  const trimmed = value.trim();
  if (trimmed.length > 254 || !EMAIL.test(trimmed))
    throw new UserError('invalid_request', 'email is not an email address', 'email');
  const at = trimmed.lastIndexOf('@');
  return `${trimmed.slice(0, at)}@${trimmed.slice(at + 1).toLowerCase()}`;
}

export function checkSub(sub: unknown): string {
  if (typeof sub !== 'string' || !SUB.test(sub))
    throw new UserError('invalid_request', `sub must match ${SUB_PATTERN}`, 'sub');
  return sub;
}

/** Checks and normalizes an input as it arrives (API body, import line). */
export function checkInput(raw: Record<string, unknown>, defaultCountry?: string): UserInput {
  const out: UserInput = {};
  const text = (field: string, value: unknown): string | null | undefined => {
    if (value === undefined || value === null) return value;
    if (typeof value !== 'string' || value.trim() === '')
      throw new UserError('invalid_request', `${field} must be a non-empty string or null`, field);
    return value;
  };
  const phone = text('phone', raw.phone);
  if (phone !== undefined) out.phone = phone === null ? null : normalizePhone(phone, defaultCountry);
  const email = text('email', raw.email);
  if (email !== undefined) out.email = email === null ? null : normalizeEmail(email);
  const locale = text('locale', raw.locale);
  if (locale !== undefined) {
    if (locale !== null && !LOCALE.test(locale))
      throw new UserError('invalid_request', 'locale must be a language tag such as en, pt-BR', 'locale');
    out.locale = locale;
  }
  if (raw.metadata !== undefined) {
    const m = raw.metadata;
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw new UserError('invalid_request', 'metadata must be an object', 'metadata');
    const json = JSON.stringify(m);
    if (Buffer.byteLength(json) > MAX_METADATA_BYTES || json.includes('\\u0000'))
      throw new UserError(
        'invalid_request',
        `metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`,
        'metadata',
      );
    out.metadata = m as Record<string, unknown>;
  }
  if (raw.disabled !== undefined) {
    if (typeof raw.disabled !== 'boolean')
      throw new UserError('invalid_request', 'disabled must be true or false', 'disabled');
    out.disabled = raw.disabled;
  }
  return out;
}

const COLUMNS = 'sub, phone, email, locale, metadata, disabled_at IS NOT NULL AS disabled, created_at, updated_at';
type Row = Omit<UserView, 'created_at' | 'updated_at'> & { created_at: Date; updated_at: Date };
const view = (r: Row): UserView => ({
  ...r,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

/** A unique-index violation as the field it concerns. */
function taken(err: unknown): never {
  const e = err as { code?: string; constraint?: string };
  if (e.code === '23505' && e.constraint === 'users_phone_enabled')
    throw new UserError('phone_taken', 'another enabled user has this phone number', 'phone');
  if (e.code === '23505' && e.constraint === 'users_email_enabled')
    throw new UserError('email_taken', 'another enabled user has this email address', 'email');
  throw err;
}

async function audit(deps: UserDeps, sub: string, outcome: string, actor: string, fields: string[]) {
  await recordAudit(deps.db.writer, deps.logger, {
    type: AuditEventType.userAction,
    outcome,
    userId: sub,
    details: { actor, fields },
  });
}

export async function getUser(db: Queryable, sub: string): Promise<UserView> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM users WHERE sub = $1`, [sub]);
  if (!rows[0]) throw new UserError('user_not_found', `no user ${sub}`);
  return view(rows[0]);
}

export async function createUser(deps: UserDeps, sub: string, input: UserInput, actor: string): Promise<UserView> {
  const { rows } = await deps.db
    .write<Row>(
      `INSERT INTO users (sub, phone, email, locale, metadata, disabled_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, CASE WHEN $6 THEN now() END)
       ON CONFLICT (sub) DO NOTHING RETURNING ${COLUMNS}`,
      [
        sub,
        input.phone ?? null,
        input.email ?? null,
        input.locale ?? null,
        JSON.stringify(input.metadata ?? {}),
        input.disabled ?? false,
      ],
    )
    .catch(taken);
  if (!rows[0]) throw new UserError('user_exists', `a user ${sub} exists`, 'sub');
  await audit(deps, sub, 'created', actor, Object.keys(input));
  return view(rows[0]);
}

/** Applies the given fields; reports whether anything changed (a repeat changes nothing). */
export async function updateUser(
  deps: UserDeps,
  sub: string,
  input: UserInput,
  actor: string,
): Promise<{ user: UserView; changed: boolean }> {
  const set = (field: keyof UserInput) => input[field] !== undefined;
  const { rows } = await deps.db
    .write<Row & { changed: boolean }>(
      `WITH before AS (SELECT * FROM users WHERE sub = $1 FOR UPDATE)
       UPDATE users u SET
         phone = CASE WHEN $2 THEN $3 ELSE u.phone END,
         email = CASE WHEN $4 THEN $5 ELSE u.email END,
         locale = CASE WHEN $6 THEN $7 ELSE u.locale END,
         metadata = CASE WHEN $8 THEN $9::jsonb ELSE u.metadata END,
         disabled_at = CASE WHEN $10::boolean IS NULL THEN u.disabled_at
                            WHEN $10 THEN coalesce(u.disabled_at, now()) ELSE NULL END,
         updated_at = now()
       FROM before b WHERE u.sub = b.sub
       RETURNING ${COLUMNS.replace(/\b(sub|phone|email|locale|metadata|disabled_at|created_at|updated_at)\b/g, 'u.$1')},
         (b.phone, b.email, b.locale, b.metadata, b.disabled_at IS NOT NULL) IS DISTINCT FROM
         (u.phone, u.email, u.locale, u.metadata, u.disabled_at IS NOT NULL) AS changed`,
      [
        sub,
        set('phone'),
        input.phone ?? null,
        set('email'),
        input.email ?? null,
        set('locale'),
        input.locale ?? null,
        set('metadata'),
        JSON.stringify(input.metadata ?? {}),
        input.disabled ?? null,
      ],
    )
    .catch(taken);
  const row = rows[0];
  if (!row) throw new UserError('user_not_found', `no user ${sub}`);
  const { changed, ...user } = row;
  const outcome = input.disabled === true ? 'disabled' : input.disabled === false ? 'enabled' : 'updated';
  if (changed) await audit(deps, sub, outcome, actor, Object.keys(input));
  return { user: view(user), changed };
}

/** Deletes the user's row (their challenges and audit rows stay, naming only the id). */
export async function deleteUser(deps: UserDeps, sub: string, actor: string): Promise<void> {
  const { rowCount } = await deps.db.write('DELETE FROM users WHERE sub = $1', [sub]);
  if (!rowCount) throw new UserError('user_not_found', `no user ${sub}`);
  await audit(deps, sub, 'deleted', actor, []);
}

/** A page of users in `sub` order after `cursor`; exact-match filters on phone or email. */
export async function listUsers(
  db: Queryable,
  q: { cursor?: string; limit: number; phone?: string; email?: string },
): Promise<{ users: UserView[]; next_cursor: string | null }> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM users
      WHERE ($1::text IS NULL OR sub > $1) AND ($2::text IS NULL OR phone = $2) AND ($3::text IS NULL OR email = $3)
      ORDER BY sub LIMIT $4`,
    [q.cursor ?? null, q.phone ?? null, q.email ?? null, q.limit + 1],
  );
  const page = rows.slice(0, q.limit).map(view);
  return { users: page, next_cursor: rows.length > q.limit ? page[page.length - 1]!.sub : null };
}

export type ImportOutcome = 'created' | 'updated' | 'unchanged';

/** One import line: created when new, otherwise the given fields applied (idempotent per sub). */
export async function importUser(deps: UserDeps, raw: Record<string, unknown>, actor: string): Promise<ImportOutcome> {
  const sub = checkSub(raw.sub);
  const { sub: _sub, ...fields } = raw;
  const input = checkInput(fields, deps.defaultCountry);
  try {
    await createUser(deps, sub, input, actor);
    return 'created';
  } catch (err) {
    if (!(err instanceof UserError) || err.code !== 'user_exists') throw err;
  }
  const { changed } = await updateUser(deps, sub, input, actor);
  return changed ? 'updated' : 'unchanged';
}
