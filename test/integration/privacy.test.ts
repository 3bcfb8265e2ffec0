/**
 * Data-subject requests (docs/privacy.md) on the real stack: an export after real OTP and
 * magic-link sign-ins, then the erasure of that user, searched for afterwards in every table,
 * Warden's log lines, /metrics and every decoded workflow history; another user untouched; the
 * erasure repeated; an erasure whose worker is stopped mid-way, resumed by another.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { accountedTables } from '../../src/privacy/erasure';
import { EXPORT_SECTIONS } from '../../src/privacy/exportData';
import { logPseudonym, logPseudonymKey } from '../../src/privacy/pseudonyms';
import { userErasureWorkflowId, type ErasureReport } from '../../src/shared/privacy';
import { isErasedPayload } from '../../src/temporal/subjectCodec';
import { startWorker, type WorkerHandle } from '../../src/worker/worker';
import { initiate, secretFor, waitFor } from '../helpers/authClient';
import { raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';
import {
  codecServerInput,
  decodedHistories,
  finds,
  pastIncident,
  payloadText,
  searchTables,
  verifiedSignIns,
  wardenLogLines,
} from '../helpers/privacy';

const USERS = '/admin/api/v1/users';
const tag = randomBytes(4).toString('hex');
const person = (name: string, n: number) => ({
  sub: `${name}-${tag}`,
  phone: `+1555019${String(n).padStart(4, '0')}`,
  email: `${name}-${tag}@privacy.example`,
});
const erased = person('erasable', 1);
const keeper = person('keeper', 2);
const crashy = person('crashy', 3);
const needlesOf = (p: typeof erased) => [p.sub, p.phone, p.email];

describe('export and erasure of a user', () => {
  let h: Harness;
  let replacement: WorkerHandle | undefined;
  let past: { incidentId: string; artifactId: string };
  const challenges: Record<string, string[]> = {};

  const admin = (method: 'GET' | 'POST', url: string, payload?: object, headers = h.adminHeaders) =>
    h.admin.inject({ method, url, headers, ...(payload ? { payload } : {}) });

  const signIns = async (p: typeof erased) => (challenges[p.sub] ??= []).push(...(await verifiedSignIns(h, p)));

  const erasure = async (sub: string) => {
    const res = await admin('POST', `${USERS}/${sub}/erasure`, {});
    expect([200, 202], res.body).toContain(res.statusCode);
    return res.json<{ erasure_id: string }>();
  };
  const report = (sub: string) =>
    waitFor(
      `the erasure of ${sub}`,
      async () => {
        const res = await admin('GET', `${USERS}/${sub}/erasure`);
        return res.statusCode === 200 ? res.json<ErasureReport>() : undefined;
      },
      60_000,
    );

  beforeAll(async () => {
    h = await startHarness({
      listen: true,
      env: { WARDEN_PRIVACY_EXPORT_TTL: '45s', WARDEN_CODEC_TOKEN: randomBytes(24).toString('base64url') },
    });
    await raiseRateLimits(h);
    past = await pastIncident(h, [erased, keeper]);
    for (const p of [erased, keeper, crashy]) expect((await admin('POST', USERS, p)).statusCode).toBe(201);
    await signIns(erased);
    await signIns(keeper);
    // a challenge still open when the erasure comes: it is revoked
    const live = await initiate(h, 'otp', erased.sub);
    await secretFor(h, live.json<{ challenge_id: string }>().challenge_id, 1, erased.phone);
    challenges[erased.sub]!.push(live.json<{ challenge_id: string }>().challenge_id);
  }, 120_000);
  afterAll(async () => {
    await replacement?.shutdown();
    await h?.close();
  });

  it('exports everything Warden holds about the user as JSON with its SHA-256, never a secret or its hash', async () => {
    const responder = await operatorHeaders(h, `privacy-responder-${tag}`, 'responder');
    expect((await admin('POST', `${USERS}/${erased.sub}/export`, {}, responder)).statusCode).toBe(403);
    expect((await admin('POST', `${USERS}/nobody-${tag}/export`, {})).json()).toMatchObject({
      error: 'user_not_found',
    });

    const started = await admin('POST', `${USERS}/${erased.sub}/export`, { format: 'json' });
    expect(started.statusCode).toBe(202);
    const { export_id } = started.json<{ export_id: string }>();
    expect(started.headers.location).toBe(`${USERS}/${erased.sub}/exports/${export_id}`);
    expect((await admin('GET', `${USERS}/${erased.sub}/exports/${export_id}`, undefined, responder)).statusCode).toBe(
      403,
    );
    expect((await admin('GET', `${USERS}/${keeper.sub}/exports/${export_id}`)).statusCode).toBe(404);
    const res = await waitFor('the export', async () => {
      const got = await admin('GET', `${USERS}/${erased.sub}/exports/${export_id}`);
      return got.statusCode === 200 ? got : undefined;
    });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const sha = createHash('sha256').update(res.rawPayload).digest();
    expect(res.headers['content-digest']).toBe(`sha-256=:${sha.toString('base64')}:`);
    expect(res.headers.etag).toBe(`"${sha.toString('hex')}"`);

    const artifact = res.json<{ subject: string; sections: Record<string, unknown> }>();
    expect(artifact.subject).toBe(erased.sub);
    expect(Object.keys(artifact.sections)).toEqual(expect.arrayContaining(EXPORT_SECTIONS.slice(0, 6)));
    const s = artifact.sections as Record<string, Array<Record<string, unknown>>> & { profile: object };
    expect(s.profile).toMatchObject({ sub: erased.sub, phone: erased.phone, email: erased.email });
    expect(s.challenges!.map((c) => c.id)).toEqual(expect.arrayContaining(challenges[erased.sub]!));
    expect(s.challenges!.map((c) => c.method)).toEqual(expect.arrayContaining(['sms_otp', 'magic_link']));
    expect(s.deliveries!.map((d) => d.channel)).toEqual(expect.arrayContaining(['sms', 'email']));
    expect(s.validation_attempts!.length).toBeGreaterThanOrEqual(2);
    expect(s.audit_events!.map((e) => e.event)).toEqual(
      expect.arrayContaining(['identity.auth.token_generated', 'identity.auth.validation_attempt']),
    );
    expect(s.incidents!.map((i) => i.id)).toEqual([past.incidentId]);
    // no code or token, nor any hash or sealed copy of one
    const hashes = await h.sql<{ secret_hash: string }>('SELECT secret_hash FROM auth_challenges WHERE user_id = $1', [
      erased.sub,
    ]);
    expect(hashes.length).toBe(3);
    for (const { secret_hash } of hashes) expect(res.body).not.toContain(secret_hash);
    for (const field of ['secret_hash', 'sealed_secret', 'code_challenge', 'device_sha256', 'code_sha256', '$2b$'])
      expect(res.body).not.toContain(field);

    // NDJSON: a header line, then one record per line
    const nd = await admin('POST', `${USERS}/${keeper.sub}/export`, { format: 'ndjson' });
    const ndId = nd.json<{ export_id: string }>().export_id;
    const lines = await waitFor('the NDJSON export', async () => {
      const got = await admin('GET', `${USERS}/${keeper.sub}/exports/${ndId}`);
      return got.statusCode === 200
        ? got.body
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : undefined;
    });
    expect(lines[0]).toMatchObject({ format: 'warden-user-export/1', subject: keeper.sub });
    expect(lines.filter((l) => l.section === 'challenges')).toHaveLength(2);
    // the incident they share with the other user, without the free text that names the other
    expect(lines.filter((l) => l.section === 'incidents')).toEqual([
      { section: 'incidents', record: expect.objectContaining({ id: past.incidentId }) },
    ]);
    expect(JSON.stringify(lines)).not.toContain(erased.sub);
    // audited by ids, never the user's
    const audited = await h.sql<{ user_id: string | null; details: { export_id: string } }>(
      `SELECT user_id, details FROM audit_events WHERE event_type = 'identity.privacy.export_requested'`,
    );
    expect(audited.map((a) => a.details.export_id)).toEqual(expect.arrayContaining([export_id, ndId]));
    expect(audited.every((a) => a.user_id === null)).toBe(true);
  });

  it('erases the user: nothing of their id, phone or email left in any table, log line, metric or decoded history', async () => {
    const needles = needlesOf(erased);
    // the search is not blind: before the erasure it finds the user where they belong, and their
    // log lines under their pseudonym
    const { tables: tables0, found: found0 } = await searchTables(h, needles);
    expect(found0).toEqual(
      expect.arrayContaining([
        'users.sub: ' + erased.sub,
        'users.phone: ' + erased.phone,
        'users.email: ' + erased.email,
      ]),
    );
    const before = await decodedHistories(h);
    expect(before.filter((x) => payloadText(x.decoded).includes(erased.sub)).length).toBeGreaterThanOrEqual(3);
    const pseudonym = logPseudonym(logPseudonymKey(h.runtime.keys.keyring), erased.sub);
    expect(wardenLogLines(h).filter((line) => line.includes(pseudonym)).length).toBeGreaterThan(3);

    const keeperAudit = await h.sql('SELECT id FROM audit_events WHERE user_id = $1', [keeper.sub]);
    const auditBefore = await h.sql<{ n: string }>('SELECT count(*) AS n FROM audit_events');
    const { erasure_id } = await erasure(erased.sub);
    const done = await report(erased.sub);
    expect(done).toMatchObject({ erasure_id, status: 'completed', payload_key: 'destroyed', revoked_challenges: 1 });
    expect(done.deleted).toMatchObject({ users: 1, auth_challenges: 3 });
    expect(done.deleted.delivery_attempts).toBeGreaterThanOrEqual(3);
    expect(done.audit_pseudonymized).toBeGreaterThan(5);
    expect(JSON.stringify(done)).not.toContain(erased.sub);
    expect(done.scrubbed).toMatchObject({
      'incidents.title': 1,
      'incidents.state': 1,
      'incidents.report': 1,
      'runbook_artifact_chunks.body': 1,
    });

    // the destination budget keeps digests of the number and address, not the values: gone too
    if (tables0.includes('destination_sends'))
      expect(
        await h.sql(`SELECT 1 FROM destination_sends WHERE destination = ANY ($1::bytea[])`, [
          [`sms:${erased.phone}`, `email:${erased.email}`].map((d) => createHash('sha256').update(d).digest()),
        ]),
      ).toEqual([]);
    const { tables, found } = await searchTables(h, needles);
    expect(found).toEqual([]);
    expect(
      tables.filter((t) => !accountedTables().has(t)),
      'tables the erasure does not account for',
    ).toEqual([]);
    expect(wardenLogLines(h).flatMap((line) => finds('log', line, needles))).toEqual([]);
    const metrics = await (await fetch(`${h.servers!.urls.metrics}/metrics`)).text();
    expect(metrics).toContain('warden_auth_tokens_generated_total');
    expect(finds('metrics', metrics, needles)).toEqual([]);

    const histories = await decodedHistories(h);
    for (const id of challenges[erased.sub]!) expect(histories.map((x) => x.workflowId)).toContain(`challenge-${id}`);
    for (const x of histories) {
      expect(finds(`${x.workflowId} (raw)`, x.raw, needles)).toEqual([]);
      expect(finds(`${x.workflowId} (decoded)`, payloadText(x.decoded), needles)).toEqual([]);
      expect(finds(`${x.workflowId} (listing)`, x.listing, needles)).toEqual([]);
    }
    // the erased user's challenge inputs decode as erased; the other user's still decode
    const mine = histories.filter((x) => challenges[erased.sub]!.some((id) => x.workflowId === `challenge-${id}`));
    expect(mine.every((x) => x.decoded.some(isErasedPayload))).toBe(true);
    const theirs = histories.filter((x) => challenges[keeper.sub]!.some((id) => x.workflowId === `challenge-${id}`));
    expect(theirs).toHaveLength(2);
    for (const x of theirs) {
      expect(x.decoded.some(isErasedPayload)).toBe(false);
      expect(payloadText(x.decoded)).toContain(keeper.sub);
    }

    // the other user untouched (the incident still names them; the artifact's checksum is its new body's)
    const [incident] = await h.sql<{ state: { affected: { users: string[] } } }>(
      'SELECT state FROM incidents WHERE id = $1',
      [past.incidentId],
    );
    expect(incident!.state.affected.users).toEqual([expect.stringMatching(/^~erased:/), keeper.sub]);
    const [artifact] = await h.sql<{ ok: boolean }>(
      `SELECT a.sha256 = encode(sha256(convert_to(c.body, 'UTF8')), 'hex') AS ok FROM runbook_artifacts a
         JOIN runbook_artifact_chunks c ON c.artifact_id = a.id WHERE a.id = $1`,
      [past.artifactId],
    );
    expect(artifact).toEqual({ ok: true });
    // the trail kept every row, the erased user's under one pseudonym
    expect(await h.sql('SELECT 1 FROM users WHERE sub = $1', [keeper.sub])).toHaveLength(1);
    expect(await h.sql('SELECT 1 FROM auth_challenges WHERE user_id = $1', [keeper.sub])).toHaveLength(2);
    // (a late delivery receipt may add to the keeper's rows, never take any away)
    expect(await h.sql('SELECT id FROM audit_events WHERE user_id = $1', [keeper.sub])).toEqual(
      expect.arrayContaining(keeperAudit),
    );
    const pseudonyms = await h.sql<{ user_id: string; n: string }>(
      `SELECT user_id, count(*) AS n FROM audit_events WHERE user_id LIKE '~erased:%' GROUP BY user_id`,
    );
    expect(pseudonyms).toEqual([{ user_id: expect.any(String), n: String(done.audit_pseudonymized) }]);
    const auditAfter = await h.sql<{ n: string }>('SELECT count(*) AS n FROM audit_events');
    expect(Number(auditAfter[0]!.n)).toBeGreaterThan(Number(auditBefore[0]!.n));
    // still append-only to everyone else
    await expect(
      h.sql(`UPDATE audit_events SET user_id = 'someone' WHERE user_id = $1`, [pseudonyms[0]!.user_id]),
    ).rejects.toThrow(/append-only/);
    await expect(h.sql(`SELECT warden_audit_erase($1, 'someone-else', '{}', 10)`, [keeper.sub])).rejects.toThrow(
      /pseudonym/,
    );

    // the codec server (what the Temporal UI shows) reports the payloads as erased
    expect(await codecServerInput(h, `challenge-${challenges[erased.sub]![0]}`)).toMatchObject({ erased: true });
    expect(await codecServerInput(h, `challenge-${challenges[keeper.sub]![0]}`)).toMatchObject({ userId: keeper.sub });
  }, 120_000);

  it('answers a repeated erasure with its report and changes nothing', async () => {
    const first = await report(erased.sub);
    const again = await admin('POST', `${USERS}/${erased.sub}/erasure`, {});
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first);
    // the workflow itself, run once more for the same erasure, finds nothing to do
    const rerun = await h.runtime.temporal.client.workflow.execute('userErasureWorkflow', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `${userErasureWorkflowId(first.erasure_id)}-again`,
      args: [{ erasureId: first.erasure_id }],
    });
    expect(rerun).toEqual(first);
    expect((await admin('GET', `${USERS}/nobody-${tag}/erasure`)).json()).toMatchObject({ error: 'erasure_not_found' });
    expect((await admin('POST', `${USERS}/nobody-${tag}/erasure`, {})).json()).toMatchObject({
      error: 'user_not_found',
    });
  });

  it('deletes an export when it expires, whether or not it was downloaded', async () => {
    const { export_id } = (await admin('POST', `${USERS}/${keeper.sub}/export`, {})).json<{ export_id: string }>();
    const url = `${USERS}/${keeper.sub}/exports/${export_id}`;
    await waitFor('the export', async () => ((await admin('GET', url)).statusCode === 200 ? true : undefined));
    const gone = await waitFor(
      'its expiry',
      async () => {
        const res = await admin('GET', url);
        return res.statusCode === 410 ? res : undefined;
      },
      90_000,
    );
    expect(gone.json()).toMatchObject({ error: 'export_expired' });
    await waitFor(
      'its deletion',
      async () =>
        (
          await h.sql(`SELECT 1 FROM user_exports WHERE id = $1 AND status = 'expired' AND subject IS NULL`, [
            export_id,
          ])
        ).length && !(await h.sql('SELECT 1 FROM user_export_chunks WHERE export_id = $1', [export_id])).length
          ? true
          : undefined,
      30_000,
    );
  }, 150_000);

  it('resumes an erasure whose worker stopped between steps, after a step failed', async () => {
    await signIns(crashy);
    // a responder's transaction holds the user's challenge rows: that step fails (statement timeout) and is retried
    const blocker = new pg.Client({ connectionString: h.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT id FROM auth_challenges WHERE user_id = $1 FOR UPDATE', [crashy.sub]);
    const { erasure_id } = await erasure(crashy.sub);
    const handle = h.runtime.temporal.client.workflow.getHandle(userErasureWorkflowId(erasure_id));
    await waitFor(
      'a failed attempt at the challenges step',
      async () => {
        const pending = (await handle.describe()).raw.pendingActivities?.[0];
        return pending?.activityType?.name === 'eraseUserRows' && (pending.attempt ?? 0) >= 2 ? true : undefined;
      },
      60_000,
    );
    // no export of someone being erased: it would outlive the erasure
    const refused = await admin('POST', `${USERS}/${crashy.sub}/export`, {});
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error: 'erasure_running' });
    await h.worker!.shutdown();
    const [row] = await h.sql<{ status: string; report: ErasureReport }>(
      'SELECT status, report FROM user_erasures WHERE id = $1',
      [erasure_id],
    );
    expect(row).toMatchObject({ status: 'running', report: { deleted: { users: 1 } } });
    expect(row!.report.deleted.auth_challenges).toBeUndefined();
    await blocker.query('ROLLBACK');
    await blocker.end();

    replacement = await startWorker(h.runtime, { workflowBundlePath: inject('workflowBundlePath') });
    const result = (await handle.result()) as ErasureReport;
    expect(result).toMatchObject({
      status: 'completed',
      payload_key: 'destroyed',
      deleted: { users: 1, auth_challenges: 2 },
    });
    expect((await searchTables(h, needlesOf(crashy))).found).toEqual([]);
  }, 120_000);
});
