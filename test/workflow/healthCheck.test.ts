import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthCheckWorkflow } from '../../src/workflows';
import { startHarness, type Harness } from '../helpers/harness';

describe('health check workflow on the real dev server', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  it('round-trips through Temporal, the worker and Postgres', async () => {
    const result = await h.runtime.temporal.client.workflow.execute(healthCheckWorkflow, {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `health-${randomUUID()}`,
    });
    expect(result.ok).toBe(true);
    expect(result.connections).toBeGreaterThan(0);
    expect(result.pool.max).toBe(25);
  });

  it('stores payloads encrypted in the history', async () => {
    const workflowId = `health-${randomUUID()}`;
    await h.runtime.temporal.client.workflow.execute(healthCheckWorkflow, {
      taskQueue: h.config.temporal.taskQueue,
      workflowId,
    });
    const history = await h.runtime.temporal.client.workflow.getHandle(workflowId).fetchHistory();
    const completed = history.events?.find((e) => e.workflowExecutionCompletedEventAttributes);
    const payload = completed?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
    expect(Buffer.from(payload!.metadata!.encoding!).toString()).toBe('binary/encrypted');
    expect(Buffer.from(payload!.data!).toString('latin1')).not.toContain('connections');
  });
});
