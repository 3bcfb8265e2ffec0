/**
 * Runbook activities go to the ops task queue, where a Worker of their own polls, so a long scan
 * never takes an activity slot a challenge needs; challenge and incident-page activities stay on
 * the main queue. Read from the workflows' histories, where Temporal records each activity's queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeWorkflowId } from '../../src/shared/auth';
import type { RunbookState } from '../../src/shared/runbooks';
import { opsTaskQueue } from '../../src/shared/taskQueues';
import { initiate, secretFor, waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

describe('the ops task queue', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  /** the task queue of every activity a workflow scheduled, by activity type */
  async function scheduled(workflowId: string): Promise<Array<{ type: string; queue: string }>> {
    const { events } = await h.runtime.temporal.client.workflow.getHandle(workflowId).fetchHistory();
    return (events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes)
      .filter((a) => !!a)
      .map((a) => ({ type: a.activityType!.name!, queue: a.taskQueue!.name! }));
  }

  it('takes the runbook activities; challenges and incident pages stay on the main queue', async () => {
    const main = h.config.temporal.taskQueue;
    const ops = opsTaskQueue(main);
    const challenge = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string }>().challenge_id;
    await secretFor(h, challenge);

    const opened = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/incidents',
      headers: h.adminHeaders,
      payload: {
        type: 'compromised_token',
        severity: 'P1',
        title: 'bob reports a code he never asked for',
        affected: { users: ['bob'] },
      },
    });
    expect(opened.statusCode).toBe(201);
    const incident = opened.json<{ id: string }>().id;
    const runbook = `${incident}-runbook`;
    // at P1 the runbook stops at its first destructive step: by then it has written its bookkeeping
    await waitFor(
      'the runbook to wait for approval',
      async () => {
        const res = await h.admin.inject({
          method: 'GET',
          url: `/admin/api/v1/runbooks/runs/${runbook}`,
          headers: h.adminHeaders,
        });
        const s = res.json<RunbookState>();
        return s.steps?.some((x) => x.status === 'awaiting_approval') ? s : undefined;
      },
      60_000,
    );

    const runbookActivities = await scheduled(runbook);
    expect(runbookActivities.map((a) => a.type)).toContain('startRunbookRun');
    expect(new Set(runbookActivities.map((a) => a.queue))).toEqual(new Set([ops]));

    const challengeActivities = await scheduled(challengeWorkflowId(challenge));
    expect(challengeActivities.length).toBeGreaterThan(0);
    expect(new Set(challengeActivities.map((a) => a.queue))).toEqual(new Set([main]));
    const incidentActivities = await scheduled(incident);
    expect(incidentActivities.map((a) => a.type)).toContain('registerIncident');
    expect(new Set(incidentActivities.map((a) => a.queue))).toEqual(new Set([main]));
  });

  it('is in the task-queue metrics: activity pollers and backlog, and no workflow series', async () => {
    const ops = opsTaskQueue(h.config.temporal.taskQueue);
    const text = await waitFor('a poller on the ops queue', async () => {
      const body = await h.runtime.registry.metrics();
      return new RegExp(
        `warden_temporal_task_queue_pollers\\{task_queue="${ops}",task_type="activity"[^}]*\\} [1-9]`,
      ).test(body)
        ? body
        : undefined;
    });
    expect(text).toMatch(
      new RegExp(`warden_temporal_task_queue_backlog\\{task_queue="${ops}",task_type="activity"[^}]*\\} 0`),
    );
    // no Workflow polls the ops queue: a workflow series there would read as "no workers"
    expect(text).not.toContain(`task_queue="${ops}",task_type="workflow"`);
  });
});
