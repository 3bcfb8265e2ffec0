import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../src/dev/process';
import { startHarness, type Harness } from '../helpers/harness';

/** The scrape-time gauges the Temporal and incident alerts and dashboards rely on. */
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
      if (!new RegExp(`warden_temporal_task_queue_pollers\\{[^}]*task_queue="${tq}",task_type="workflow"[^}]*\\} [1-9]`).test(text)) {
        throw new Error('no poller yet');
      }
      return text;
    });
    expect(body).toMatch(new RegExp(`warden_temporal_task_queue_backlog\\{[^}]*task_queue="${tq}",task_type="activity"[^}]*\\} 0`));
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
});
