/**
 * The IP blocklist: single addresses and CIDR blocks (IPv4 and IPv6, Postgres `cidr`), each
 * with an optional expiry. Entries are never deleted: removal stamps `removed_at`, so the list
 * keeps its own history for the incident report. An entry covers every address inside it. The
 * abuse runbook adds offenders by their bucket (src/auth/ipBucket.ts), so an IPv6 client is
 * blocked as its /64; an operator's address or CIDR is blocked exactly as given.
 */
import type { Database, Queryable } from '../db/database';
import type { ParsedCidr } from './clientIp';

export interface BlocklistEntry {
  id: number;
  cidr: string;
  reason: string;
  created_by: string;
  incident_id: string | null;
  created_at: string;
  expires_at: string | null;
  removed_at: string | null;
  active: boolean;
}

const COLUMNS = `id::int AS id, cidr::text AS cidr, reason, created_by, incident_id,
  created_at, expires_at, removed_at,
  (removed_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS active`;

interface Row extends Omit<BlocklistEntry, 'created_at' | 'expires_at' | 'removed_at'> {
  created_at: Date;
  expires_at: Date | null;
  removed_at: Date | null;
}

function view(row: Row): BlocklistEntry {
  return {
    ...row,
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at?.toISOString() ?? null,
    removed_at: row.removed_at?.toISOString() ?? null,
  };
}

/** The active entry covering `ip`, if any: one indexed containment query per request. */
export async function findBlock(db: Queryable, ip: string): Promise<{ id: number; cidr: string } | undefined> {
  const { rows } = await db.query<{ id: number; cidr: string }>(
    `SELECT id::int AS id, cidr::text AS cidr FROM ip_blocklist
      WHERE cidr >>= $1::inet AND removed_at IS NULL AND (expires_at IS NULL OR expires_at > now())
      ORDER BY masklen(cidr) DESC LIMIT 1`,
    [ip],
  );
  return rows[0];
}

/** The broadest block that may be added, per IP version (from the configuration). */
export interface BlockLimits {
  minPrefixV4: number;
  minPrefixV6: number;
}

/** A block broader than the configured minimum prefix: it would lock out a large part of the internet. */
export class BlockTooBroadError extends Error {
  readonly code = 'block_too_broad';
  constructor(
    readonly cidr: string,
    readonly minPrefix: number,
  ) {
    super(`${cidr} is broader than /${minPrefix}, the broadest block allowed (WARDEN_BLOCK_MIN_PREFIX_V*)`);
  }
}

/** The refusal when `cidr` is broader than the limits allow (/0 never passes); undefined when it may be added. */
export function tooBroad(cidr: ParsedCidr, limits: BlockLimits): BlockTooBroadError | undefined {
  const min = Math.max(1, cidr.version === 4 ? limits.minPrefixV4 : limits.minPrefixV6);
  return cidr.prefix < min ? new BlockTooBroadError(cidr.text, min) : undefined;
}

export interface BlockInput {
  cidr: ParsedCidr;
  reason: string;
  expiresAt?: Date;
  createdBy: string;
  incidentId?: string;
}

/**
 * Blocks an address or block. Blocking what is already blocked refreshes that entry's reason
 * and expiry instead of stacking duplicates. `created` tells which happened. Every caller
 * passes the limits: a block broader than they allow is refused (BlockTooBroadError) before
 * anything is written.
 */
export async function addBlock(
  db: Database,
  input: BlockInput,
  limits: BlockLimits,
): Promise<{ entry: BlocklistEntry; created: boolean }> {
  const refused = tooBroad(input.cidr, limits);
  if (refused) throw refused;
  return db.transaction(async (tx) => {
    // serialises concurrent adds of the same block
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`warden:blocklist:${input.cidr.text}`]);
    const updated = await tx.query<Row>(
      `UPDATE ip_blocklist SET reason = $2, expires_at = $3, incident_id = COALESCE($4, incident_id), created_by = $5
        WHERE cidr = network($1::inet)::cidr AND removed_at IS NULL AND (expires_at IS NULL OR expires_at > now())
        RETURNING ${COLUMNS}`,
      [input.cidr.text, input.reason, input.expiresAt ?? null, input.incidentId ?? null, input.createdBy],
    );
    if (updated.rows[0]) return { entry: view(updated.rows[0]), created: false };
    const inserted = await tx.query<Row>(
      `INSERT INTO ip_blocklist (cidr, reason, created_by, incident_id, expires_at)
       VALUES (network($1::inet)::cidr, $2, $3, $4, $5)
       RETURNING ${COLUMNS}`,
      [input.cidr.text, input.reason, input.createdBy, input.incidentId ?? null, input.expiresAt ?? null],
    );
    return { entry: view(inserted.rows[0]!), created: true };
  });
}

/** Lifts every active entry for exactly this address or block. */
export async function removeBlock(db: Database, cidr: ParsedCidr): Promise<BlocklistEntry[]> {
  const { rows } = await db.write<Row>(
    `UPDATE ip_blocklist SET removed_at = now()
      WHERE cidr = network($1::inet)::cidr AND removed_at IS NULL
      RETURNING ${COLUMNS}`,
    [cidr.text],
  );
  return rows.map(view);
}

export async function listBlocks(db: Queryable, includeInactive: boolean): Promise<BlocklistEntry[]> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM ip_blocklist
      WHERE $1 OR (removed_at IS NULL AND (expires_at IS NULL OR expires_at > now()))
      ORDER BY created_at DESC, id DESC LIMIT 1000`,
    [includeInactive],
  );
  return rows.map(view);
}
