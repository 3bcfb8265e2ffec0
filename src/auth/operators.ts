/**
 * Operators and their API tokens. A token is `wop_` and 43 base64url characters (256 random
 * bits); Postgres keeps only its SHA-256 digest and a short hint, so a leaked table names no
 * usable credential (src/auth/secretTokens.ts, shared with the applications' keys). Changes to
 * operators and tokens are audited with the acting operator.
 */
import type { Database, Queryable } from '../db/database';
import type { Logger } from '../telemetry/logger';
import type { Role } from '../shared/roles';
import { AuditEventType, recordAudit } from './audit';
import { liveSecretSql, newSecret, secretDigest, secretHint, secretShape, staleUseSql } from './secretTokens';

const TOKEN_PREFIX = 'wop_';
const TOKEN_SHAPE = secretShape(TOKEN_PREFIX);

export interface OperatorView {
  id: string;
  name: string;
  role: Role;
  created_by: string;
  created_at: string;
  disabled_at: string | null;
}

export interface TokenView {
  id: string;
  operator_id: string;
  hint: string;
  label: string | null;
  created_by: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  active: boolean;
}

export interface Authenticated {
  id: string;
  name: string;
  role: Role;
  tokenId: string;
}

export class OperatorError extends Error {
  override name = 'OperatorError';
  constructor(
    readonly code: 'operator_not_found' | 'operator_exists' | 'operator_disabled' | 'token_not_found',
    message: string,
  ) {
    super(message);
  }
}

export interface OperatorDeps {
  db: Database;
  logger: Logger;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const digest = secretDigest;

const OPERATOR_COLUMNS = 'id, name, role, created_by, created_at, disabled_at';
const TOKEN_COLUMNS = `id, operator_id, hint, label, created_by, created_at, expires_at, last_used_at, revoked_at,
  (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS active`;

type OperatorRow = Omit<OperatorView, 'created_at' | 'disabled_at'> & { created_at: Date; disabled_at: Date | null };
type TokenRow = Omit<TokenView, 'created_at' | 'expires_at' | 'last_used_at' | 'revoked_at'> & {
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
};

const operatorView = (r: OperatorRow): OperatorView => ({
  ...r,
  created_at: r.created_at.toISOString(),
  disabled_at: iso(r.disabled_at),
});
const tokenView = (r: TokenRow): TokenView => ({
  ...r,
  created_at: r.created_at.toISOString(),
  expires_at: iso(r.expires_at),
  last_used_at: iso(r.last_used_at),
  revoked_at: iso(r.revoked_at),
});

function audit(deps: OperatorDeps, actor: string, action: string, details: Record<string, unknown>) {
  return recordAudit(deps.db.writer, deps.logger, {
    type: AuditEventType.operatorChanged,
    outcome: action,
    details: { ...details, actor },
  });
}

/**
 * The operator a presented token belongs to, when the token is live and its operator enabled.
 * One indexed read; the last-used time is refreshed at most once a minute, and never holds up
 * the request (nor fails it while the database is read-only).
 */
export async function authenticateToken(db: Database, token: string): Promise<Authenticated | undefined> {
  if (!TOKEN_SHAPE.test(token)) return undefined;
  const { rows } = await db.query<Authenticated & { stale: boolean }>(
    `SELECT o.id, o.name, o.role, t.id AS "tokenId", ${staleUseSql('t')} AS stale
       FROM operator_tokens t JOIN operators o ON o.id = t.operator_id
      WHERE t.token_sha256 = $1 AND ${liveSecretSql('t')} AND o.disabled_at IS NULL`,
    [digest(token)],
  );
  const row = rows[0];
  if (!row) return undefined;
  if (row.stale && !db.readOnly)
    void db.write('UPDATE operator_tokens SET last_used_at = now() WHERE id = $1', [row.tokenId]).catch(() => {});
  return { id: row.id, name: row.name, role: row.role, tokenId: row.tokenId };
}

export async function listOperators(db: Queryable): Promise<OperatorView[]> {
  const { rows } = await db.query<OperatorRow>(`SELECT ${OPERATOR_COLUMNS} FROM operators ORDER BY name`);
  return rows.map(operatorView);
}

async function operatorById(db: Queryable, id: string): Promise<OperatorView> {
  const { rows } = await db.query<OperatorRow>(`SELECT ${OPERATOR_COLUMNS} FROM operators WHERE id = $1`, [id]);
  if (!rows[0]) throw new OperatorError('operator_not_found', `no operator ${id}`);
  return operatorView(rows[0]);
}

export async function createOperator(
  deps: OperatorDeps,
  input: { name: string; role: Role },
  actor: string,
): Promise<OperatorView> {
  const { rows } = await deps.db.write<OperatorRow>(
    `INSERT INTO operators (name, role, created_by) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO NOTHING RETURNING ${OPERATOR_COLUMNS}`,
    [input.name, input.role, actor],
  );
  if (!rows[0]) throw new OperatorError('operator_exists', `an operator named ${input.name} exists`);
  await audit(deps, actor, 'created', { operator: input.name, role: input.role });
  return operatorView(rows[0]);
}

/** Changes the role, or disables / re-enables the operator (a disabled operator's tokens stop working). */
export async function updateOperator(
  deps: OperatorDeps,
  id: string,
  change: { role?: Role; disabled?: boolean },
  actor: string,
): Promise<OperatorView> {
  const { rows } = await deps.db.write<OperatorRow>(
    `UPDATE operators
        SET role = coalesce($2, role),
            disabled_at = CASE WHEN $3::boolean IS NULL THEN disabled_at
                               WHEN $3 THEN coalesce(disabled_at, now()) ELSE NULL END
      WHERE id = $1 RETURNING ${OPERATOR_COLUMNS}`,
    [id, change.role ?? null, change.disabled ?? null],
  );
  if (!rows[0]) throw new OperatorError('operator_not_found', `no operator ${id}`);
  await audit(deps, actor, 'updated', { operator: rows[0].name, ...change });
  return operatorView(rows[0]);
}

/** A new token for the operator: the only time it is ever seen in full. */
export async function issueToken(
  deps: OperatorDeps,
  operatorId: string,
  input: { label?: string; expiresInDays?: number },
  actor: string,
): Promise<{ token: string; info: TokenView }> {
  const operator = await operatorById(deps.db, operatorId);
  if (operator.disabled_at) throw new OperatorError('operator_disabled', `${operator.name} is disabled`);
  const token = newSecret(TOKEN_PREFIX);
  const { rows } = await deps.db.write<TokenRow>(
    `INSERT INTO operator_tokens (operator_id, token_sha256, hint, label, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::int IS NULL THEN NULL ELSE now() + make_interval(days => $6::int) END)
     RETURNING ${TOKEN_COLUMNS}`,
    [
      operatorId,
      digest(token),
      secretHint(token, TOKEN_PREFIX),
      input.label ?? null,
      actor,
      input.expiresInDays ?? null,
    ],
  );
  const info = tokenView(rows[0]!);
  await audit(deps, actor, 'token_issued', { operator: operator.name, token_id: info.id, hint: info.hint });
  return { token, info };
}

export async function listTokens(db: Queryable, operatorId: string): Promise<TokenView[]> {
  await operatorById(db, operatorId);
  const { rows } = await db.query<TokenRow>(
    `SELECT ${TOKEN_COLUMNS} FROM operator_tokens WHERE operator_id = $1 ORDER BY created_at`,
    [operatorId],
  );
  return rows.map(tokenView);
}

/** Revokes one token at once; revoking it again changes nothing. */
export async function revokeToken(
  deps: OperatorDeps,
  operatorId: string,
  tokenId: string,
  actor: string,
): Promise<TokenView> {
  const { rows } = await deps.db.write<TokenRow>(
    `UPDATE operator_tokens SET revoked_at = coalesce(revoked_at, now())
      WHERE id = $1 AND operator_id = $2 RETURNING ${TOKEN_COLUMNS}`,
    [tokenId, operatorId],
  );
  if (!rows[0]) throw new OperatorError('token_not_found', `no token ${tokenId} for operator ${operatorId}`);
  await audit(deps, actor, 'token_revoked', { operator_id: operatorId, token_id: tokenId });
  return tokenView(rows[0]);
}
