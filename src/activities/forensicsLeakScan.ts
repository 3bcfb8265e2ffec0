/**
 * The recovery check that no token leaked, run by a live service:
 *
 * - where: this process's recent log lines (telemetry/recentLogs.ts; the embedded stack runs
 *   API and worker in one process, so both are there) and the files of
 *   WARDEN_LEAK_SCAN_LOG_FILES (their last 64 MiB); every workflow history on the task queue
 *   started in the window or still running, its payloads decoded with the codec, plus failure
 *   messages; /metrics of this process and of WARDEN_CHECKLIST_METRICS_URLS.
 * - what: the leak patterns plus the magic-link token format (leakPatterns.ts). A match in a
 *   string is a candidate (one inside a number, e.g. a metric value, is counted, not checked); it is a confirmed leak only if it equals a secret issued in the window, which is
 *   checked the way verify checks a guess: bcrypt(HMAC(pepper of the challenge's key, value))
 *   against the stored hash. Nothing is ever compared in plaintext or stored: the report holds
 *   counts and challenge ids, never a matched value.
 * - cost: bcrypt is slow on purpose, so comparisons have a budget; candidates seen in a
 *   challenge's own history are checked against that challenge first. Candidates left
 *   unchecked when the budget runs out are reported as unverified, and the scan is then not
 *   clean.
 */
import { readFile, stat } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import type { Payload } from '@temporalio/common';
import { compareSecret } from '../auth/crypto';
import { CandidateSet, classifyCandidate } from '../runbooks/leakPatterns';
import type { Runtime } from '../runtime';
import { CHALLENGE_WORKFLOW_PREFIX } from '../shared/auth';
import { recentLogs } from '../telemetry/recentLogs';
import { EncryptionCodec, isPayload, loadPayloadKeyring } from '../temporal/codec';
import { storeArtifact } from './forensics';

const FILE_TAIL_BYTES = 64 * 1024 * 1024;
const HISTORY_CONCURRENCY = 6;
const MAX_HISTORIES = 20_000;
const COMPARE_CONCURRENCY = 4;

export interface LeakScanInput {
  workflowId: string;
  incidentId?: string;
  since: string;
  until: string;
  maxComparisons: number;
}

/** Payloads and failure texts of a history; event times, ids and worker identities are the server's, not ours. */
function collect(value: unknown, payloads: Payload[], texts: string[], depth = 0): void {
  if (depth > 60 || typeof value !== 'object' || value === null) return;
  if (isPayload(value)) {
    payloads.push(value);
    return;
  }
  const record = value as Record<string, unknown>;
  for (const key of ['message', 'stackTrace', 'details']) if (typeof record[key] === 'string') texts.push(record[key]);
  for (const child of Array.isArray(value) ? value : Object.values(record)) collect(child, payloads, texts, depth + 1);
}

export function createLeakScanActivities(runtime: Pick<Runtime, 'db' | 'temporal' | 'registry' | 'config' | 'keys'>) {
  const { db, temporal, registry, config } = runtime;

  async function scanHistories(candidates: CandidateSet, input: LeakScanInput) {
    const codec = new EncryptionCodec(loadPayloadKeyring(config.keys));
    const taskQueue = config.temporal.taskQueue.replace(/'/g, '');
    const since = new Date(input.since).toISOString();
    const query = `TaskQueue = '${taskQueue}' AND (StartTime >= '${since}' OR ExecutionStatus = 'Running')`;
    const ids: Array<{ workflowId: string; runId: string }> = [];
    for await (const wf of temporal.client.workflow.list({ query })) {
      ids.push({ workflowId: wf.workflowId, runId: wf.runId });
      if (ids.length >= MAX_HISTORIES) break;
    }
    let payloadCount = 0;
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < ids.length; i = next++) {
        const { workflowId, runId } = ids[i]!;
        const history = await temporal.client.workflow.getHandle(workflowId, runId).fetchHistory();
        const payloads: Payload[] = [];
        const texts: string[] = [];
        collect(history, payloads, texts);
        payloadCount += payloads.length;
        const decoded = await codec.decode(payloads);
        const near = workflowId.startsWith(CHALLENGE_WORKFLOW_PREFIX)
          ? workflowId.slice(CHALLENGE_WORKFLOW_PREFIX.length)
          : undefined;
        for (const p of decoded)
          candidates.addJson(Buffer.from(p.data ?? new Uint8Array()).toString('utf8'), 'workflow_history', near);
        for (const t of texts) candidates.add(t, 'workflow_history', near);
        if (i % 200 === 0) Context.current().heartbeat({ phase: 'histories', done: i });
      }
    };
    await Promise.all(Array.from({ length: HISTORY_CONCURRENCY }, worker));
    return { workflows: ids.length, payloads: payloadCount, capped: ids.length >= MAX_HISTORIES };
  }

  async function scanLogs(candidates: CandidateSet) {
    const own = recentLogs.snapshot();
    for (const line of own) candidates.addJson(line, 'logs');
    const files: string[] = [];
    for (const file of config.runbooks.leakScanLogFiles) {
      const size = (await stat(file)).size;
      const text = (await readFile(file)).subarray(Math.max(0, size - FILE_TAIL_BYTES)).toString('utf8');
      for (const line of text.split('\n')) candidates.addJson(line, 'logs');
      files.push(file);
    }
    return { processLines: own.length, files };
  }

  async function scanMetrics(candidates: CandidateSet) {
    candidates.addMetrics(await registry.metrics(), 'metrics');
    for (const url of config.incidents.checklistMetricsUrls) {
      const response = await fetch(url, { signal: AbortSignal.timeout(config.providers.timeoutMs) });
      if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
      candidates.addMetrics(await response.text(), 'metrics');
    }
    return { pages: 1 + config.incidents.checklistMetricsUrls.length };
  }

  /** Compares each OTP- or token-shaped candidate with the hashes of the window's secrets, within the budget. */
  async function confirm(candidates: CandidateSet, input: LeakScanInput) {
    const { rows } = await db.query<{
      id: string;
      method: 'sms_otp' | 'magic_link';
      key_id: string;
      secret_hash: string;
    }>(
      `SELECT id, method, key_id, secret_hash FROM auth_challenges
        WHERE created_at >= $1 AND created_at <= $2 AND secret_hash IS NOT NULL AND key_id IS NOT NULL`,
      [input.since, input.until],
    );
    const keys = runtime.keys;
    const byId = new Map(rows.map((r) => [r.id, r]));
    let comparisons = 0;
    let benignFormat = 0;
    let unverified = 0;
    const leaks: Array<{ challengeId: string; method: string; sources: string[] }> = [];
    for (const [value, seen] of candidates.byValue) {
      const kind = classifyCandidate(value);
      if (kind === 'other') {
        benignFormat++;
        continue;
      }
      const near = [...seen.near]
        .map((id) => byId.get(id))
        .filter((r): r is NonNullable<typeof r> => r?.method === kind);
      const rest = rows.filter((r) => r.method === kind && !seen.near.has(r.id));
      const order = [...near, ...rest];
      let found: (typeof rows)[number] | undefined;
      let checked = 0;
      while (!found && checked < order.length && comparisons < input.maxComparisons) {
        const batch = order.slice(checked, checked + Math.min(COMPARE_CONCURRENCY, input.maxComparisons - comparisons));
        const results = await Promise.all(
          batch.map(async (row) =>
            (await compareSecret((await keys.get(row.key_id)).pepper, value, row.secret_hash)) ? row : undefined,
          ),
        );
        checked += batch.length;
        comparisons += batch.length;
        found = results.find(Boolean);
        if (comparisons % 100 < batch.length) Context.current().heartbeat({ phase: 'confirm', comparisons });
      }
      if (found) leaks.push({ challengeId: found.id, method: found.method, sources: [...seen.sources] });
      else if (checked < order.length) unverified++;
    }
    return { secretsInWindow: rows.length, comparisons, benignFormat, unverified, leaks };
  }

  return {
    async scanForTokenLeaks(input: LeakScanInput) {
      const candidates = new CandidateSet();
      const logs = await scanLogs(candidates);
      const metrics = await scanMetrics(candidates);
      const histories = await scanHistories(candidates, input);
      const confirmed = await confirm(candidates, input);
      const report = {
        window: { since: input.since, until: input.until },
        scanned: { logs, histories, metrics },
        matches: candidates.matches,
        matchesBySource: candidates.matchesBySource,
        numericMatches: candidates.numericMatches,
        distinctCandidates: candidates.byValue.size,
        benignByFormat: confirmed.benignFormat,
        secretsInWindow: confirmed.secretsInWindow,
        bcryptComparisons: confirmed.comparisons,
        unverifiedCandidates: confirmed.unverified,
        confirmedLeaks: confirmed.leaks,
        clean: confirmed.leaks.length === 0 && confirmed.unverified === 0,
      };
      const artifact = await storeArtifact(
        db,
        {
          workflowId: input.workflowId,
          name: 'leak-scan.json',
          contentType: 'application/json',
          incidentId: input.incidentId,
          windowStart: input.since,
          windowEnd: input.until,
        },
        async function* () {
          yield { body: `${JSON.stringify(report, null, 2)}\n`, rows: 1 };
        },
      );
      return { ...report, confirmedLeaks: report.confirmedLeaks.slice(0, 50), artifact: artifact.name };
    },
  };
}
