/**
 * Number prefixes blocked for SMS pumping (`sms_prefix_blocks`, migrations/0200): added by the
 * evaluation (src/activities/smsPumping.ts), listed and lifted through the admin API, and checked
 * by the send activity on every provider call, before the provider is called
 * (src/delivery/sender.ts). The block is Warden's own: it holds whichever provider the route
 * sends through, after a failover or a switch to the backup as before it. Every block and lift
 * is an audit event; the prefix is no personal data (it names a range of numbers, not a number).
 */
import type { Database, Queryable } from '../db/database';
import { insertAudit, logAudit } from '../auth/audit';
import type { Runtime } from '../runtime';
import { SMS_PUMPING_ACTOR } from '../shared/smsPumping';
import { prefixesOf, type BlockCandidate } from './smsPumping';

/** The stable error code of a send refused for its prefix (delivery_failures.error_code, the failure audit). */
export const SMS_PREFIX_BLOCKED = 'sms_prefix_blocked';

export const PrefixAuditEvent = {
  blocked: 'identity.sms_prefix.blocked',
  lifted: 'identity.sms_prefix.lifted',
} as const;

export interface PrefixBlock {
  prefix: string;
  generation: number;
  reason: string;
  created_by: string;
  created_at: string;
  until: string;
  lifted_at: string | null;
  lifted_by: string | null;
  window_seconds: number | null;
  messages: number | null;
  challenges: number | null;
  settled: number | null;
  verified: number | null;
  incident_id: string | null;
  incident_workflow_id: string | null;
  active: boolean;
}

/** The incident's INC id comes from the projection once the incident has claimed one. */
const COLUMNS = `b.prefix, b.generation, b.reason, b.created_by, b.created_at, b.until, b.lifted_at, b.lifted_by,
  b.window_seconds, b.messages, b.challenges, b.settled, b.verified,
  coalesce(b.incident_id, (SELECT i.id FROM incidents i WHERE i.workflow_id = b.incident_workflow_id
                            AND i.run_id = b.incident_run_id LIMIT 1)) AS incident_id,
  b.incident_workflow_id, b.until > now() AS active`;

type Row = Omit<PrefixBlock, 'created_at' | 'until' | 'lifted_at'> & {
  created_at: Date;
  until: Date;
  lifted_at: Date | null;
};

const view = (r: Row): PrefixBlock => ({
  ...r,
  created_at: r.created_at.toISOString(),
  until: r.until.toISOString(),
  lifted_at: r.lifted_at?.toISOString() ?? null,
});

/**
 * The block in force for this number, if any: one primary-key lookup for each of its leading
 * digit runs, so a block made under another WARDEN_SMS_PUMPING_PREFIX_DIGITS still holds. The
 * longest blocked prefix answers.
 */
export async function blockFor(db: Queryable, phone: string): Promise<{ prefix: string; until: Date } | undefined> {
  const prefixes = prefixesOf(phone);
  if (prefixes.length === 0) return undefined;
  const { rows } = await db.query<{ prefix: string; until: Date }>(
    `SELECT prefix, until FROM sms_prefix_blocks WHERE prefix = ANY($1) AND until > now()
      ORDER BY length(prefix) DESC LIMIT 1`,
    [prefixes],
  );
  return rows[0];
}

/**
 * The send activity's check: the refusal's sentence when the number's prefix is blocked (counted
 * as a budget refusal), undefined otherwise. The sentence names the prefix, never the number.
 */
export async function prefixRefusal(runtime: Pick<Runtime, 'db' | 'metrics'>, phone: string) {
  const block = await blockFor(runtime.db, phone);
  if (!block) return undefined;
  runtime.metrics.budgetRefusals.inc({ reason: 'prefix_blocked', action: 'send' });
  return `SMS to numbers starting +${block.prefix} are blocked until ${block.until.toISOString()} (SMS pumping)`;
}

export async function listPrefixBlocks(db: Queryable, all: boolean): Promise<PrefixBlock[]> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM sms_prefix_blocks b ${all ? '' : 'WHERE b.until > now()'} ORDER BY b.created_at DESC LIMIT 1000`,
  );
  return rows.map(view);
}

export async function findPrefixBlock(db: Queryable, prefix: string): Promise<PrefixBlock | undefined> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM sms_prefix_blocks b WHERE b.prefix = $1`, [prefix]);
  return rows[0] ? view(rows[0]) : undefined;
}

/**
 * Blocks a prefix the evaluation judged, with its audit row, in one transaction. A prefix already
 * blocked keeps its block (`created` false: an activity retry lands here); a prefix whose last
 * block ended gets a new one in the same row, one generation on.
 */
export async function addPrefixBlock(
  runtime: Pick<Runtime, 'db' | 'logger'>,
  candidate: BlockCandidate,
  blockSeconds: number,
): Promise<{ block: PrefixBlock; created: boolean }> {
  const reason = `conversion ${(candidate.conversion * 100).toFixed(1)}% (${candidate.verified} of ${candidate.settled} verified) over ${candidate.messages} SMS in ${candidate.windowSeconds} s`;
  const done = await runtime.db.transaction(async (tx) => {
    const inserted = await tx.query<{ prefix: string }>(
      `INSERT INTO sms_prefix_blocks AS b (prefix, reason, created_by, until, window_seconds, messages, challenges, settled, verified)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6, $7, $8, $9)
       ON CONFLICT (prefix) DO UPDATE SET generation = b.generation + 1, reason = EXCLUDED.reason,
         created_by = EXCLUDED.created_by, created_at = now(), until = EXCLUDED.until, lifted_at = NULL,
         lifted_by = NULL, window_seconds = EXCLUDED.window_seconds, messages = EXCLUDED.messages,
         challenges = EXCLUDED.challenges, settled = EXCLUDED.settled, verified = EXCLUDED.verified,
         incident_workflow_id = NULL, incident_run_id = NULL, incident_id = NULL
        WHERE b.until <= now()
       RETURNING b.prefix`,
      [
        candidate.prefix,
        reason,
        SMS_PUMPING_ACTOR,
        blockSeconds,
        candidate.windowSeconds,
        candidate.messages,
        candidate.challenges,
        candidate.settled,
        candidate.verified,
      ],
    );
    const block = (await findPrefixBlock(tx, candidate.prefix))!;
    if (inserted.rows.length === 0) return { block, created: false, audit: undefined };
    const audit = await insertAudit(tx, {
      type: PrefixAuditEvent.blocked,
      outcome: 'blocked',
      reason: 'low_conversion',
      details: {
        prefix: block.prefix,
        generation: block.generation,
        until: block.until,
        actor: SMS_PUMPING_ACTOR,
        window_seconds: candidate.windowSeconds,
        messages: candidate.messages,
        challenges: candidate.challenges,
        settled: candidate.settled,
        verified: candidate.verified,
        conversion: Math.round(candidate.conversion * 1000) / 1000,
      },
      dedupeKey: `sms-prefix-block:${block.prefix}:${block.generation}`,
    });
    return { block, created: true, audit };
  });
  logAudit(runtime.logger.child({ component: 'audit' }), done.audit);
  return { block: done.block, created: done.created };
}

/** Blocks in force the evaluation added that no incident has heard of (a report that failed for good). */
export async function unreportedBlocks(db: Queryable): Promise<Array<{ prefix: string; generation: number }>> {
  const { rows } = await db.query<{ prefix: string; generation: number }>(
    `SELECT prefix, generation FROM sms_prefix_blocks
      WHERE until > now() AND incident_workflow_id IS NULL AND created_by = $1 ORDER BY created_at LIMIT 100`,
    [SMS_PUMPING_ACTOR],
  );
  return rows;
}

/** The incident a block opened: its workflow and run now, its INC id once known. */
export async function notePrefixIncident(
  db: Pick<Database, 'write'>,
  input: { prefix: string; generation: number; workflowId: string; runId: string; incidentId: string | null },
): Promise<void> {
  await db.write(
    `UPDATE sms_prefix_blocks SET incident_workflow_id = $3, incident_run_id = $4, incident_id = coalesce($5, incident_id)
      WHERE prefix = $1 AND generation = $2`,
    [input.prefix, input.generation, input.workflowId, input.runId, input.incidentId],
  );
}

/**
 * Lifts a block in force, with its audit row, in one transaction; undefined when the prefix has
 * none. Messages sent before the lift no longer count towards the next block.
 */
export async function liftPrefixBlock(
  runtime: Pick<Runtime, 'db' | 'logger'>,
  prefix: string,
  actor: string,
): Promise<PrefixBlock | undefined> {
  const done = await runtime.db.transaction(async (tx) => {
    const { rowCount } = await tx.query(
      `UPDATE sms_prefix_blocks SET until = now(), lifted_at = now(), lifted_by = $2 WHERE prefix = $1 AND until > now()`,
      [prefix, actor],
    );
    if (!rowCount) return undefined;
    const block = (await findPrefixBlock(tx, prefix))!;
    const audit = await insertAudit(tx, {
      type: PrefixAuditEvent.lifted,
      outcome: 'lifted',
      incidentId: block.incident_id ?? undefined,
      details: { prefix, generation: block.generation, actor },
    });
    return { block, audit };
  });
  logAudit(runtime.logger.child({ component: 'audit' }), done?.audit);
  return done?.block;
}
