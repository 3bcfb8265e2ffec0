/**
 * The recovery checklist's `no_plaintext_tokens`: where a code or a link token must never be,
 * searched for secrets the caller holds in memory at that moment and never keeps (the sandbox
 * path's synthetic flows, or the canary's inbound webhook with the code or link it has just
 * received and verified: src/canary/inbound.ts).
 *
 * - where: the audit rows written since the run started (and those of the challenges), the
 *   challenges' rows (without their hash), the canary's rows, the named workflow histories
 *   (every payload as stored and decoded through the codec, as the Temporal UI shows them, plus
 *   every other field), this process's recent log lines (telemetry/recentLogs.ts; the embedded
 *   stack runs API and worker in one process) and the files of WARDEN_LEAK_SCAN_LOG_FILES, and
 *   /metrics of this process and of WARDEN_CHECKLIST_METRICS_URLS.
 * - what: the secret itself, the exact string, not inside a longer run of its own alphabet
 *   (digits for a code, base64url for a token), in a string value, an object key, a log line or
 *   a metric's name and labels. Numbers, values that are a timestamp as a whole and metric sample
 *   values are not looked into: Warden carries codes and tokens as strings (a code keeps its
 *   leading zeros), and those are where unrelated digits live (event times, ids, counters), so
 *   a 6-digit code cannot match a slice of a timestamp.
 * - found: each place is named (source, row or event, field path), never the value.
 */
import { open, stat } from 'node:fs/promises';
import type { Payload } from '@temporalio/common';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Runtime } from '../runtime';
import { recentLogs } from '../telemetry/recentLogs';
import { EncryptionCodec, isPayload, loadPayloadKeyring } from '../temporal/codec';

const MAX_PLACES = 20;
const FILE_TAIL_BYTES = 16 * 1024 * 1024;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;

/** The secret as a whole token: not preceded or followed by a character of its own alphabet. */
export function exactPattern(secret: string): RegExp {
  const alphabet = /^[0-9]+$/.test(secret) ? '0-9' : 'A-Za-z0-9_-';
  const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![${alphabet}])${escaped}(?![${alphabet}])`);
}

/** A protobuf int64 (an event id, a time's seconds): a number, never a code. */
function isLong(value: object): boolean {
  const v = value as { low?: unknown; high?: unknown; unsigned?: unknown };
  return typeof v.low === 'number' && typeof v.high === 'number' && typeof v.unsigned === 'boolean';
}

/** The places a set of secrets was found, by name; the secrets are held by the instance only. */
export class PlaintextScan {
  private readonly patterns: RegExp[];
  private readonly places: string[] = [];
  private more = 0;

  constructor(secrets: readonly string[]) {
    this.patterns = [...new Set(secrets.filter((s) => s.length >= 6))].map(exactPattern);
  }

  /** Where a secret was found: at most 20 places named, then a count. */
  get found(): string[] {
    return this.more ? [...this.places, `and ${this.more} more place(s)`] : [...this.places];
  }

  private holds(text: string): boolean {
    return !ISO_TIME.test(text) && this.patterns.some((p) => p.test(text));
  }

  private hit(where: string): void {
    if (this.places.includes(where)) return;
    if (this.places.length < MAX_PLACES) this.places.push(where);
    else this.more++;
  }

  /** Free text: a line that is not JSON, a payload's bytes as stored. */
  text(where: string, text: string): void {
    if (this.holds(text)) this.hit(where);
  }

  /**
   * A structured value: each string and each key on its own, the place named `where` and the
   * field's path. Payloads go to `onPayload` (to be decoded) when given, else their bytes are
   * read as text.
   */
  value(where: string, value: unknown, onPayload?: (where: string, payload: Payload) => void): void {
    const walk = (path: string, v: unknown, depth: number): void => {
      const place = path ? `${where} ${path}` : where;
      if (typeof v === 'string') return this.text(place, v);
      if (typeof v !== 'object' || v === null || depth > 64) return;
      if (onPayload && isPayload(v)) return onPayload(place, v);
      if (v instanceof Uint8Array) return this.text(place, Buffer.from(v).toString('utf8'));
      if (isLong(v)) return;
      if (Array.isArray(v)) {
        v.forEach((child, i) => walk(`${path}[${i}]`, child, depth + 1));
        return;
      }
      for (const [key, child] of Object.entries(v)) {
        // a key that holds a secret is named by its place, never by itself
        const secretKey = this.holds(key);
        if (secretKey) this.hit(`${place}: a key`);
        const name = secretKey ? '<a key>' : key;
        walk(path ? `${path}.${name}` : name, child, depth + 1);
      }
    };
    walk('', value, 0);
  }

  /** A JSON document (a log line, a decoded payload), else free text. */
  json(where: string, text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.text(where, text);
    }
    this.value(where, parsed);
  }

  /** A Prometheus text page: comments, metric names and labels; never the sample values. */
  metrics(where: string, page: string): void {
    page.split('\n').forEach((line, i) => {
      const sample = /^([^#\s].*?)\s+(\S+)(\s+\d+)?$/.exec(line);
      const text = sample ? sample[1]! : line;
      if (!this.holds(text)) return;
      const metric = sample ? /^[a-zA-Z_:][\w:]*/.exec(text)?.[0] : /^#\s*\w+\s+([a-zA-Z_:][\w:]*)/.exec(text)?.[1];
      this.hit(`${where} line ${i + 1}${metric ? ` (${metric})` : ''}`);
    });
  }
}

export interface PlaintextScanInput {
  /** the codes and link tokens to look for, held by the caller */
  secrets: string[];
  /** their challenges: rows (without hash) and audit rows */
  challengeIds: string[];
  /** workflow histories to read, every payload decoded */
  workflowIds: string[];
  /** audit rows written since then are read too */
  since: string;
  /** canary runs of these workflows are read too */
  canaryWorkflowIds?: string[];
  /** wait (up to 10 s) for the challenges to be verified and their sealed copies wiped: default true */
  awaitVerified?: boolean;
}

export interface PlaintextScanResult {
  /** places a secret was found, by name */
  found: string[];
  /** what was read, counted */
  scanned: string[];
  /** sources that could not be read: the scan is incomplete */
  problems: string[];
}

/** The last bytes of a log file, as lines (the first may be cut). */
async function tailLines(file: string): Promise<string[]> {
  const size = (await stat(file)).size;
  const start = Math.max(0, size - FILE_TAIL_BYTES);
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return buffer.toString('utf8').split('\n');
  } finally {
    await handle.close();
  }
}

/** Looks for the secrets everywhere listed above; only place names and counts come out. */
export async function scanForPlaintext(
  { db, temporal, registry, config }: Pick<Runtime, 'db' | 'temporal' | 'registry' | 'config'>,
  input: PlaintextScanInput,
): Promise<PlaintextScanResult> {
  const scan = new PlaintextScan(input.secrets);
  const scanned: string[] = [];
  const problems: string[] = [];

  // the challenges end (their rows written, their sealed copies wiped) just after the verify answer
  for (let i = 0; i < 40 && input.challengeIds.length && input.awaitVerified !== false; i++) {
    const { rows } = await db.writer.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM auth_challenges WHERE id = ANY($1::uuid[]) AND status = 'verified' AND sealed_secret IS NULL",
      [input.challengeIds],
    );
    if (rows[0]?.n === input.challengeIds.length) break;
    await new Promise((r) => setTimeout(r, 250));
  }

  const audit = await db.writer.query<{ id: string; line: Record<string, unknown> }>(
    'SELECT a.id::text AS id, row_to_json(a) AS line FROM audit_events a WHERE a.occurred_at >= $1 OR a.challenge_id = ANY($2::uuid[])',
    [input.since, input.challengeIds],
  );
  for (const r of audit.rows) scan.value(`audit_events ${r.id}`, r.line);
  scanned.push(`${audit.rows.length} audit rows`);

  const challenges = await db.writer.query<{ id: string; line: Record<string, unknown>; sealed: boolean }>(
    `SELECT c.id, (row_to_json(c)::jsonb - 'secret_hash' - 'sealed_secret') AS line,
            c.sealed_secret IS NOT NULL AND c.status <> 'open' AS sealed
       FROM auth_challenges c WHERE c.id = ANY($1::uuid[])`,
    [input.challengeIds],
  );
  for (const r of challenges.rows) {
    scan.value(`auth_challenges ${r.id}`, r.line);
    if (r.sealed) problems.push(`auth_challenges ${r.id}: its sealed copy was not wiped after use`);
  }
  scanned.push(`${challenges.rows.length} challenge rows`);

  if (input.canaryWorkflowIds?.length) {
    const runs = await db.writer.query<{ id: string; line: Record<string, unknown> }>(
      'SELECT r.id, row_to_json(r) AS line FROM canary_runs r WHERE r.workflow_id = ANY($1::text[])',
      [input.canaryWorkflowIds],
    );
    for (const r of runs.rows) scan.value(`canary_runs ${r.id}`, r.line);
    scanned.push(`${runs.rows.length} canary runs`);
  }

  const codec = new EncryptionCodec(loadPayloadKeyring(config.keys));
  let payloads = 0;
  let histories = 0;
  for (const workflowId of input.workflowIds) {
    let history: Awaited<ReturnType<ReturnType<typeof temporal.client.workflow.getHandle>['fetchHistory']>>;
    try {
      history = await temporal.client.workflow.getHandle(workflowId).fetchHistory();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      problems.push(`no history of ${workflowId}`);
      continue;
    }
    histories++;
    const found: Array<{ where: string; payload: Payload }> = [];
    scan.value(`Temporal history ${workflowId}`, history, (where, payload) => found.push({ where, payload }));
    payloads += found.length;
    const decoded = await codec.decode(found.map((f) => f.payload));
    found.forEach(({ where, payload }, i) => {
      for (const [key, value] of Object.entries(payload.metadata ?? {}))
        scan.text(`${where}.metadata.${key}`, Buffer.from(value ?? new Uint8Array()).toString('utf8'));
      scan.text(`${where}.data`, Buffer.from(payload.data ?? new Uint8Array()).toString('utf8'));
      scan.json(`${where}.data decoded:`, Buffer.from(decoded[i]?.data ?? new Uint8Array()).toString('utf8'));
    });
  }
  scanned.push(`${histories} workflow histories (${payloads} payloads, decoded)`);

  const own = recentLogs.snapshot();
  own.forEach((line, i) => scan.json(`log line ${i + 1} of this process`, line));
  scanned.push(`${own.length} log lines of this process`);
  for (const file of config.runbooks.leakScanLogFiles) {
    try {
      const lines = await tailLines(file);
      lines.forEach((line, i) => scan.json(`${file} (its last ${lines.length} lines) line ${i + 1}`, line));
      scanned.push(`${lines.length} lines of ${file}`);
    } catch (err) {
      problems.push(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }

  scan.metrics('metrics of this process', await registry.metrics());
  let pages = 1;
  for (const url of config.incidents.checklistMetricsUrls) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(config.providers.timeoutMs) });
      if (!response.ok) throw new Error(`answered ${response.status}`);
      scan.metrics(`metrics at ${url}`, await response.text());
      pages++;
    } catch (err) {
      problems.push(`GET ${url}: ${(err as Error).message}`);
    }
  }
  scanned.push(`${pages} metrics page(s)`);

  return { found: scan.found, scanned, problems };
}
