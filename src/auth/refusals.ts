/**
 * Refused requests (rate-limited, blocked, shed, CAPTCHA required...) in the audit trail: one
 * row per client, action, reason and window, with a count, instead of one row per request, so a
 * flood cannot grow the append-only trail without bound.
 *
 * A window starts with a key's first refusal and lasts windowSeconds. That first refusal is
 * written at once, as the audit row it always was (an attack's start shows in the trail and the
 * log as it happens), together with its count in `audit_refusal_counts`
 * (migrations/0180_refusal_counts.sql). Later refusals with the same key only add to a counter
 * in memory, added to that row's count every few seconds (`flush`) and on close. The key is the
 * event type, outcome, reason, method, masked client address, the user for refusals of a
 * user's own budget (`perUser`), and the details named in KEY_DETAILS: facts that vary per
 * request (the challenge, remaining attempts) describe the window's first refusal only.
 *
 * Windows are per process: with several API processes, a client refused by each has one row per
 * process and window. Readers count refusals with `sum(count)` over the `audit_trail` view.
 */
import type { Database } from '../db/database';
import type { Logger } from '../telemetry/logger';
import {
  AUDIT_INSERT_COLUMNS,
  AUDIT_RETURNING,
  auditContactSql,
  logAudit,
  type AuditEvent,
  type AuditRow,
} from './audit';

/** Details that tell one client's refusals apart (which limit, which route, which block). */
export const KEY_DETAILS = ['action', 'scope', 'blocklist_id', 'reason'] as const;

/** The event of the audit line a flush logs for each window whose count grew. */
export const REFUSALS_COUNTED_EVENT = 'identity.audit.refusals_counted';

export interface RefusalAuditOptions {
  windowSeconds: number;
  /** windows kept in memory; past it, windows with nothing left to add are forgotten first */
  maxWindows: number;
}

export interface RefusalStats {
  /** a refusal counted (first of its window or not) */
  counted(event: string): void;
  /** the audit row of a window written */
  opened(event: string): void;
}

interface Window {
  key: string;
  startMs: number;
  event: AuditEvent;
  auditId?: string;
  /** the open being written, so that concurrent refusals of a new window do not write twice */
  opening?: Promise<void>;
  /** refusals seen in the window, and how many of them the database has */
  total: number;
  written: number;
}

const OPEN_SQL = `WITH opened AS (
    INSERT INTO audit_events (${AUDIT_INSERT_COLUMNS})
    SELECT $1, $2, $3, $4::uuid, $5::text, $6::text, $7, ${auditContactSql('$6::text')}, $8, $9::jsonb, NULL
      FROM (SELECT 1) AS one LEFT JOIN users u ON u.sub = $5::text
    RETURNING ${AUDIT_RETURNING}
  ), counted AS (
    INSERT INTO audit_refusal_counts (audit_id, window_start, window_seconds, count)
    SELECT id, to_timestamp($10::double precision / 1000), $11, $12 FROM opened
  )
  SELECT * FROM opened`;

const ADD_SQL = `UPDATE audit_refusal_counts c SET count = c.count + u.added, last_at = now()
    FROM unnest($1::bigint[], $2::bigint[]) AS u (audit_id, added)
   WHERE c.audit_id = u.audit_id
  RETURNING c.audit_id::text AS audit_id, c.count::text AS count`;

export class RefusalAudit {
  /** the open window of each key */
  private readonly windows = new Map<string, Window>();
  /** windows that ended with counts the database does not have yet */
  private readonly ended = new Set<Window>();
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: { db: Database; logger: Logger; stats?: RefusalStats },
    private readonly options: RefusalAuditOptions,
  ) {}

  /** refusals counted in memory and not yet in the database */
  get pending(): number {
    let n = 0;
    for (const w of this.all()) n += w.total - w.written;
    return n;
  }

  private all(): Window[] {
    return [...this.ended, ...this.windows.values()];
  }

  /**
   * One refused request. A window starts with a key's first refusal and lasts windowSeconds;
   * that first refusal is written before this resolves (a failure to write it is thrown, as any
   * audit write's), the others only counted.
   */
  async record(event: AuditEvent, options: { perUser?: boolean } = {}): Promise<void> {
    const now = Date.now();
    const key = keyOf(event, options.perUser ?? false);
    let w = this.windows.get(key);
    if (w && now >= w.startMs + this.options.windowSeconds * 1000) {
      this.windows.delete(key);
      if (!settled(w)) this.ended.add(w);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size + this.ended.size >= this.options.maxWindows) this.makeRoom();
      w = { key, startMs: now, event, total: 0, written: 0 };
      this.windows.set(key, w);
    }
    w.total += 1;
    this.deps.stats?.counted(event.type);
    if (w.auditId !== undefined || w.opening) return;
    await this.open(w);
  }

  private open(w: Window): Promise<void> {
    const opening = (async () => {
      const total = w.total;
      const e = w.event;
      const { rows } = await this.deps.db.write<AuditRow>(OPEN_SQL, [
        e.type,
        e.outcome ?? null,
        e.reason ?? null,
        e.challengeId ?? null,
        e.userId ?? null,
        e.method ?? null,
        e.ipMasked ?? null,
        e.incidentId ?? null,
        JSON.stringify(e.details ?? {}),
        w.startMs,
        this.options.windowSeconds,
        total,
      ]);
      w.auditId = rows[0]!.id;
      w.written = total;
      this.deps.stats?.opened(e.type);
      logAudit(this.deps.logger, rows[0]);
    })();
    w.opening = opening;
    return opening.finally(() => {
      w.opening = undefined;
    });
  }

  /**
   * Adds what was counted since the last flush to each window's row (a window whose first write
   * failed is written now), then forgets the windows that are over. Flushes never overlap.
   */
  flush(): Promise<void> {
    const next = this.flushing.then(() => this.flushOnce());
    this.flushing = next.catch(() => {});
    return next;
  }

  private async flushOnce(): Promise<void> {
    const failedOpens: Window[] = [];
    const adds: Array<{ w: Window; added: number }> = [];
    for (const w of this.all()) {
      if (w.opening) await w.opening.catch(() => {});
      if (w.auditId === undefined) failedOpens.push(w);
      else if (w.total > w.written) adds.push({ w, added: w.total - w.written });
    }
    for (const w of failedOpens) {
      if (w.auditId !== undefined || w.opening) continue;
      await this.open(w).catch((err: unknown) =>
        this.deps.logger.warn(
          { component: 'audit', err: (err as Error).message },
          'a refusal window could not be written yet',
        ),
      );
    }
    if (adds.length > 0) {
      const { rows } = await this.deps.db.write<{ audit_id: string; count: string }>(ADD_SQL, [
        adds.map((a) => a.w.auditId),
        adds.map((a) => a.added),
      ]);
      const counts = new Map(rows.map((r) => [r.audit_id, Number(r.count)]));
      for (const { w, added } of adds) {
        w.written += added;
        this.deps.logger.info(
          {
            audit: true,
            event: REFUSALS_COUNTED_EVENT,
            audit_id: Number(w.auditId),
            counted_event: w.event.type,
            ...(w.event.outcome ? { outcome: w.event.outcome } : {}),
            ...(w.event.ipMasked ? { ip_masked: w.event.ipMasked } : {}),
            added,
            count: counts.get(w.auditId!) ?? w.written,
            window_start: new Date(w.startMs).toISOString(),
          },
          REFUSALS_COUNTED_EVENT,
        );
      }
    }
    const now = Date.now();
    for (const w of this.ended) if (settled(w)) this.ended.delete(w);
    for (const [key, w] of this.windows)
      if (settled(w) && w.startMs + this.options.windowSeconds * 1000 <= now) this.windows.delete(key);
  }

  /**
   * Makes room: windows with nothing left to write go first (a later refusal of theirs opens a
   * new row). Only while the database cannot be written for long are counts given up, oldest
   * first, and said so in the log, rather than growing without bound.
   */
  private makeRoom(): void {
    const full = () => this.windows.size + this.ended.size >= this.options.maxWindows;
    for (const [key, w] of this.windows) {
      if (!full()) return;
      if (settled(w)) this.windows.delete(key);
    }
    let lost = 0;
    for (const w of this.all()) {
      if (!full()) break;
      if (w.opening) continue;
      lost += w.total - w.written;
      if (!this.ended.delete(w)) this.windows.delete(w.key);
    }
    if (lost > 0)
      this.deps.logger.error(
        { component: 'audit', lost },
        'refusal counts given up: the audit trail could not be written',
      );
  }
}

/** Everything counted is in the database. */
function settled(w: Window): boolean {
  return w.auditId !== undefined && w.total === w.written && !w.opening;
}

function keyOf(event: AuditEvent, perUser: boolean): string {
  const details = event.details ?? {};
  return JSON.stringify([
    event.type,
    event.outcome ?? null,
    event.reason ?? null,
    event.method ?? null,
    event.ipMasked ?? null,
    perUser ? (event.userId ?? null) : null,
    ...KEY_DETAILS.map((k) => details[k] ?? null),
  ]);
}
