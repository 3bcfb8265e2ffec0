/**
 * The provider-outage runbook's own side effects (the route switch, the channel switch and
 * the resend go through src/delivery like the admin API's). A change this run makes is saved
 * first in runbook_saved_settings (first call wins), so a retried activity still knows what
 * the route was before the run, and the restore puts back only what this run changed, and
 * only while nobody has changed it since.
 */
import { ApplicationFailure } from '@temporalio/common';
import { AuditEventType } from '../auth/audit';
import { routeStatus, setChannelEnabled, switchRoute } from '../delivery/admin';
import { readRoutes } from '../delivery/routes';
import { listDeliveryFailures } from '../delivery/resend';
import type { StatusPageName } from '../providers';
import type { Channel, StatusIndicator } from '../providers/types';
import type { Runtime } from '../runtime';
import { DeliveryErrorType } from '../shared/delivery';

export type OutageChange = 'backup' | 'disable';

interface SavedRow {
  previous: unknown;
  applied: unknown;
  restored_at: Date | null;
}

/** A refusal by the per-user limit of a request that sends a message (initiate or resend): a user retrying. */
const PER_USER_RETRY = `a.outcome = 'user' AND a.details->>'action' = 'initiate'`;

const settingKey = (channel: Channel, change: OutageChange) =>
  change === 'backup' ? `delivery.${channel}.mode` : `delivery.${channel}.enabled`;

export function createRunbookOutageActivities(
  runtime: Pick<Runtime, 'db' | 'logger' | 'metrics' | 'config' | 'providers' | 'settings' | 'routes'>,
) {
  const { db } = runtime;

  async function current(channel: Channel, change: OutageChange): Promise<unknown> {
    const route = (await readRoutes(db))[channel];
    return change === 'backup' ? route.mode : route.enabled;
  }

  return {
    /**
     * The Statuspage indicator (`/api/v2/status.json`, `.status.indicator`) of each provider; a page
     * that cannot be read answers `unknown` (the watch counts it as not healthy) instead of failing.
     */
    async outageStatus(input: { providers: StatusPageName[] }) {
      const out: Array<{ provider: string; indicator: StatusIndicator | 'unknown'; description: string }> = [];
      for (const provider of input.providers) {
        try {
          out.push({ provider, ...(await runtime.providers.statusPage(provider)) });
        } catch (err) {
          out.push({
            provider,
            indicator: 'unknown',
            description: err instanceof Error ? err.message.slice(0, 200) : 'unreadable',
          });
        }
      }
      return out;
    },

    /** The failures to resend for one channel, as ids only: no phone or address enters the run's history. */
    async resendableFailures(input: { since: string; until: string; channel: Channel; limit: number }) {
      const rows = await listDeliveryFailures(db, { ...input, resendableOnly: true });
      return rows.map((f) => ({ id: f.id, challengeId: f.challenge_id, userId: f.user_id, provider: f.provider }));
    },

    /**
     * The outage's scope: failed sends and provider calls per provider from the
     * ledger (delivery_attempts), unresolved failures per provider (delivery_failures), the
     * routes with their circuits, and the rate-limit impact: users with
     * failed deliveries in the window who were then refused by a rate limit (likely retrying).
     */
    async outageScope(input: { since: string; until: string; channel?: Channel }) {
      const args = [input.since, input.until, input.channel ?? null];
      const attempts = await db.query<{
        provider: string;
        channel: string;
        sends: number;
        failed_sends: number;
        failed_calls: number;
        last_failure_at: string | null;
      }>(
        `SELECT provider, channel, count(*)::int AS sends, count(*) FILTER (WHERE status = 'failed')::int AS failed_sends,
                COALESCE(sum(failed_calls), 0)::int AS failed_calls,
                to_json(max(last_attempt_at) FILTER (WHERE failed_calls > 0))#>>'{}' AS last_failure_at
           FROM delivery_attempts WHERE last_attempt_at BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3)
          GROUP BY provider, channel ORDER BY failed_calls DESC, provider`,
        args,
      );
      const failures = await db.query<{
        provider: string;
        channel: string;
        failures: number;
        unresolved: number;
        users: number;
      }>(
        `SELECT provider, channel, count(*)::int AS failures, count(*) FILTER (WHERE resolved_at IS NULL AND resent_at IS NULL)::int AS unresolved,
                count(DISTINCT user_id)::int AS users
           FROM delivery_failures WHERE last_attempt_at BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3)
          GROUP BY provider, channel ORDER BY failures DESC, provider`,
        args,
      );
      const limited = await db.query<{ users: number; refusals: number; per_user: number }>(
        `SELECT count(DISTINCT a.user_id)::int AS users, coalesce(sum(a.count), 0)::int AS refusals,
                count(DISTINCT a.user_id) FILTER (WHERE ${PER_USER_RETRY})::int AS per_user
           FROM audit_trail a
          WHERE a.event_type = $4 AND a.occurred_at BETWEEN $1 AND $2
            AND a.user_id IN (SELECT user_id FROM delivery_failures WHERE last_attempt_at BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3))`,
        [...args, AuditEventType.rateLimitExceeded],
      );
      const refused = limited.rows[0];
      const routes = await routeStatus(runtime);
      return {
        attempts: attempts.rows.map((r) => ({
          provider: r.provider,
          channel: r.channel,
          sends: r.sends,
          failedSends: r.failed_sends,
          failedCalls: r.failed_calls,
          lastFailureAt: r.last_failure_at,
        })),
        failures: failures.rows,
        routes: Object.values(routes).map((r) => ({
          channel: r.channel,
          primary: r.primary_provider,
          backup: r.backup_provider,
          mode: r.mode,
          enabled: r.enabled,
          circuits: r.circuits.map((c) => ({ provider: c.provider, state: c.state })),
        })),
        rateLimited: { users: refused?.users ?? 0, refusals: refused?.refusals ?? 0, perUser: refused?.per_user ?? 0 },
      };
    },

    /**
     * The users the retry relief clears: the scope's users with failed deliveries in the window
     * whom the per-user limit refused an initiate or resend (ids only, sorted, at most `limit`).
     */
    async retryingUsers(input: { since: string; until: string; channel?: Channel; limit: number }) {
      const { rows } = await db.query<{ user_id: string }>(
        `SELECT DISTINCT a.user_id FROM audit_events a
          WHERE a.event_type = $4 AND a.occurred_at BETWEEN $1 AND $2 AND ${PER_USER_RETRY}
            AND a.user_id IN (SELECT user_id FROM delivery_failures WHERE last_attempt_at BETWEEN $1 AND $2 AND ($3::text IS NULL OR channel = $3))
          ORDER BY a.user_id LIMIT $5`,
        [input.since, input.until, input.channel ?? null, AuditEventType.rateLimitExceeded, input.limit + 1],
      );
      return { users: rows.slice(0, input.limit).map((r) => r.user_id), truncated: rows.length > input.limit };
    },

    /**
     * Routes the channel to its backup (`backup`) or turns it off (`disable`,
     * auth.<method>.enabled: false). `changed` is false when it already was so before the run.
     */
    async applyOutageChange(input: {
      workflowId: string;
      channel: Channel;
      change: OutageChange;
      reason: string;
      incidentId?: string;
    }) {
      const key = settingKey(input.channel, input.change);
      const applied = input.change === 'backup' ? 'backup' : false;
      const now = await current(input.channel, input.change);
      // first call wins: a retry after the switch still remembers the value before it
      await db.write(
        `INSERT INTO runbook_saved_settings (workflow_id, key, previous, applied) VALUES ($1, $2, $3::jsonb, $4::jsonb) ON CONFLICT DO NOTHING`,
        [input.workflowId, key, JSON.stringify(now), JSON.stringify(applied)],
      );
      const { rows } = await db.query<SavedRow>(
        'SELECT previous, applied, restored_at FROM runbook_saved_settings WHERE workflow_id = $1 AND key = $2',
        [input.workflowId, key],
      );
      const saved = rows[0]!;
      const changed = saved.previous !== saved.applied;
      if (changed && now !== applied && !saved.restored_at) {
        const ctx = { actor: `workflow:${input.workflowId}`, reason: input.reason, incidentId: input.incidentId };
        try {
          if (input.change === 'backup') await switchRoute(runtime, input.channel, 'backup', ctx);
          else await setChannelEnabled(runtime, input.channel, false, ctx);
        } catch (err) {
          if (err instanceof Error && err.name === DeliveryErrorType.noBackup)
            throw ApplicationFailure.nonRetryable(err.message, DeliveryErrorType.noBackup);
          throw err;
        }
      }
      return { changed, previous: saved.previous };
    },

    /** Puts back what applyOutageChange changed, unless someone has changed it since. */
    async restoreOutageChange(input: {
      workflowId: string;
      channel: Channel;
      change: OutageChange;
      reason: string;
      incidentId?: string;
    }) {
      const key = settingKey(input.channel, input.change);
      const { rows } = await db.query<SavedRow>(
        'SELECT previous, applied, restored_at FROM runbook_saved_settings WHERE workflow_id = $1 AND key = $2',
        [input.workflowId, key],
      );
      const saved = rows[0];
      if (!saved || saved.previous === saved.applied) return { restored: false, reason: 'this run did not change it' };
      if (saved.restored_at) return { restored: true };
      if ((await current(input.channel, input.change)) !== saved.applied) {
        return { restored: false, reason: 'changed by someone else during the run; their value stays' };
      }
      const ctx = { actor: `workflow:${input.workflowId}`, reason: input.reason, incidentId: input.incidentId };
      if (input.change === 'backup') await switchRoute(runtime, input.channel, 'primary', ctx);
      else await setChannelEnabled(runtime, input.channel, true, ctx);
      await db.write('UPDATE runbook_saved_settings SET restored_at = now() WHERE workflow_id = $1 AND key = $2', [
        input.workflowId,
        key,
      ]);
      return { restored: true };
    },
  };
}
