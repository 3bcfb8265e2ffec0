/** The scrape-time gauges the Temporal and incident alerts and dashboards rely on. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../src/dev/process';
import { initiate, post, secretFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

describe('operational metrics read at scrape time', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ listen: true });
  });
  afterAll(async () => h?.close());

  const scrape = async () => (await fetch(`${h.servers!.urls.metrics}/metrics`)).text();

  it("reports the worker's pollers and the backlog of Warden's task queue from Temporal", async () => {
    const tq = h.config.temporal.taskQueue;
    // the worker has polled once the server lists it; until then pollers reads 0
    const body = await waitFor('a poller on the task queue', async () => {
      const text = await scrape();
      if (
        !new RegExp(
          `warden_temporal_task_queue_pollers\\{[^}]*task_queue="${tq}",task_type="workflow"[^}]*\\} [1-9]`,
        ).test(text)
      ) {
        throw new Error('no poller yet');
      }
      return text;
    });
    expect(body).toMatch(
      new RegExp(`warden_temporal_task_queue_backlog\\{[^}]*task_queue="${tq}",task_type="activity"[^}]*\\} 0`),
    );
    expect(body).toMatch(new RegExp(`warden_temporal_task_queue_backlog_age_seconds\\{[^}]*task_queue="${tq}"`));
  });

  it('counts open incidents by severity from the incidents table, resolved ones excluded', async () => {
    expect(await scrape()).toMatch(/warden_incidents_open\{[^}]*severity="P0"[^}]*\} 0/);
    await h.sql(
      `INSERT INTO incidents (id, workflow_id, type, severity, status, title) VALUES
        ('INC-2026-01-01-01', 'INC-2026-01-01-01', 'provider_outage', 'P1', 'investigating', 'twilio down'),
        ('INC-2026-01-01-02', 'INC-2026-01-01-02', 'abuse', 'P1', 'mitigating', 'credential stuffing'),
        ('INC-2026-01-01-03', 'INC-2026-01-01-03', 'abuse', 'P2', 'resolved', 'old one')`,
    );
    const body = await scrape();
    expect(body).toMatch(/warden_incidents_open\{[^}]*severity="P1"[^}]*\} 2/);
    expect(body).toMatch(/warden_incidents_open\{[^}]*severity="P2"[^}]*\} 0/);
  });

  it('splits initiate and verify into stages (warden_auth_stage_duration_seconds) for the benchmark breakdown', async () => {
    const challenge = (await initiate(h, 'otp', 'test-user-2')).json<{ challenge_id: string }>().challenge_id;
    const code = await secretFor(h, challenge);
    expect((await post(h, '/otp/verify', { challenge_id: challenge, otp: code })).statusCode).toBe(200);
    const body = await scrape();
    const count = (flow: string, stage: string) =>
      Number(
        new RegExp(
          `^warden_auth_stage_duration_seconds_count\\{[^}]*flow="${flow}",stage="${stage}"[^}]*\\} (\\d+)`,
          'm',
        ).exec(body)?.[1] ?? 0,
      );
    for (const stage of ['blocklist', 'rate_limit', 'settings', 'workflow', 'hash', 'db'])
      expect(count('initiate', stage), `initiate ${stage}`).toBeGreaterThanOrEqual(1);
    for (const stage of ['blocklist', 'rate_limit', 'seal', 'workflow', 'compare', 'audit'])
      expect(count('verify', stage), `verify ${stage}`).toBeGreaterThanOrEqual(1);
    // labels stay bounded: no challenge id, user or code in any series of it
    const series = body.split('\n').filter((l) => l.startsWith('warden_auth_stage_duration_seconds'));
    expect(series.some((l) => l.includes(challenge) || l.includes(code) || l.includes('test-user-2'))).toBe(false);
  });
});
