/**
 * Containment by cut-off: affected challenges are refused from the cut-off's commit on, before
 * (and without) their workflows ending them; the attempt's end yields to a cut-off that lands
 * between the API's check and the workflow; a verify racing the containment never succeeds
 * once it has committed; a challenge started after it is unaffected; cleanup then ends the
 * covered rows in bulk and terminates their workflows.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminDeps, revokeChallenges } from '../../src/auth/admin';
import { verifyCandidate } from '../../src/auth/client';
import { aad, seal } from '../../src/auth/crypto';
import { coveredChallengeIds, cutOffChallenges } from '../../src/auth/cutoffs';
import { challengeWorkflowId } from '../../src/shared/auth';
import { startWorker } from '../../src/worker/worker';
import { challengeRow, initiate, post, secretFor } from '../helpers/authClient';
import { publicState, raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

describe('containment by cut-off', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());

  async function issue(userId: string) {
    const { challenge_id } = (await initiate(h, 'otp', userId)).json<{ challenge_id: string }>();
    return { id: challenge_id, code: await secretFor(h, challenge_id) };
  }
  const verify = (c: { id: string; code: string }) => post(h, '/otp/verify', { challenge_id: c.id, otp: c.code });
  const cutOff = (users: string[]) =>
    cutOffChallenges(h.runtime.db.writer, {
      scope: 'user',
      subjects: users,
      reason: 'security_incident',
      actor: 'containment-test',
      incidentId: 'INC-2026-12-07-01',
    });
  const validationOutcomes = async (challengeId: string) =>
    (
      await h.sql<{ outcome: string }>(
        `SELECT outcome FROM audit_events WHERE event_type = 'identity.auth.validation_attempt' AND challenge_id = $1 ORDER BY id`,
        [challengeId],
      )
    ).map((r) => r.outcome);

  it('refuses covered codes from the commit on with no worker running, and leaves later and other challenges alone', async () => {
    const alice = await issue('alice');
    const bob = await issue('bob');
    const other = await issue('test-user');
    // no workflow can act from here on: whatever refuses the codes is the cut-off alone
    await h.worker!.shutdown();
    const cut = await cutOff(['alice', 'bob']);

    for (const c of [alice, bob]) {
      const res = await verify(c);
      expect(res.statusCode).toBe(410);
      expect(res.json()).toMatchObject({ error: 'revoked' });
      expect(await validationOutcomes(c.id)).toEqual(['revoked']);
      // the row is still open (its workflow has not run), the public state already says revoked
      expect((await challengeRow(h, c.id))!.status).toBe('open');
      const state = await publicState(h, c.id);
      expect(state.body).toMatchObject({ status: 'revoked' });
      // nor is another message sent for it
      const resend = await post(h, '/otp/resend', { challenge_id: c.id });
      expect([resend.statusCode, resend.json().error]).toEqual([410, 'revoked']);
    }
    const audit = await h.sql(
      `SELECT outcome, reason, incident_id, details->>'subjects' AS subjects, occurred_at FROM audit_events
        WHERE event_type = 'identity.auth.challenges_cut_off'`,
    );
    expect(audit).toEqual([
      {
        outcome: 'user',
        reason: 'security_incident',
        incident_id: 'INC-2026-12-07-01',
        subjects: '2',
        occurred_at: new Date(cut.revokedBefore),
      },
    ]);

    // a worker again: the uncovered challenge and one started after the cut-off verify
    const worker = await startWorker(h.runtime, { workflowBundlePath: inject('workflowBundlePath') });
    try {
      expect((await verify(other)).statusCode).toBe(200);
      const later = await issue('alice');
      expect((await verify(later)).statusCode).toBe(200);

      // cleanup: the covered rows end in bulk (secret wiped, audited once) and their workflows are terminated
      const covered = await coveredChallengeIds(h.runtime.db, ['alice', 'bob']);
      expect(covered.sort()).toEqual([alice.id, bob.id].sort());
      const outcome = await revokeChallenges(adminDeps(h.runtime), covered, 'security_incident', {
        incidentId: 'INC-2026-12-07-01',
        actor: 'containment-test',
      });
      expect(outcome).toEqual({ revoked: 2, workflowsEnded: 2 });
      for (const c of [alice, bob]) {
        expect(await challengeRow(h, c.id)).toMatchObject({
          status: 'revoked',
          end_reason: 'security_incident',
          sealed_secret: null,
        });
        const description = await h.runtime.temporal.client.workflow.getHandle(challengeWorkflowId(c.id)).describe();
        expect(description.status.name).toBe('TERMINATED');
        expect(
          await h.sql(
            `SELECT outcome, reason, incident_id, details->>'by' AS by FROM audit_events
              WHERE event_type = 'identity.auth.token_invalidated' AND challenge_id = $1`,
            [c.id],
          ),
        ).toEqual([
          { outcome: 'revoked', reason: 'security_incident', incident_id: 'INC-2026-12-07-01', by: 'containment-test' },
        ]);
      }
      // the later challenge (verified) and the other one are not touched; a repeat changes nothing
      expect((await challengeRow(h, later.id))!.status).toBe('verified');
      expect(
        await revokeChallenges(adminDeps(h.runtime), [alice.id, bob.id, later.id], 'security_incident', {
          actor: 'containment-test',
        }),
      ).toEqual({ revoked: 0, workflowsEnded: 0 });
    } finally {
      await worker.shutdown();
    }
  });

  it("ends the attempt revoked when the cut-off lands after the API's check, whatever the code", async () => {
    const worker = await startWorker(h.runtime, { workflowBundlePath: inject('workflowBundlePath') });
    try {
      const c = await issue('test-user-2');
      await cutOff(['test-user-2']);
      // straight to the workflow, as a verify that passed the API's check just before the commit
      const key = await h.runtime.keys.active();
      const sealed = { keyId: key.id, blob: seal(key.seal, c.code, aad.candidate(c.id)).toString('base64') };
      const answer = await verifyCandidate(
        { client: h.runtime.temporal.client, db: h.runtime.db, taskQueue: h.config.temporal.taskQueue },
        c.id,
        sealed,
      );
      expect(answer).toEqual({ result: { outcome: 'revoked' } });
      expect(await challengeRow(h, c.id)).toMatchObject({
        status: 'revoked',
        end_reason: 'security_incident',
        sealed_secret: null,
      });
      const invalidated = await h.sql(
        `SELECT outcome, reason FROM audit_events WHERE event_type = 'identity.auth.token_invalidated' AND challenge_id = $1`,
        [c.id],
      );
      expect(invalidated).toEqual([{ outcome: 'revoked', reason: 'security_incident' }]);
    } finally {
      await worker.shutdown();
    }
  });

  it('lets no verify succeed once the cut-off has committed, while verifies race it', async () => {
    const worker = await startWorker(h.runtime, { workflowBundlePath: inject('workflowBundlePath') });
    try {
      const users = Array.from({ length: 12 }, (_, i) => `race-${i}`);
      await h.sql(
        `INSERT INTO users (sub, phone, email) SELECT s, '+1555010' || lpad(n::text, 4, '0'), NULL
           FROM unnest($1::text[]) WITH ORDINALITY AS t (s, n)`,
        [users],
      );
      const challenges = [];
      for (const u of users) challenges.push(await issue(u));

      // one verify every 40 ms; the cut-off lands in the middle of them
      let committedAt = Infinity;
      const results = challenges.map(async (c, i) => {
        await new Promise((r) => setTimeout(r, i * 40));
        const sentAt = performance.now();
        const res = await verify(c);
        return { c, sentAt, status: res.statusCode, error: res.json<{ error?: string }>().error };
      });
      await new Promise((r) => setTimeout(r, 6 * 40 - 10));
      await cutOff(users);
      committedAt = performance.now();
      const answers = await Promise.all(results);

      const after = answers.filter((a) => a.sentAt > committedAt);
      expect(after.length).toBeGreaterThan(0);
      for (const a of after) expect([a.status, a.error]).toEqual([410, 'revoked']);
      for (const a of answers) {
        expect([200, 410]).toContain(a.status);
        const row = (await challengeRow(h, a.c.id))!;
        // a success is a verified row; a refusal never leaves one
        if (a.status === 200) expect(row.status).toBe('verified');
        else expect(row.status).not.toBe('verified');
      }
    } finally {
      await worker.shutdown();
    }
  });
});
