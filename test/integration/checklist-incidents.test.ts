/**
 * The recovery validation checklist for real: the automated items drive the public API on a
 * real port (OTP and magic links for test-user, test-user-2, test-user-3, read from the
 * sandbox outbox), probe the rate limits from synthetic addresses, and inspect the database,
 * the metrics and the alert rules. Resolution waits for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/process';
import type { IncidentState } from '../../src/shared/incidents';
import { opsTaskQueue } from '../../src/shared/taskQueues';
import { startHarness, type Harness } from '../helpers/harness';

describe('recovery validation checklist', () => {
  let h: Harness;
  let id: string;
  const abusiveIp = '203.0.113.7';

  beforeAll(async () => {
    // the p95 targets are judged in the benchmark; here a loaded CI machine must not
    // decide the outcome, so the targets are generous and the test checks what was measured
    h = await startHarness({
      listen: true,
      env: {
        WARDEN_PUBLIC_PORT: String(await freePort()),
        WARDEN_P95_GENERATION_MS: '60000',
        WARDEN_P95_VALIDATION_MS: '60000',
        WARDEN_P95_PROVIDER_MS: '60000',
      },
    });
  });
  afterAll(async () => h?.close());

  const api = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: Record<string, unknown>) =>
    h.admin.inject({ method, url: `/admin/api/v1${url}`, headers: h.adminHeaders, ...(payload ? { payload } : {}) });

  async function eventually<T>(
    probe: () => Promise<T>,
    accept: (v: T) => boolean,
    what: string,
    ms = 50_000,
  ): Promise<T> {
    const deadline = Date.now() + ms;
    let last = await probe();
    while (!accept(last)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 3000)}`);
      await new Promise((r) => setTimeout(r, 250));
      last = await probe();
    }
    return last;
  }
  const checklist = async () =>
    (await api('GET', `/incidents/${id}/checklist`)).json<{
      checklist: IncidentState['checklist'];
      running: boolean;
    }>();
  const status = (items: IncidentState['checklist']) => Object.fromEntries(items.map((i) => [i.id, i.status]));
  async function run(): Promise<IncidentState['checklist']> {
    const started = await api('POST', `/incidents/${id}/checklist/run`, { by: 'omar' });
    expect([200, 202]).toContain(started.statusCode);
    return (
      await eventually(
        checklist,
        (c) => !c.running && c.checklist.filter((i) => i.automated).every((i) => i.status !== 'pending'),
        'checklist run',
      )
    ).checklist;
  }

  it(
    'runs every automated item against the live stack and gates resolution on the result',
    { timeout: 180_000 },
    async () => {
      // an expired challenge to prove expired tokens are refused: a 1-second OTP, then the default again
      expect((await api('PUT', '/auth/settings', { otp_ttl_seconds: 1 })).statusCode).toBe(200);
      const short = await h.public.inject({
        method: 'POST',
        url: '/browser/api/v1/identity/auth/otp/initiate',
        payload: { user_id: 'alice' },
      });
      expect(short.statusCode).toBe(202);
      expect((await api('PUT', '/auth/settings', { otp_ttl_seconds: 300 })).statusCode).toBe(200);
      await eventually(
        () => h.sql("SELECT 1 FROM auth_challenges WHERE status = 'expired'"),
        (r) => r.length === 1,
        'expired challenge',
      );

      const opened = await api('POST', '/incidents', {
        type: 'abuse',
        severity: 'P2',
        title: 'credential stuffing from one range',
        affected: { ips: [abusiveIp] },
      });
      id = opened.json<{ id: string }>().id;

      // the abusive IP is not blocked yet: that item fails, and resolution is refused for it
      let items = await run();
      const first = status(items);
      const detail = (itemId: string) => items.find((i) => i.id === itemId)?.detail;
      expect(first.ip_blocklists).toBe('failed');
      expect(detail('ip_blocklists')).toContain(abusiveIp);
      for (const itemId of [
        'sms_otp_generation',
        'magic_link_generation',
        'valid_token_validation',
        'invalid_token_rejection',
        'rate_limiting',
        'audit_logging',
        'no_plaintext_tokens',
        'bcrypt_hashing',
        'key_rotation',
        'generation_latency',
        'validation_latency',
        'db_pool_healthy',
        'provider_latency',
        'metrics_reporting',
        'prometheus_alerts',
        'audit_log_exports',
        'ratelimit_metrics',
      ]) {
        expect(first[itemId], `${itemId}: ${detail(itemId)}`).toBe('passed');
      }
      expect(detail('sms_otp_generation')).toBe('3/3 users received a SMS code');
      // p95 over this run's own traffic: 3 SMS + 3 links + the probes, from the metrics registry
      expect(detail('generation_latency')).toMatch(/^p95 \d+ ms over \d+ generations \(target < 60000 ms\)$/);
      expect(detail('validation_latency')).toMatch(/^p95 \d+ ms over \d+ validations/);
      expect(detail('provider_latency')).toMatch(/twilio p95 \d+ ms .*sendgrid p95 \d+ ms/);
      expect(detail('rate_limiting')).toMatch(/per-user refused at 11, per-IP refused at 51/);
      expect(detail('invalid_token_rejection')).toContain('expired challenge');
      // every check ran on the ops task queue, away from the slots challenges need
      const { events } = await h.runtime.temporal.client.workflow.getHandle(id).fetchHistory();
      const checks = (events ?? [])
        .map((e) => e.activityTaskScheduledEventAttributes)
        .filter((a) => a && /^(check|capture)/.test(a.activityType!.name!));
      expect(checks.length).toBeGreaterThan(1);
      expect(new Set(checks.map((a) => a!.taskQueue!.name))).toEqual(
        new Set([opsTaskQueue(h.config.temporal.taskQueue)]),
      );
      // manual items wait for a responder
      expect(first.user_notifications).toBe('pending');
      expect(first.grafana_dashboards).toBe('pending');
      // the synthetic flows really reached the three test users
      for (const phone of ['+15555550100', '+15555550102', '+15555550103']) {
        expect((await h.sql('SELECT 1 FROM users WHERE phone = $1', [phone])).length).toBe(1);
        expect(h.sandbox.state.messages(phone).length).toBeGreaterThan(0);
      }

      expect(
        (
          await api('POST', `/incidents/${id}/preventive-actions`, {
            by: 'omar',
            description: 'CAPTCHA after 3 failures',
            category: 'code',
          })
        ).statusCode,
      ).toBe(200);
      const manual = await api('POST', `/incidents/${id}/resolve`, { by: 'omar', resolution: 'range blocked' });
      expect(manual.json().error).toBe('checklist_incomplete');
      for (const item of ['user_notifications', 'grafana_dashboards']) {
        expect(
          (
            await api('POST', `/incidents/${id}/checklist/${item}`, {
              by: 'omar',
              passed: true,
              note: 'checked by hand',
            })
          ).statusCode,
        ).toBe(200);
      }
      const refused = await api('POST', `/incidents/${id}/resolve`, { by: 'omar', resolution: 'range blocked' });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error).toBe('checklist_failed');
      expect(refused.json().message).toContain('ip_blocklists');

      // block it, and resolution reruns the checks and goes through
      expect(
        (await api('POST', '/blocklist/ip', { ip: '203.0.113.0/24', reason: 'credential stuffing', incident_id: id }))
          .statusCode,
      ).toBe(201);
      const resolved = await api('POST', `/incidents/${id}/resolve`, {
        by: 'omar',
        resolution: 'range blocked at the edge',
        root_cause: 'credential list from a breach elsewhere',
      });
      expect([200, 202], resolved.body).toContain(resolved.statusCode);
      const final =
        resolved.statusCode === 202
          ? await eventually(
              async () => (await api('GET', `/incidents/${id}`)).json<IncidentState>(),
              (s) => s.status === 'resolved',
              'resolved',
            )
          : resolved.json<IncidentState>();
      expect(final.status).toBe('resolved');
      items = final.checklist;
      expect(
        items.every((i) => i.status === 'passed'),
        JSON.stringify(items.filter((i) => i.status !== 'passed')),
      ).toBe(true);
      expect(final.forcedResolution).toBeUndefined();
      const kinds = final.timeline.map((e) => e.kind);
      expect(kinds.indexOf('checklist_passed')).toBeLessThan(kinds.indexOf('resolved'));

      const report = (await api('GET', `/incidents/${id}/report`)).body;
      expect(report).toMatch(
        /- \d{2}:\d{2} - Service restored, monitoring validation: Recovery validation checklist passed/,
      );
      expect(report).toContain(
        '| security | IP blocklists updated (abusive IPs blocked at firewall/load balancer) | automated | passed',
      );
      expect(report).toContain(
        '| monitoring | Grafana dashboards showing accurate metrics | manual | passed: checked by hand |',
      );
    },
  );
});
