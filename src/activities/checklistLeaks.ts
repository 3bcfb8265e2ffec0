/**
 * Where a plaintext code or link token must never be, scanned for secrets this check knows
 * (it just received them): audit rows, challenge rows, the challenge workflows' histories
 * (decrypted, as the Temporal UI would show them through the codec) and the metrics pages.
 * The leak-scan patterns (6-digit numbers, 32+ hex characters) are applied to the audit
 * rows written since the run started, outside their id and time columns.
 *
 * Process logs are not readable from here: `npm test` scans every log line of real flows
 * (test/integration), and in production the same grep runs against the log store.
 */
import type { Payload } from '@temporalio/common';
import type { Runtime } from '../runtime';
import { challengeWorkflowId } from '../shared/auth';
import { EncryptionCodec, isPayload, loadPayloadKeyring } from '../temporal/codec';
import { LEAK_SCAN_PATTERNS } from '../runbooks/leakPatterns';

const LEAK_SHAPES = LEAK_SCAN_PATTERNS.map((p) => new RegExp(p.source));

function collectPayloads(value: unknown, out: Payload[], depth = 0): void {
  if (depth > 40 || typeof value !== 'object' || value === null) return;
  if (isPayload(value)) {
    out.push(value);
    return;
  }
  for (const child of Array.isArray(value) ? value : Object.values(value)) collectPayloads(child, out, depth + 1);
}

export interface LeakScanInput {
  challengeIds: string[];
  secrets: string[];
  since: string;
}

export async function scanForLeaks(
  { db, temporal, registry, config }: Pick<Runtime, 'db' | 'temporal' | 'registry' | 'config'>,
  input: LeakScanInput,
): Promise<{ leaks: string[]; scanned: string[] }> {
  const leaks = new Set<string>();
  const scanned: string[] = [];
  const contains = (text: string) => input.secrets.some((s) => text.includes(s));

  // the challenge workflows end (and write their last rows) just after the verify answer
  for (let i = 0; i < 40; i++) {
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM auth_challenges WHERE id = ANY($1::uuid[]) AND status = 'verified'",
      [input.challengeIds],
    );
    if (rows[0]?.n === input.challengeIds.length) break;
    await new Promise((r) => setTimeout(r, 250));
  }

  const audit = await db.query<{ line: string; free: string }>(
    `SELECT row_to_json(a)::text AS line,
            concat_ws(' ', a.event_type, a.outcome, a.reason, a.user_id, a.method, a.ip_masked, a.phone_last4, a.email_domain, a.incident_id, a.details::text) AS free
       FROM audit_events a WHERE occurred_at >= $1`,
    [input.since],
  );
  if (audit.rows.some((r) => contains(r.line))) leaks.add('audit_events');
  const patterned = audit.rows.filter((r) => LEAK_SHAPES.some((p) => p.test(r.free))).length;
  if (patterned) leaks.add(`audit_events (${patterned} row(s) match the leak-scan patterns)`);
  scanned.push(`${audit.rows.length} audit rows`);

  const challenges = await db.query<{ line: string; sealed: boolean }>(
    `SELECT (row_to_json(c)::jsonb - 'secret_hash' - 'sealed_secret')::text AS line, sealed_secret IS NOT NULL AS sealed
       FROM auth_challenges c WHERE id = ANY($1::uuid[])`,
    [input.challengeIds],
  );
  if (challenges.rows.some((r) => contains(r.line))) leaks.add('auth_challenges');
  if (challenges.rows.some((r) => r.sealed)) leaks.add('auth_challenges (sealed copy not wiped after use)');
  scanned.push('challenge rows');

  const codec = new EncryptionCodec(loadPayloadKeyring(config.keys));
  let payloads = 0;
  for (const id of input.challengeIds) {
    const history = await temporal.client.workflow.getHandle(challengeWorkflowId(id)).fetchHistory();
    const found: Payload[] = [];
    collectPayloads(history, found);
    payloads += found.length;
    const decoded = await codec.decode(found);
    const texts = [...found, ...decoded].map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8'));
    if (
      texts.some(contains) ||
      contains(JSON.stringify(history, (_k, v: unknown) => (v instanceof Uint8Array ? undefined : v)))
    )
      leaks.add('Temporal history');
  }
  scanned.push(`${payloads} workflow payloads (decrypted)`);

  if (contains(await registry.metrics())) leaks.add('metrics');
  scanned.push('metrics');
  return { leaks: [...leaks], scanned };
}
