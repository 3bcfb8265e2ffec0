/**
 * The challenge workflow's side effects on Postgres. Each activity does one thing, is
 * idempotent (a retry after a lost reply changes nothing twice), and neither takes nor
 * returns a secret: the secret is born, hashed and sealed inside `issueChallenge`, and the
 * candidate arrives sealed and is opened only inside `attemptChallenge`.
 */
import { ApplicationFailure } from '@temporalio/common';
import { AuditEventType, insertAudit, logAudit, type AuditRow } from '../auth/audit';
import { insertBinding } from '../auth/bindings';
import { openCutOffReason } from '../auth/cutoffs';
import { endChallengeRow } from '../auth/end';
import { timeStage } from '../telemetry/stages';
import { aad, compareSecret, generateSecret, hashSecret, seal, unseal, UnsealError } from '../auth/crypto';
import { DataKeyUnavailableError } from '../auth/keys';
import { planDelivery } from '../delivery/sender';
import type { Runtime } from '../runtime';
import type { DeliveryPlan } from '../shared/delivery';
import {
  challengeWorkflowId,
  ChallengeErrorType,
  decideAttempt,
  type AttemptDecision,
  type AuthMethod,
  type ChallengeBinding,
  type ChallengeEnd,
  type ChallengeStatus,
  type InvalidationReason,
  type RevokeReason,
  type SealedCandidate,
} from '../shared/auth';

function notFound(challengeId: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`challenge ${challengeId} has no row`, ChallengeErrorType.notFound);
}

export interface IssueChallengeInput {
  challengeId: string;
  userId: string;
  method: AuthMethod;
  ipMasked: string;
  expiresAt: string;
  maxAttempts: number;
  binding?: ChallengeBinding;
}

export interface IssueChallengeResult {
  expiresAt: string;
  /** the first send's plan (one local activity less), unless planning failed: the workflow then plans it itself */
  plan?: DeliveryPlan;
}

export interface AttemptChallengeInput {
  challengeId: string;
  candidate: SealedCandidate;
  /** the workflow's attempt count including this one (what the row and the end record) */
  attempts: number;
  maxAttempts: number;
}

export interface EndChallengeInput {
  challengeId: string;
  status: ChallengeEnd;
  reason: InvalidationReason;
  attempts: number;
  incidentId?: string;
}

/** a data key retired between reading it and inserting is retried this many times */
const ISSUE_KEY_RACES = 3;

export function createAuthActivities(
  runtime: Pick<Runtime, 'db' | 'logger' | 'metrics' | 'config' | 'providers' | 'keys' | 'routes'>,
) {
  const { db, logger, metrics } = runtime;
  const auditLog = logger.child({ component: 'audit' });

  /**
   * The row an attempt needs: the stored hash, its key, and the reason of a revocation cut-off
   * that covers it while it is open (src/auth/cutoffs.ts; ended rows answer by their status).
   */
  async function attemptRow(challengeId: string) {
    const { rows } = await db.query<{
      secret_hash: string | null;
      key_id: string | null;
      status: ChallengeStatus;
      end_reason: InvalidationReason | null;
      cut_reason: RevokeReason | null;
    }>(
      `SELECT c.secret_hash, c.key_id, c.status, c.end_reason,
              ${openCutOffReason('c')} AS cut_reason
         FROM auth_challenges c WHERE c.id = $1`,
      [challengeId],
    );
    const row = rows[0];
    if (!row?.secret_hash || !row.key_id) throw notFound(challengeId);
    return { ...row, secret_hash: row.secret_hash, key_id: row.key_id };
  }

  /** Opens the sealed candidate and compares it with the stored hash; false for a candidate that does not authenticate. */
  async function matches(
    challengeId: string,
    row: { secret_hash: string; key_id: string },
    sealedCandidate: SealedCandidate,
  ): Promise<boolean> {
    const { keys } = runtime;
    const transport = await keys.get(sealedCandidate.keyId);
    let candidate: string;
    try {
      candidate = unseal(
        transport.seal,
        Buffer.from(sealedCandidate.blob, 'base64'),
        aad.candidate(challengeId),
      ).toString('utf8');
    } catch (err) {
      if (err instanceof UnsealError) return false;
      throw err;
    }
    const stored = await keys.get(row.key_id);
    const hash = row.secret_hash;
    return timeStage(metrics, 'verify', 'compare', () => compareSecret(stored.pepper, candidate, hash));
  }

  /** A cut-off covers the challenge: the attempt ends it revoked, whatever the candidate. */
  async function revokedByCutOff(
    challengeId: string,
    reason: RevokeReason,
    attempts: number,
  ): Promise<AttemptDecision> {
    const result = await endChallengeRow(db.writer, { challengeId, status: 'revoked', reason, attempts });
    ended(result, reason);
    return { outcome: 'revoked', end: { status: 'revoked', reason: (result?.reason as RevokeReason) ?? reason } };
  }

  /** After an end landed: its audit line and, for ends without success, the catalog's counter. */
  function ended(result: Awaited<ReturnType<typeof endChallengeRow>>, reason: InvalidationReason): void {
    if (!result) return;
    logAudit(auditLog, result.audit);
    if (reason !== 'used') metrics.tokensInvalidated.inc({ method: result.method, reason });
  }

  /** The first send's plan for a just-issued challenge; a planning failure leaves it to the workflow. */
  async function planFirstSend(challengeId: string): Promise<DeliveryPlan | undefined> {
    try {
      return await planDelivery(runtime, { challengeId, sendNumber: 1 });
    } catch (err) {
      logger.warn(
        { component: 'delivery', challengeId, err: (err as Error).message },
        'planning the first send with the issue failed; the workflow plans it',
      );
      return undefined;
    }
  }

  async function existingExpiry(challengeId: string): Promise<string | undefined> {
    const { rows } = await db.query<{ expires_at: Date }>('SELECT expires_at FROM auth_challenges WHERE id = $1', [
      challengeId,
    ]);
    return rows[0]?.expires_at.toISOString();
  }

  return {
    /**
     * Generates the secret, stores bcrypt(HMAC(pepper, secret)) and the sealed copy, and
     * records identity.auth.token_generated, in one transaction. The insert takes a share lock
     * on the data key's row and requires it to be active, so a key rotation either waits for
     * this insert (and then sees it when revoking) or makes it retry under the new key.
     */
    async issueChallenge(input: IssueChallengeInput): Promise<IssueChallengeResult> {
      const { challengeId, userId, method, ipMasked } = input;
      const withPlan = async (expiresAt: string): Promise<IssueChallengeResult> => {
        const plan = await planFirstSend(challengeId);
        return plan ? { expiresAt, plan } : { expiresAt };
      };
      const already = await existingExpiry(challengeId);
      if (already) return withPlan(already);
      const { keys } = runtime;
      for (let attempt = 0; attempt < ISSUE_KEY_RACES; attempt += 1) {
        const key = await keys.active();
        const secret = generateSecret(method);
        // bcrypt runs on libuv's pool, outside any transaction
        const secretHash = await timeStage(metrics, 'initiate', 'hash', () => hashSecret(key.pepper, secret));
        const sealed = seal(key.seal, secret, aad.storedSecret(challengeId));
        const audit = await timeStage(metrics, 'initiate', 'db', () =>
          db.transaction(async (tx): Promise<AuditRow | undefined | false> => {
            const inserted = await tx.query(
              `INSERT INTO auth_challenges (id, user_id, method, secret_hash, key_id, sealed_secret,
                                          max_attempts, client_ip_masked, expires_at)
             SELECT $1, $2, $3, $4, k.id, $6, $7, $8, $9
               FROM signing_keys k WHERE k.id = $5 AND k.status = 'active' FOR SHARE OF k
             ON CONFLICT (id) DO NOTHING`,
              [challengeId, userId, method, secretHash, key.id, sealed, input.maxAttempts, ipMasked, input.expiresAt],
            );
            if (inserted.rowCount !== 1) return false;
            if (input.binding) await insertBinding(tx, challengeId, input.binding);
            return insertAudit(tx, {
              type: AuditEventType.tokenGenerated,
              outcome: 'issued',
              challengeId,
              userId,
              method,
              ipMasked,
              details: { key_id: key.id, expires_at: input.expiresAt },
              dedupeKey: `${challengeWorkflowId(challengeId)}/generated`,
            });
          }),
        );
        if (audit !== false) {
          logAudit(auditLog, audit);
          metrics.tokensGenerated.inc({ method });
          return withPlan(input.expiresAt);
        }
        const raced = await existingExpiry(challengeId);
        if (raced) return withPlan(raced);
        keys.invalidate();
      }
      throw new DataKeyUnavailableError('the active data key kept changing while issuing');
    },

    /**
     * One verify attempt: compares the sealed candidate (one that does not authenticate is simply
     * wrong) with the stored hash, decides what that does to the challenge (decideAttempt), and
     * does it: ends the row verified or locked, or records the failed-attempt count. Idempotent:
     * a retry after the row ended compares again (the hash stays) and finds the end already done.
     */
    async attemptChallenge(input: AttemptChallengeInput): Promise<AttemptDecision> {
      const { challengeId, attempts } = input;
      const row = await attemptRow(challengeId);
      // covered by a cut-off: no comparison
      if (row.cut_reason) return revokedByCutOff(challengeId, row.cut_reason, attempts);
      // a retry after that (or a revocation that won the race) finds the row revoked already
      if (row.status === 'revoked') {
        return { outcome: 'revoked', end: { status: 'revoked', reason: row.end_reason as RevokeReason } };
      }
      const decision = decideAttempt(await matches(challengeId, row, input.candidate), attempts, input.maxAttempts);
      if (decision.outcome === 'invalid') {
        // the workflow holds the authoritative count; the row's is for responders
        const { rows } = await db.write<{ cut_reason: RevokeReason | null }>(
          `UPDATE auth_challenges c SET attempts = GREATEST(attempts, $2), last_attempt_at = now() WHERE id = $1
           RETURNING ${openCutOffReason('c')} AS cut_reason`,
          [challengeId, attempts],
        );
        const cut = rows[0]?.cut_reason;
        return cut ? revokedByCutOff(challengeId, cut, attempts) : decision;
      }
      // the end yields to a cut-off committed before it: then the challenge ends revoked, not verified
      const result = await endChallengeRow(db.writer, { challengeId, ...decision.end, attempts, yieldsToCutOff: true });
      ended(result, result?.reason ?? decision.end.reason);
      if (result?.status === 'revoked') {
        return { outcome: 'revoked', end: { status: 'revoked', reason: result.reason as RevokeReason } };
      }
      return decision;
    },

    /**
     * Every end of a challenge: the row says how it ended, the sealed copy is wiped, and
     * identity.auth.token_invalidated is recorded. A second call finds the row already ended.
     */
    async endChallenge(input: EndChallengeInput): Promise<void> {
      const { challengeId, reason } = input;
      const result = await endChallengeRow(db.writer, input);
      if (!result) {
        const { rows } = await db.query('SELECT 1 FROM auth_challenges WHERE id = $1', [challengeId]);
        if (!rows[0]) throw notFound(challengeId);
        return;
      }
      ended(result, reason);
    },
  };
}
