import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptionCodec, parsePayloadKeyring } from '../../src/temporal/codec';
import { initiate, post, putRateLimits, putSettings, secretFor, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const LINK_PATH = '/browser/api/v1/identity/auth/magic-link/verify';
const USERS = 40;
const FLOWS = 200;
const CONCURRENCY = 8;
// the suite runs files side by side on a small machine: a message may take a while to go out
const MESSAGE_WAIT_MS = 60_000;
const phoneOf = (i: number) => `+1555777${String(i).padStart(4, '0')}`;
const emailOf = (i: number) => `leak-${i}@leak.example`;

/** A 6-digit code counts as found only as a whole number, not inside a longer token. */
function finder(secrets: string[]): (haystack: string) => string[] {
  const codes = new Set(secrets.filter((s) => s.length === 6));
  const tokens = secrets.filter((s) => s.length > 6);
  return (haystack) => {
    const found = new Set<string>();
    for (const match of haystack.matchAll(/(?<![0-9A-Za-z])[0-9]{6}(?![0-9A-Za-z])/g))
      if (codes.has(match[0])) found.add(match[0]);
    for (const token of tokens) if (haystack.includes(token)) found.add(token);
    return [...found];
  };
}

/** Every Payload ({metadata, data}) anywhere in a history object. */
function payloadsOf(node: unknown, out: temporal.api.common.v1.IPayload[] = []): temporal.api.common.v1.IPayload[] {
  if (node === null || typeof node !== 'object' || node instanceof Uint8Array) return out;
  const record = node as Record<string, unknown>;
  if (record.data instanceof Uint8Array && typeof record.metadata === 'object' && record.metadata !== null) {
    out.push(record as temporal.api.common.v1.IPayload);
    return out;
  }
  for (const value of Object.values(record)) payloadsOf(value, out);
  return out;
}

async function pool<T>(items: T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) await run(items[next++]!);
    }),
  );
}

/**
 * The leak scan: after 200 real flows (OTP and magic link, wrong guesses, resends,
 * lockouts and expiries), no issued secret appears in any log line, any workflow history
 * (raw and decoded), /metrics, or any column of any table.
 */
describe('secret leakage', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ listen: true });
    await putRateLimits(h, { per_user: { max_attempts: 100_000 }, per_ip: { max_attempts: 100_000 } });
    await putSettings(h, { resend_cooldown_seconds: 0 });
    for (let i = 0; i < USERS; i += 1) {
      await h.sql('INSERT INTO users (sub, phone, email) VALUES ($1, $2, $3)', [
        `leak-user-${i}`,
        phoneOf(i),
        emailOf(i),
      ]);
    }
  });
  afterAll(async () => h?.close());

  it(
    'keeps every issued code and token out of logs, histories, metrics and the database',
    { timeout: 240_000 },
    async () => {
      const secrets: string[] = [];
      const ids: string[] = [];
      const outcomes: Record<string, number> = {};
      const count = (k: string) => {
        outcomes[k] = (outcomes[k] ?? 0) + 1;
      };
      const wrong = (s: string) =>
        s.length === 6
          ? String((Number(s) + 1) % 1_000_000).padStart(6, '0')
          : s.endsWith('A')
            ? `${s.slice(0, -1)}B`
            : `${s.slice(0, -1)}A`;
      const verify = (id: string, secret: string, otp: boolean) =>
        otp
          ? post(h, '/otp/verify', { challenge_id: id, otp: secret })
          : h.public.inject({ method: 'POST', url: LINK_PATH, payload: { challenge: id, token: secret } });

      // phase 1: challenges that will expire unused (short TTL), one guess each before expiry
      await putSettings(h, { otp_ttl_seconds: 8, magic_link_ttl_seconds: 8 });
      const expiring: Array<{ id: string; secret: string; otp: boolean }> = [];
      await pool(
        Array.from({ length: 20 }, (_, i) => i),
        CONCURRENCY,
        async (i) => {
          const otp = i % 2 === 0;
          const user = i % USERS;
          const res = await initiate(h, otp ? 'otp' : 'magic-link', `leak-user-${user}`);
          const id = res.json<{ challenge_id: string }>().challenge_id;
          const secret = await secretFor(h, id, 1, otp ? phoneOf(user) : emailOf(user), MESSAGE_WAIT_MS);
          ids.push(id);
          secrets.push(secret);
          expiring.push({ id, secret, otp });
          // a wrong guess before expiry (on a slow machine it may already be too late: 410)
          expect([401, 410]).toContain((await verify(id, wrong(secret), otp)).statusCode);
        },
      );
      await putSettings(h, { otp_ttl_seconds: 300, magic_link_ttl_seconds: 900 });

      // phase 2: the rest, with successes, wrong guesses, resends, confirm pages and a few lockouts
      // (bcrypt at cost 10 is the floor of this test's run time: each guess is one compare)
      await pool(
        Array.from({ length: FLOWS - expiring.length }, (_, i) => i),
        CONCURRENCY,
        async (i) => {
          const kind = i % 10;
          const otp = kind < 5 || kind === 9;
          const user = i % USERS;
          const to = otp ? phoneOf(user) : emailOf(user);
          const res = await initiate(h, otp ? 'otp' : 'magic-link', `leak-user-${user}`);
          expect(res.statusCode).toBe(202);
          const id = res.json<{ challenge_id: string }>().challenge_id;
          ids.push(id);
          const secret = await secretFor(h, id, 1, to, MESSAGE_WAIT_MS);
          secrets.push(secret);
          if (kind === 9 && i % 20 === 9) {
            for (let n = 0; n < 5; n += 1) await verify(id, wrong(secret), otp);
            expect((await verify(id, secret, otp)).statusCode).toBe(423);
            count('locked');
            return;
          }
          if (kind === 2 || kind === 7) {
            const resend = otp
              ? post(h, '/otp/resend', { challenge_id: id })
              : post(h, '/magic-link/resend', { challenge_id: id });
            expect((await resend).statusCode).toBe(202);
            expect(await secretFor(h, id, 2, to, MESSAGE_WAIT_MS)).toBe(secret);
            count('resent');
          }
          if (kind === 6) {
            expect(
              (await h.public.inject({ method: 'GET', url: `${LINK_PATH}?challenge=${id}&token=${secret}` }))
                .statusCode,
            ).toBe(200);
          }
          if (kind === 3 || kind === 8) expect((await verify(id, wrong(secret), otp)).statusCode).toBe(401);
          expect((await verify(id, secret, otp)).statusCode).toBe(200);
          count(otp ? 'otp' : 'magic_link');
        },
      );
      for (const e of expiring) {
        await waitFor(`expiry of ${e.id}`, async () =>
          (await h.sql(`SELECT 1 FROM auth_challenges WHERE id = $1 AND status = 'expired'`, [e.id])).length
            ? true
            : undefined,
        );
        expect((await verify(e.id, e.secret, e.otp)).statusCode).toBe(410);
      }
      // 6-digit codes of different challenges may coincide; every flow issued one secret
      expect(secrets).toHaveLength(FLOWS);
      expect(outcomes).toMatchObject({
        locked: expect.any(Number),
        resent: expect.any(Number),
        otp: expect.any(Number),
        magic_link: expect.any(Number),
      });
      const find = finder(secrets);

      // the secrets must be findable where they belong: the scan is not blind
      const outbox = await (await fetch(`${h.sandbox.url}/sandbox/messages`)).text();
      expect(find(outbox)).toHaveLength(new Set(secrets).size);

      // 1. every log line
      expect(h.logs.lines.length).toBeGreaterThan(FLOWS);
      expect(find(h.logs.text())).toEqual([]);

      // 2. every workflow history on this task queue, raw (encrypted) and decoded with the codec
      const codec = new EncryptionCodec(parsePayloadKeyring(h.env.WARDEN_PAYLOAD_KEYS!));
      const client = h.runtime.temporal.client;
      const workflowIds: string[] = [];
      for await (const wf of client.workflow.list({ query: `TaskQueue = '${h.config.temporal.taskQueue}'` }))
        workflowIds.push(wf.workflowId);
      expect(workflowIds.length).toBeGreaterThanOrEqual(FLOWS);
      for (const id of ids) expect(workflowIds).toContain(`challenge-${id}`);
      let decodedPayloads = 0;
      await pool(workflowIds, 8, async (workflowId) => {
        const history = await client.workflow.getHandle(workflowId).fetchHistory();
        const raw = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
        expect(find(raw.toString('latin1')), `raw history of ${workflowId}`).toEqual([]);
        const payloads = payloadsOf(history);
        const decoded = await codec.decode(payloads);
        decodedPayloads += decoded.length;
        const text = decoded.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8')).join('\n');
        expect(find(text), `decoded history of ${workflowId}`).toEqual([]);
        for (const token of secrets.filter((s) => s.length > 6))
          expect(raw.includes(Buffer.from(token, 'base64url'))).toBe(false);
      });
      expect(decodedPayloads).toBeGreaterThan(FLOWS * 3);

      // 3. /metrics, as scraped
      const metrics = await (await fetch(`${h.servers!.urls.metrics}/metrics`)).text();
      expect(metrics).toContain('warden_auth_tokens_generated_total');
      expect(find(metrics)).toEqual([]);

      // 4. every text, bytea and jsonb column of every table: the secret exists only as its hash
      const tables = await h.sql<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
      );
      expect(tables.map((t) => t.table_name)).toEqual(
        expect.arrayContaining(['auth_challenges', 'audit_events', 'challenge_validation_attempts', 'signing_keys']),
      );
      const tokenBytes = secrets.filter((s) => s.length > 6).map((s) => Buffer.from(s, 'base64url'));
      for (const { table_name } of tables) {
        const rows = await h.sql(`SELECT * FROM "${table_name.replace(/"/g, '""')}"`);
        const parts: string[] = [];
        for (const row of rows) {
          for (const value of Object.values(row)) {
            if (Buffer.isBuffer(value)) {
              parts.push(value.toString('latin1'));
              for (const bytes of tokenBytes)
                expect(value.includes(bytes), `raw token bytes in ${table_name}`).toBe(false);
            } else if (value !== null && typeof value === 'object' && !(value instanceof Date))
              parts.push(JSON.stringify(value));
            else parts.push(String(value));
          }
        }
        expect(find(parts.join('\n')), `table ${table_name}`).toEqual([]);
      }
      const challenges = await h.sql<{ secret_hash: string; sealed_secret: Buffer | null }>(
        'SELECT secret_hash, sealed_secret FROM auth_challenges WHERE id = ANY($1::uuid[])',
        [ids],
      );
      expect(challenges).toHaveLength(FLOWS);
      expect(
        challenges.every((c) => /^\$2b\$10\$[./A-Za-z0-9]{53}$/.test(c.secret_hash) && c.sealed_secret === null),
      ).toBe(true);
    },
  );
});
