import { AuditEventType, recordAudit } from '../auth/audit';
import { DEFAULT_RATE_LIMITS, RATE_LIMITING_KEY, type RateLimitSettings } from '../auth/settings';
import { tightenLimits, type AbuseParams } from '../shared/runbookAbuse';
import { relievedLimits } from '../shared/runbookOutage';
import { CAPTCHA_SETTINGS_KEY, DEFAULT_CAPTCHA_SETTINGS, type CaptchaSettings } from '../runbooks/captcha';
import type { Runtime } from '../runtime';

/**
 * The abuse runbook's side effects. Settings it changes are saved first (runbook_saved_settings,
 * keyed by the run) so the restore puts back what was there before, and only if nobody changed
 * the setting in the meantime. Every call is idempotent for the same run and step key.
 */
export function createRunbookAbuseActivities(runtime: Pick<Runtime, 'db' | 'config' | 'logger' | 'settings'>) {
  const { db, config, settings } = runtime;
  const audit = runtime.logger.child({ component: 'audit' });

  /** Saves the current value (first call wins), then writes `next(current)`. */
  async function applySetting<T>(
    workflowId: string,
    key: string,
    fallback: T,
    next: (current: T) => T,
  ): Promise<{ previous: T; applied: T }> {
    const saved = await db.query<{ previous: T | null; applied: T }>(
      'SELECT previous, applied FROM runbook_saved_settings WHERE workflow_id = $1 AND key = $2',
      [workflowId, key],
    );
    let previous: T;
    let applied: T;
    if (saved.rows[0]) {
      previous = saved.rows[0].previous ?? fallback;
      applied = saved.rows[0].applied;
    } else {
      const { rows } = await db.query<{ value: T }>('SELECT value FROM runtime_settings WHERE key = $1', [key]);
      previous = rows[0]?.value ?? fallback;
      applied = next(previous);
      await db.write(
        `INSERT INTO runbook_saved_settings (workflow_id, key, previous, applied) VALUES ($1, $2, $3::jsonb, $4::jsonb) ON CONFLICT DO NOTHING`,
        [workflowId, key, rows[0] ? JSON.stringify(rows[0].value) : null, JSON.stringify(applied)],
      );
    }
    await settings.put(key, applied, `runbook:${workflowId}`);
    await recordAudit(db, audit, {
      type: AuditEventType.settingsChanged,
      outcome: 'updated',
      dedupeKey: `${workflowId}/apply/${key}`,
      details: { key, value: applied, actor: workflowId },
    });
    return { previous, applied };
  }

  return {
    /**
     * The top IPs and users by rate-limit violations in the last hour. Violations are recorded
     * per bucket (src/auth/ipBucket.ts): an IPv4 address, or an IPv6 /64 written with its prefix.
     */
    async topViolators(input: { top: number; hours: number }) {
      const ips = await db.query<{ ip: string; violations: number }>(
        `SELECT abbrev(ip) AS ip, count(*)::int AS violations FROM rate_limit_attempts
          WHERE exceeded AND ip IS NOT NULL AND attempted_at > now() - make_interval(hours => $1)
          GROUP BY ip ORDER BY violations DESC, ip LIMIT $2`,
        [input.hours, input.top],
      );
      const users = await db.query<{ user_id: string; violations: number }>(
        `SELECT user_id, count(*)::int AS violations FROM rate_limit_attempts
          WHERE exceeded AND user_id IS NOT NULL AND attempted_at > now() - make_interval(hours => $1)
          GROUP BY user_id ORDER BY violations DESC, user_id LIMIT $2`,
        [input.hours, input.top],
      );
      const total = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM rate_limit_attempts WHERE exceeded AND attempted_at > now() - make_interval(hours => $1)`,
        [input.hours],
      );
      return { ips: ips.rows, users: users.rows, violations: total.rows[0]?.n ?? 0 };
    },

    /**
     * IPs with at least `threshold` violations in the last hour, minus the trusted proxies and
     * the never-block list (a block of the proxy would lock everyone out). Each is a bucket, so
     * an IPv6 client is blocked as its whole /64 (`2001:db8:1:2::/64`), and a /64 holding a
     * spared address is spared with it.
     */
    async abusiveIps(input: { threshold: number; neverBlock: string[] }): Promise<{ ips: string[]; spared: string[] }> {
      const spare = [...config.trustedProxies, ...input.neverBlock].filter((s) =>
        /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(s),
      );
      const { rows } = await db.query<{ ip: string; spared: boolean }>(
        `SELECT abbrev(ip) AS ip, EXISTS (SELECT 1 FROM unnest($2::text[]) s WHERE ip && s::cidr) AS spared
           FROM rate_limit_attempts
          WHERE exceeded AND ip IS NOT NULL AND attempted_at > now() - interval '1 hour'
          GROUP BY ip HAVING count(*) >= $1 ORDER BY count(*) DESC, ip LIMIT 10000`,
        [input.threshold, spare],
      );
      return {
        ips: rows.filter((r) => !r.spared).map((r) => r.ip),
        spared: rows.filter((r) => r.spared).map((r) => r.ip),
      };
    },

    /** The tightened limits (never looser than what is in force). */
    async tightenRateLimits(input: { workflowId: string; tightened: AbuseParams['tightened'] }) {
      return applySetting<RateLimitSettings>(input.workflowId, RATE_LIMITING_KEY, DEFAULT_RATE_LIMITS, (current) =>
        tightenLimits(current, input.tightened),
      );
    },

    /**
     * The provider-outage runbook's retry relief (src/shared/runbookOutage.ts relievedLimits): the
     * per-user maximum raised for the run, saved and restored like the tightening above.
     */
    async relieveRateLimits(input: { workflowId: string; factor: number }) {
      return applySetting<RateLimitSettings>(input.workflowId, RATE_LIMITING_KEY, DEFAULT_RATE_LIMITS, (current) =>
        relievedLimits(current, input.factor),
      );
    },

    async enableCaptcha(input: { workflowId: string; threshold: number; windowSeconds: number }) {
      return applySetting<CaptchaSettings>(input.workflowId, CAPTCHA_SETTINGS_KEY, DEFAULT_CAPTCHA_SETTINGS, () => ({
        enabled: true,
        threshold: input.threshold,
        window_seconds: input.windowSeconds,
      }));
    },

    /**
     * Puts back the value saved before the run changed `key`, unless someone changed it since
     * (then their value stays, and the answer says so).
     */
    async restoreSetting(input: {
      workflowId: string;
      key: string;
    }): Promise<{ restored: boolean; value: unknown; reason?: string }> {
      const { rows } = await db.query<{
        previous: unknown;
        applied: unknown;
        restored_at: Date | null;
        current: unknown;
        same: boolean | null;
      }>(
        `SELECT s.previous, s.applied, s.restored_at, r.value AS current, (r.value = s.applied) AS same
           FROM runbook_saved_settings s LEFT JOIN runtime_settings r ON r.key = s.key
          WHERE s.workflow_id = $1 AND s.key = $2`,
        [input.workflowId, input.key],
      );
      const row = rows[0];
      if (!row) return { restored: false, value: null, reason: 'this run never changed it' };
      if (row.restored_at) return { restored: true, value: row.previous };
      if (!row.same) {
        return {
          restored: false,
          value: row.current,
          reason: 'changed by someone else during the run; their value stays',
        };
      }
      if (row.previous === null) await db.write('DELETE FROM runtime_settings WHERE key = $1', [input.key]);
      else await settings.put(input.key, row.previous, `runbook:${input.workflowId}`);
      settings.invalidate();
      await db.write('UPDATE runbook_saved_settings SET restored_at = now() WHERE workflow_id = $1 AND key = $2', [
        input.workflowId,
        input.key,
      ]);
      await recordAudit(db, audit, {
        type: AuditEventType.settingsChanged,
        outcome: 'restored',
        dedupeKey: `${input.workflowId}/restore/${input.key}`,
        details: { key: input.key, value: row.previous, actor: input.workflowId },
      });
      return { restored: true, value: row.previous };
    },

    /**
     * Violations recorded after `cursor` (a rate_limit_attempts id) and the new cursor: the
     * watch counts by row, not by clock, so it agrees with the workflow's durable timers
     * whatever the database's clock says.
     */
    async violationsSince(input: { cursor: string | null }): Promise<{ violations: number; cursor: string }> {
      if (input.cursor === null) {
        const { rows: top } = await db.query<{ last: string | null }>(
          'SELECT max(id)::text AS last FROM rate_limit_attempts',
        );
        return { violations: 0, cursor: top[0]?.last ?? '0' };
      }
      const { rows } = await db.query<{ n: number; last: string | null }>(
        'SELECT count(*) FILTER (WHERE exceeded)::int AS n, max(id)::text AS last FROM rate_limit_attempts WHERE id > $1',
        [input.cursor],
      );
      const row = rows[0]!;
      return { violations: row.n, cursor: row.last ?? input.cursor };
    },

    /**
     * `DELETE FROM rate_limit_attempts WHERE user_id IN (...)` for false positives
     * (and for the provider-outage run's users refused while retrying failed deliveries: `reason`).
     */
    async clearFalsePositives(input: {
      key: string;
      userIds: string[];
      incidentId?: string;
      reason?: string;
    }): Promise<{ cleared: number; users: number }> {
      const result = await db.write('DELETE FROM rate_limit_attempts WHERE user_id = ANY($1::text[])', [input.userIds]);
      for (const userId of new Set(input.userIds)) {
        await recordAudit(db, audit, {
          type: AuditEventType.userAction,
          outcome: 'clear_rate_limits',
          userId,
          incidentId: input.incidentId,
          dedupeKey: `${input.key}/clear/${userId}`,
          details: { actor: input.key, reason: input.reason ?? 'false positive' },
        });
      }
      return { cleared: result.rowCount ?? 0, users: new Set(input.userIds).size };
    },
  };
}
