/**
 * The compromised-token runbook's containment and notification steps. Every call takes the
 * step's idempotency key (`<workflow id>/<step>`) and a second call with it changes nothing:
 * revocations only touch live challenges, audit rows carry dedupe keys derived from it,
 * blocks are tagged with it (created_by), notifications are recorded per user per incident.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { adminDeps, endChallenges, inLanes, terminateChallengeWorkflows, type AdminDeps } from '../auth/admin';
import { AuditEventType, logAudit, recordAudit } from '../auth/audit';
import { countCovered, coveredChallengeIds, cutOffChallenges, revokedSinceCutOffIds } from '../auth/cutoffs';
import { addBlock, tooBroad, type BlocklistEntry } from '../auth/blocklist';
import { parseCidr } from '../auth/clientIp';
import { ProviderPermanentError, ProviderTransientError, type EmailProviderName } from '../providers';
import { INCIDENT_NOTIFICATION_SUBJECT, INCIDENT_NOTIFICATION_TEXT, notificationKey } from '../runbooks/notification';
import type { Runtime } from '../runtime';

const EMAIL_PROVIDERS: readonly string[] = ['sendgrid', 'ses'];
const NOTIFY_CONCURRENCY = 8;
const AUDIT_LANES = 8;
/** reads of what is left to revoke, in one cleanup call: the second finds only stragglers */
const CLEANUP_ROUNDS = 3;

export interface BlockIpsInput {
  key: string;
  ips: string[];
  reason: string;
  expiresAt: string;
  incidentId?: string;
}

export interface BlockIpsResult {
  blocked: string[];
  /** already blocked by someone else: left as it was, and not lifted by a compensation */
  alreadyBlocked: string[];
  invalid: string[];
  /** broader than WARDEN_BLOCK_MIN_PREFIX_V4 / _V6 allow: refused */
  tooBroad: string[];
  expiresAt: string;
}

export function createRunbookAuthActivities(
  runtime: Pick<Runtime, 'db' | 'logger' | 'temporal' | 'keys' | 'tokenKeys' | 'providers' | 'metrics' | 'config'>,
) {
  const { db } = runtime;
  const audit = runtime.logger.child({ component: 'audit' });
  const deps = (): AdminDeps => adminDeps(runtime);

  async function auditOnce(key: string, event: Parameters<typeof recordAudit>[2]) {
    await recordAudit(db, audit, { ...event, dedupeKey: key });
  }

  async function emailRoute(): Promise<EmailProviderName[]> {
    const { rows } = await db.query<{ primary_provider: string; backup_provider: string | null }>(
      "SELECT primary_provider, backup_provider FROM delivery_routes WHERE channel = 'email'",
    );
    const order = rows[0] ? [rows[0].primary_provider, rows[0].backup_provider] : ['sendgrid', 'ses'];
    const known = order.filter((p): p is EmailProviderName => typeof p === 'string' && EMAIL_PROVIDERS.includes(p));
    return known.length ? known : ['sendgrid'];
  }

  return {
    /**
     * Containment: one cut-off for all the users (a single statement whatever their number);
     * from its commit no code of theirs verifies. Answers the instant and how many open
     * challenges it covers (counted after the commit, off the containment path).
     */
    async cutOffUsersChallenges(input: { key: string; userIds: string[]; incidentId?: string }) {
      const cut = await cutOffChallenges(db.writer, {
        scope: 'user',
        subjects: input.userIds,
        reason: 'security_incident',
        actor: input.key,
        incidentId: input.incidentId,
        dedupeKey: `${input.key}/cut-off`,
      });
      if (!cut.repeated) logAudit(audit, cut.audit);
      const covered = await countCovered(db, input.userIds);
      return { revokedBefore: cut.revokedBefore, users: cut.subjects, covered };
    },

    /**
     * Cleanup, rows: revokes every open challenge of the users that a cut-off covers (rows
     * ended in bulk: revoked, sealed copy wiped, audited), reason security_incident, and audits
     * the action per user. Reads again until none is left, so a challenge whose issue committed
     * while this ran, but before the cut-off's instant, is not missed. A challenge started after
     * the cut-off is not covered, so never touched.
     */
    async revokeUsersChallenges(input: { key: string; userIds: string[]; incidentId?: string }) {
      const ctx = Context.current();
      const total = { found: 0, revoked: 0 };
      for (let round = 0; round < CLEANUP_ROUNDS; round++) {
        const ids = await coveredChallengeIds(db, input.userIds);
        if (ids.length === 0) break;
        const revoked = await endChallenges(deps(), ids, 'security_incident', {
          incidentId: input.incidentId,
          actor: input.key,
          progress: (done) => ctx.heartbeat(done),
        });
        total.found += ids.length;
        total.revoked += revoked.length;
      }
      const left = await countCovered(db, input.userIds);
      if (left > 0)
        throw ApplicationFailure.retryable(`${left} covered challenge(s) still open`, 'ChallengesStillActive');
      await inLanes(input.userIds, AUDIT_LANES, (userId) =>
        auditOnce(`${input.key}/revoke/${userId}`, {
          type: AuditEventType.userAction,
          outcome: 'revoke_challenges',
          userId,
          incidentId: input.incidentId,
          details: { actor: input.key, reason: 'security_incident' },
        }),
      );
      return total;
    },

    /**
     * Cleanup, workflows: terminates the workflows of the users' challenges revoked since their
     * cut-off, which have nothing left to do. A workflow already closed is not counted.
     */
    async endRevokedWorkflows(input: { key: string; userIds: string[]; incidentId?: string }) {
      const ctx = Context.current();
      const ids = await revokedSinceCutOffIds(db, input.userIds);
      const workflowsEnded = await terminateChallengeWorkflows(deps(), ids, 'security_incident', {
        incidentId: input.incidentId,
        actor: input.key,
        progress: (done) => ctx.heartbeat(done),
      });
      return { workflowsEnded };
    },

    /** `UPDATE users SET force_password_reset = true`; only users not yet flagged are touched. */
    async forcePasswordResets(input: { key: string; userIds: string[]; incidentId?: string }) {
      const { rows } = await db.write<{ sub: string }>(
        `UPDATE users SET force_password_reset = true, updated_at = now()
          WHERE sub = ANY($1::text[]) AND NOT force_password_reset RETURNING sub`,
        [input.userIds],
      );
      // one audit row per user, AUDIT_LANES at a time: 10,000 users one by one held the IP
      // blocks back by seconds
      await inLanes(rows, AUDIT_LANES, ({ sub }) =>
        auditOnce(`${input.key}/reset/${sub}`, {
          type: AuditEventType.userAction,
          outcome: 'force_password_reset',
          userId: sub,
          incidentId: input.incidentId,
          details: { actor: input.key },
        }),
      );
      const { rows: flagged } = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM users WHERE sub = ANY($1::text[]) AND force_password_reset',
        [input.userIds],
      );
      return {
        newlyFlagged: rows.length,
        flagged: flagged[0]?.n ?? 0,
        unknownUsers: input.userIds.length - (flagged[0]?.n ?? 0),
      };
    },

    /**
     * Blocks each address or CIDR until `expiresAt`, tagged with the step key. An address some
     * other hand already blocked keeps its own entry (and expiry): a compensation lifts only
     * what this step added.
     */
    async blockIps(input: BlockIpsInput): Promise<BlockIpsResult> {
      const result: BlockIpsResult = {
        blocked: [],
        alreadyBlocked: [],
        invalid: [],
        tooBroad: [],
        expiresAt: input.expiresAt,
      };
      for (const raw of input.ips) {
        const cidr = parseCidr(raw);
        if (!cidr) {
          result.invalid.push(raw.slice(0, 64));
          continue;
        }
        const refused = tooBroad(cidr, runtime.config.blockLimits);
        if (refused) {
          await auditOnce(`${input.key}/refused/${cidr.text}`, {
            type: AuditEventType.blocklistChanged,
            outcome: 'refused',
            incidentId: input.incidentId,
            details: { cidr: cidr.text, reason: refused.message, actor: input.key },
          });
          result.tooBroad.push(cidr.text);
          continue;
        }
        const { rows } = await db.query<{ created_by: string }>(
          `SELECT created_by FROM ip_blocklist WHERE cidr = network($1::inet)::cidr AND removed_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
          [cidr.text],
        );
        if (rows.some((r) => r.created_by !== input.key)) {
          result.alreadyBlocked.push(cidr.text);
          continue;
        }
        const { entry }: { entry: BlocklistEntry } = await addBlock(
          db,
          {
            cidr,
            reason: input.reason,
            expiresAt: new Date(input.expiresAt),
            createdBy: input.key,
            incidentId: input.incidentId,
          },
          runtime.config.blockLimits,
        );
        await auditOnce(`${input.key}/block/${entry.cidr}`, {
          type: AuditEventType.blocklistChanged,
          outcome: 'added',
          incidentId: input.incidentId,
          details: { cidr: entry.cidr, reason: input.reason, expires_at: entry.expires_at, actor: input.key },
        });
        result.blocked.push(entry.cidr);
      }
      return result;
    },

    /** Compensation: lifts the blocks the step with this key added (and only those). */
    async unblockIps(input: { key: string; incidentId?: string }): Promise<{ unblocked: string[] }> {
      const { rows } = await db.write<{ cidr: string }>(
        `UPDATE ip_blocklist SET removed_at = now() WHERE created_by = $1 AND removed_at IS NULL RETURNING cidr::text AS cidr`,
        [input.key],
      );
      for (const { cidr } of rows) {
        await auditOnce(`${input.key}/unblock/${cidr}`, {
          type: AuditEventType.blocklistChanged,
          outcome: 'removed',
          incidentId: input.incidentId,
          details: { cidr, actor: input.key, reason: 'runbook cancelled' },
        });
      }
      return { unblocked: rows.map((r) => r.cidr) };
    },

    /**
     * The security notification (runbooks/notification.ts) to each user with an email, through the email
     * route (primary, then the backup on a transient failure). One per user per incident: the
     * row in runbook_notifications is checked first, and the provider gets an idempotency key
     * for the window between sending and recording.
     */
    async notifyAffectedUsers(input: { incidentKey: string; userIds: string[] }) {
      const [primary, backup] = await emailRoute();
      const { rows } = await db.query<{ sub: string; email: string | null; done: boolean }>(
        `SELECT u.sub, u.email, (n.user_id IS NOT NULL) AS done FROM users u
           LEFT JOIN runbook_notifications n ON n.incident_key = $2 AND n.user_id = u.sub
          WHERE u.sub = ANY($1::text[])`,
        [input.userIds, input.incidentKey],
      );
      const counts = {
        sent: 0,
        alreadySent: 0,
        noEmail: 0,
        rejected: 0,
        unknownUsers: input.userIds.length - rows.length,
      };
      const queue = [...rows];
      const worker = async () => {
        for (let row = queue.shift(); row; row = queue.shift()) {
          if (row.done) {
            counts.alreadySent++;
            continue;
          }
          let provider: EmailProviderName | null = null;
          let outcome: 'sent' | 'no_email' | 'rejected' = 'no_email';
          if (row.email) {
            const message = {
              to: row.email,
              subject: INCIDENT_NOTIFICATION_SUBJECT,
              text: INCIDENT_NOTIFICATION_TEXT,
              idempotencyKey: notificationKey(input.incidentKey, row.sub),
            };
            try {
              try {
                provider = (await runtime.providers.email[primary!].send(message)).provider as EmailProviderName;
              } catch (err) {
                if (!(err instanceof ProviderTransientError) || !backup || backup === primary) throw err;
                provider = (await runtime.providers.email[backup].send(message)).provider as EmailProviderName;
              }
              outcome = 'sent';
            } catch (err) {
              // a refused address stays refused: record it instead of failing everyone else's email
              if (!(err instanceof ProviderPermanentError)) throw err;
              outcome = 'rejected';
            }
          }
          await db.write(
            `INSERT INTO runbook_notifications (incident_key, user_id, provider, outcome) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
            [input.incidentKey, row.sub, provider, outcome],
          );
          if (outcome === 'sent') counts.sent++;
          else if (outcome === 'rejected') counts.rejected++;
          else counts.noEmail++;
        }
      };
      await Promise.all(Array.from({ length: NOTIFY_CONCURRENCY }, worker));
      return counts;
    },
  };
}
