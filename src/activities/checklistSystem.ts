/**
 * Checklist items judged from the database, the pool and the alerting configuration.
 * Read-only queries: they work while the database is in read-only degradation.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { CheckOutcome } from '../shared/checklist';
import { checkRulesDocument, checkRulesApi } from '../incidents/alertRules';
import type { Runtime } from '../runtime';
import type { CheckInput } from './checklistTypes';

const AUDIT_TYPES = [
  'identity.auth.token_generated',
  'identity.auth.validation_attempt',
  'identity.auth.token_invalidated',
];
const BCRYPT = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;
const MIN_BCRYPT_COST = 10;
const EXPORT_PAGE = 5000;

type Item = CheckOutcome['items'][number];
const item = (id: string, ok: boolean, detail: string): Item => ({ id, status: ok ? 'passed' : 'failed', detail });

export function createSystemChecklistActivities({ db, config, registry }: Pick<Runtime, 'db' | 'config' | 'registry'>) {
  return {
    /** All three audit event types recorded since the run started (its synthetic flows cause each). */
    async checkAuditEvents(input: CheckInput): Promise<CheckOutcome> {
      const { rows } = await db.query<{ event_type: string; n: number }>(
        'SELECT event_type, count(*)::int AS n FROM audit_events WHERE occurred_at >= $1 AND event_type = ANY($2) GROUP BY event_type',
        [input.baseline.takenAt, AUDIT_TYPES],
      );
      const seen = new Map(rows.map((r) => [r.event_type, r.n]));
      const missing = AUDIT_TYPES.filter((t) => !seen.has(t));
      const detail = AUDIT_TYPES.map((t) => `${t}: ${seen.get(t) ?? 0}`).join(', ');
      return {
        items: [
          item(
            'audit_logging',
            missing.length === 0,
            missing.length ? `missing since the run started: ${missing.join(', ')} (${detail})` : detail,
          ),
        ],
      };
    },

    /** Stored secrets of the run's challenges are bcrypt hashes of at least the configured cost. */
    async checkHashFormat(input: CheckInput): Promise<CheckOutcome> {
      const { rows } = await db.query<{ secret_hash: string | null }>(
        'SELECT secret_hash FROM auth_challenges WHERE created_at >= $1 AND secret_hash IS NOT NULL ORDER BY created_at DESC LIMIT 200',
        [input.baseline.takenAt],
      );
      if (!rows.length)
        return { items: [item('bcrypt_hashing', false, 'no challenge issued during the run to inspect')] };
      const bad = rows.filter((r) => {
        const m = BCRYPT.exec(r.secret_hash ?? '');
        return !m || Number(m[1]) < MIN_BCRYPT_COST;
      });
      const costs = [...new Set(rows.map((r) => BCRYPT.exec(r.secret_hash ?? '')?.[1]).filter(Boolean))].join(', ');
      return {
        items: [
          item(
            'bcrypt_hashing',
            bad.length === 0,
            bad.length
              ? `${bad.length} of ${rows.length} hashes are not bcrypt with cost >= ${MIN_BCRYPT_COST}`
              : `${rows.length} hashes in bcrypt format, cost ${costs}`,
          ),
        ],
      };
    },

    /**
     * One active key, used by the run's challenges (the new key is loaded); every rotation since
     * detection left its old key retired or revoked. A compromised-token incident needs a rotation.
     */
    async checkKeyRotation(input: CheckInput): Promise<CheckOutcome> {
      const active = await db.query<{ id: string }>("SELECT id FROM signing_keys WHERE status = 'active'");
      if (active.rows.length !== 1)
        return { items: [item('key_rotation', false, `${active.rows.length} active keys (expected exactly one)`)] };
      const activeId = active.rows[0]!.id;
      const rotations = await db.query<{ from_key_id: string | null; to_key_id: string; from_status: string | null }>(
        `SELECT r.from_key_id, r.to_key_id, k.status AS from_status FROM key_rotations r
           LEFT JOIN signing_keys k ON k.id = r.from_key_id WHERE r.rotated_at >= $1 ORDER BY r.rotated_at`,
        [input.detectedAt],
      );
      const stale = rotations.rows.filter((r) => r.from_key_id && r.from_status === 'active');
      const used = await db.query<{ key_id: string }>(
        'SELECT DISTINCT key_id FROM auth_challenges WHERE created_at >= $1 AND key_id IS NOT NULL',
        [input.baseline.takenAt],
      );
      const wrongKey = used.rows.filter((r) => r.key_id !== activeId);
      const problems = [
        ...(stale.length ? [`old key still active after rotation: ${stale.map((r) => r.from_key_id).join(', ')}`] : []),
        ...(wrongKey.length
          ? [
              `challenges of this run used keys ${wrongKey.map((r) => r.key_id).join(', ')} instead of the active ${activeId}`,
            ]
          : []),
        ...(input.type === 'compromised_token' && rotations.rows.length === 0
          ? ['compromised token incident: no key rotation since detection']
          : []),
      ];
      const detail = problems.length
        ? problems.join('; ')
        : `active key ${activeId}${used.rows.length ? ' used by this run' : ''}; ${rotations.rows.length} rotation(s) since detection, old keys archived`;
      return { items: [item('key_rotation', problems.length === 0, detail)] };
    },

    /** Every IP recorded on the incident is covered by an active blocklist entry. */
    async checkIpBlocklist(input: CheckInput): Promise<CheckOutcome> {
      const ips = input.affected.ips;
      if (!ips.length)
        return {
          items: [{ id: 'ip_blocklists', status: 'not_applicable', detail: 'no abusive IPs recorded on the incident' }],
        };
      const unblocked: string[] = [];
      for (const ip of ips) {
        const { rows } = await db.query(
          `SELECT 1 FROM ip_blocklist WHERE cidr >>= $1::inet AND removed_at IS NULL AND (expires_at IS NULL OR expires_at > now()) LIMIT 1`,
          [ip],
        );
        if (!rows.length) unblocked.push(ip);
      }
      return {
        items: [
          item(
            'ip_blocklists',
            unblocked.length === 0,
            unblocked.length ? `not blocked: ${unblocked.join(', ')}` : `all ${ips.length} recorded IP(s) blocked`,
          ),
        ],
      };
    },

    /** The pool check: nobody waits for a connection, usage below 90% here and on the server. */
    async checkDatabasePool(): Promise<CheckOutcome> {
      const pool = db.stats();
      const server = await db.query<{ used: number; max: number }>(
        "SELECT (SELECT count(*)::int FROM pg_stat_activity) AS used, current_setting('max_connections')::int AS max",
      );
      const { used, max } = server.rows[0]!;
      const problems = [
        ...(pool.waiting > 0 ? [`${pool.waiting} queries waiting for a pool connection`] : []),
        ...((pool.total - pool.idle) / pool.max >= 0.9 ? [`pool ${pool.total - pool.idle}/${pool.max} in use`] : []),
        ...(used / max >= 0.9 ? [`server connections ${used}/${max}`] : []),
      ];
      const detail = `pool ${pool.total - pool.idle} in use, ${pool.idle} idle, ${pool.waiting} waiting, max ${pool.max}; server ${used}/${max} connections`;
      return {
        items: [
          item(
            'db_pool_healthy',
            problems.length === 0,
            problems.length ? `${problems.join('; ')} (${detail})` : detail,
          ),
        ],
      };
    },

    /** Prometheus' loaded rules when WARDEN_PROMETHEUS_URL is set, else the rules file. */
    async checkAlertRules(): Promise<CheckOutcome> {
      const catalog = new Set([...(await registry.metrics()).matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
      if (config.incidents.prometheusUrl) {
        const response = await fetch(`${config.incidents.prometheusUrl}/api/v1/rules?type=alert`, {
          signal: AbortSignal.timeout(config.providers.timeoutMs),
        });
        if (!response.ok)
          return { items: [item('prometheus_alerts', false, `Prometheus rules API answered ${response.status}`)] };
        const verdict = checkRulesApi(await response.json());
        return { items: [item('prometheus_alerts', verdict.ok, verdict.detail)] };
      }
      const file = config.incidents.alertRulesFile;
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        return {
          items: [
            item(
              'prometheus_alerts',
              false,
              `no alert rules: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
            ),
          ],
        };
      }
      const verdict = checkRulesDocument(text, catalog);
      return {
        items: [
          item(
            'prometheus_alerts',
            verdict.ok,
            `${verdict.detail} (${file}; firing is observable only with WARDEN_PROMETHEUS_URL)`,
          ),
        ],
      };
    },

    /**
     * Exports the audit events since detection page by page and checks the export is whole:
     * as many rows as the table counts, a digest over them, and the append-only trigger on.
     */
    async checkAuditExport(input: CheckInput): Promise<CheckOutcome> {
      const trigger = await db.query<{ tgenabled: string }>(
        "SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_events_no_update'",
      );
      const triggerOn = trigger.rows[0] !== undefined && trigger.rows[0].tgenabled !== 'D';
      const snapshot = await db.query<{ last: string | null; n: number }>(
        'SELECT max(id)::text AS last, count(*)::int AS n FROM audit_events WHERE occurred_at >= $1',
        [input.detectedAt],
      );
      const { last, n } = snapshot.rows[0]!;
      const digest = createHash('sha256');
      let exported = 0;
      let after = '0';
      while (last !== null) {
        const { rows } = await db.query<{ id: string; line: string }>(
          `SELECT id::text, row_to_json(a)::text AS line FROM audit_events a
            WHERE occurred_at >= $1 AND id > $2 AND id <= $3 ORDER BY id LIMIT ${EXPORT_PAGE}`,
          [input.detectedAt, after, last],
        );
        for (const row of rows) digest.update(`${row.line}\n`);
        exported += rows.length;
        if (rows.length < EXPORT_PAGE) break;
        after = rows[rows.length - 1]!.id;
      }
      // rows committed after the snapshot may add to the export; fewer rows than counted is a loss
      const problems = [
        ...(exported < n ? [`exported ${exported} of ${n} rows`] : []),
        ...(triggerOn ? [] : ['append-only trigger missing or disabled']),
      ];
      const detail = `${exported} events since detection, sha256 ${digest.digest('hex').slice(0, 16)}…, append-only trigger ${triggerOn ? 'on' : 'OFF'}`;
      return {
        items: [
          item(
            'audit_log_exports',
            problems.length === 0,
            problems.length ? `${problems.join('; ')} (${detail})` : detail,
          ),
        ],
      };
    },
  };
}
