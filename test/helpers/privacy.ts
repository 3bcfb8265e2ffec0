/**
 * Where a person's data could be left behind, searched as an erasure test needs it: every
 * table's every column, Warden's own log lines, /metrics, and every workflow history of the
 * test's task queue (raw, and decoded with a fresh codec that holds no cached keys).
 */
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { SubjectKeyStore } from '../../src/privacy/subjectKeys';
import { EncryptionCodec, parsePayloadKeyring } from '../../src/temporal/codec';
import { SubjectCodec } from '../../src/temporal/subjectCodec';
import { initiate, post, secretFor } from './authClient';
import type { Harness } from './harness';

const LINK_PATH = '/browser/api/v1/identity/auth/magic-link/verify';

/** A verified OTP sign-in (one wrong guess first) and a verified magic link: their challenge ids. */
export async function verifiedSignIns(h: Harness, p: { sub: string; phone: string; email: string }): Promise<string[]> {
  const otp = (await initiate(h, 'otp', p.sub)).json<{ challenge_id: string }>().challenge_id;
  const code = await secretFor(h, otp, 1, p.phone);
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
  if ((await post(h, '/otp/verify', { challenge_id: otp, otp: wrong })).statusCode !== 401)
    throw new Error('a wrong code was not refused');
  if ((await post(h, '/otp/verify', { challenge_id: otp, otp: code })).statusCode !== 200)
    throw new Error('the code did not verify');
  const link = (await initiate(h, 'magic-link', p.sub)).json<{ challenge_id: string }>().challenge_id;
  const token = await secretFor(h, link, 1, p.email);
  const verified = await h.public.inject({ method: 'POST', url: LINK_PATH, payload: { challenge: link, token } });
  if (verified.statusCode !== 200) throw new Error(`the link did not verify: ${verified.body}`);
  return [otp, link];
}

/** Each needle found in `text`, as `where: needle`. */
export function finds(where: string, text: string, needles: string[]): string[] {
  return needles.filter((n) => text.includes(n)).map((n) => `${where}: ${n}`);
}

/** Every column of every table of the harness's database (bytea read as latin1, jsonb as JSON). */
export async function searchTables(h: Harness, needles: string[]): Promise<{ tables: string[]; found: string[] }> {
  const tables = (
    await h.sql<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
        ORDER BY table_name`,
    )
  ).map((t) => t.table_name);
  const found: string[] = [];
  for (const table of tables) {
    const rows = await h.sql(`SELECT * FROM "${table.replace(/"/g, '""')}"`);
    for (const row of rows)
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value instanceof Date) continue;
        const text = Buffer.isBuffer(value)
          ? value.toString('latin1')
          : typeof value === 'object'
            ? JSON.stringify(value)
            : String(value);
        found.push(...finds(`${table}.${column}`, text, needles));
      }
  }
  return { tables, found };
}

/** Warden's log lines (the provider sandbox stands in for the providers and is not Warden). */
export function wardenLogLines(h: Harness): string[] {
  return h.logs.lines.filter((line) => !line.includes('"component":"sandbox"'));
}

/** Every Payload ({metadata, data}) anywhere in a history object. */
export function payloadsOf(node: unknown, out: Payload[] = []): Payload[] {
  if (node === null || typeof node !== 'object' || node instanceof Uint8Array) return out;
  const record = node as Record<string, unknown>;
  if (record.data instanceof Uint8Array && typeof record.metadata === 'object' && record.metadata !== null) {
    out.push(record as Payload);
    return out;
  }
  for (const value of Object.values(record)) payloadsOf(value, out);
  return out;
}

export interface DecodedHistory {
  workflowId: string;
  /** the raw history (encrypted payloads), as bytes read as latin1 */
  raw: string;
  /** every payload, decoded through both layers */
  decoded: Payload[];
  /** the workflow id, memo and search attributes as the visibility listing shows them */
  listing: string;
}

/** Every workflow of the harness's task queue, its history fetched and decoded. */
export async function decodedHistories(h: Harness): Promise<DecodedHistory[]> {
  const keyring = new EncryptionCodec(parsePayloadKeyring(h.env.WARDEN_PAYLOAD_KEYS!));
  const subjects = new SubjectCodec(new SubjectKeyStore(h.runtime.db, h.runtime.keys.keyring, 0));
  const client = h.runtime.temporal.client;
  const out: DecodedHistory[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${h.config.temporal.taskQueue}'` })) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    const raw = Buffer.from(temporal.api.history.v1.History.encode(history).finish()).toString('latin1');
    const decoded = await subjects.decode(await keyring.decode(payloadsOf(history)));
    const listing = JSON.stringify({
      id: wf.workflowId,
      memo: wf.memo ?? null,
      attributes: wf.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]),
    });
    out.push({ workflowId: wf.workflowId, raw, decoded, listing });
  }
  return out;
}

export const payloadText = (payloads: Payload[]) =>
  payloads.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8')).join('\n');

/** A workflow's input as the codec server (what the Temporal UI calls) decodes it. */
export async function codecServerInput(h: Harness, workflowId: string): Promise<unknown> {
  const history = await h.runtime.temporal.client.workflow.getHandle(workflowId).fetchHistory();
  const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
  const b64 = (b?: Uint8Array | null) => Buffer.from(b ?? new Uint8Array()).toString('base64');
  const metadata = Object.fromEntries(Object.entries(input.metadata!).map(([k, v]) => [k, b64(v)]));
  const res = await h.admin.inject({
    method: 'POST',
    url: '/codec/decode',
    headers: { authorization: `Bearer ${h.config.codec.token}`, 'content-type': 'application/json' },
    payload: { payloads: [{ metadata, data: b64(input.data) }] },
  });
  if (res.statusCode !== 200) throw new Error(`codec server: ${res.statusCode} ${res.body}`);
  const [decoded] = res.json<{ payloads: Array<{ data: string }> }>().payloads;
  return JSON.parse(Buffer.from(decoded!.data, 'base64').toString('utf8'));
}

/**
 * What a past incident leaves behind about its users, written as its projection and its
 * runbook's audit-export artifact would be: a resolved incident whose title, state and report
 * name `subjects[0]` (and the others), and an artifact whose lines name them all.
 */
export async function pastIncident(
  h: Harness,
  subjects: Array<{ sub: string; phone: string }>,
): Promise<{ incidentId: string; artifactId: string }> {
  const incidentId = `INC-2020-01-01-${String(Math.floor(Math.random() * 90) + 10)}`;
  const [first] = subjects;
  await h.sql(
    `INSERT INTO incidents (id, type, severity, status, title, workflow_id, resolved_at, state, report)
     VALUES ($1, 'compromised_token', 'P2', 'resolved', $2, $1, now(), $3::jsonb, $4)`,
    [
      incidentId,
      `Codes of ${first!.sub} seen in a support ticket`,
      JSON.stringify({ affected: { users: subjects.map((s) => s.sub), ips: [], providers: [] } }),
      `Affected: ${subjects.map((s) => `${s.sub} (${s.phone})`).join(', ')}.`,
    ],
  );
  const body = subjects
    .map((s) => `${JSON.stringify({ event: 'identity.auth.token_generated', user_id: s.sub })}\n`)
    .join('');
  const [artifact] = await h.sql<{ id: string }>(
    `INSERT INTO runbook_artifacts (workflow_id, name, content_type, incident_id, rows, bytes, sha256)
     VALUES ($1, 'audit-export.ndjson', 'application/x-ndjson', $2, $3, $4, encode(sha256(convert_to($5, 'UTF8')), 'hex'))
     RETURNING id`,
    [`runbook-${incidentId}`, incidentId, subjects.length, Buffer.byteLength(body), body],
  );
  await h.sql('INSERT INTO runbook_artifact_chunks (artifact_id, seq, body) VALUES ($1, 0, $2)', [artifact!.id, body]);
  return { incidentId, artifactId: artifact!.id };
}
