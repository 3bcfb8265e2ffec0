import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthCheckWorkflow } from '../../src/workflows';
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
