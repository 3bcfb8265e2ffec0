import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opsTaskQueue } from '../../src/shared/taskQueues';
import { healthCheckWorkflow } from '../../src/workflows';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { spawnWorkerProcess } from '../helpers/workerProcess';

describe('the production worker entry as a separate process', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => h?.close());

  it('runs workflows, survives SIGKILL by handing work to its replacement, and stops cleanly on SIGTERM', async () => {
    const first = await spawnWorkerProcess(h);
    const run = () =>
      h.runtime.temporal.client.workflow.execute(healthCheckWorkflow, {
        taskQueue: h.config.temporal.taskQueue,
        workflowId: `health-${randomUUID()}`,
      });
    expect((await run()).ok).toBe(true);
    // the same process polls the ops task queue for runbook and checklist activities
    const ops = opsTaskQueue(h.config.temporal.taskQueue);
    await waitFor('the worker process to poll the ops queue', async () =>
      new RegExp(`warden_temporal_task_queue_pollers\\{task_queue="${ops}",task_type="activity"[^}]*\\} [1-9]`).test(
        await h.runtime.registry.metrics(),
      )
        ? true
        : undefined,
    );

    first.child.kill('SIGKILL');
    await first.stop();
    // started while no worker polls: it waits in the task queue, it is not lost
    const pending = run();
    const second = await spawnWorkerProcess(h);
    expect((await pending).ok).toBe(true);

    await second.stop();
    expect(second.child.exitCode).toBe(0);
    expect(second.output.join('\n')).toContain('worker shutting down');
  });
});
