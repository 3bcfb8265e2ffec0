import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeWorkflowId } from '../../src/shared/auth';
import { initiate, messagesFor, post, secretFor, waitFor } from '../helpers/authClient';
import { raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const { WorkflowTaskFailedCause } = temporal.api.enums.v1;

/**
 * A workflow stuck in an endless loop is a bug in workflow code. The SDK's isolate execution
 * timeout (5 s per call into the workflow VM) fails that workflow's task and nothing else: the
 * worker keeps running and challenges on the same worker, started at the same time, complete.
 */
describe('a workflow stuck in a loop', () => {
  let h: Harness;
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'warden-stall-'));
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.resolve(__dirname, '../fixtures/workflows/stall.ts'),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never,
    });
    const bundle = path.join(scratch, 'bundle.js');
    writeFileSync(bundle, code);
    h = await startHarness({ workflowBundlePath: bundle });
    await raiseRateLimits(h);
  });
  afterAll(async () => {
    await h?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('fails only its own workflow task: challenges on the same worker complete and the worker keeps running', async () => {
    const { client } = h.runtime.temporal;
    const stuck = await client.workflow.start('stuckWorkflow', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `stuck-${randomUUID()}`,
    });
    const events = async (workflowId: string) =>
      (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    try {
      // the stuck task holds the worker's workflow thread now
      await waitFor('the stuck workflow task to start', async () =>
        (await events(stuck.workflowId)).find((e) => e.workflowTaskStartedEventAttributes),
      );

      const users = ['test-user', 'test-user-2', 'test-user-3'];
      const verified = await Promise.all(
        users.map(async (user) => {
          const started = await initiate(h, 'otp', user);
          expect(started.statusCode).toBe(202);
          const challenge = started.json<{ challenge_id: string }>().challenge_id;
          // sent once the challenge's first task gets past the stuck one's two back-to-back
          // attempts (5 s each): longer than secretFor waits by itself
          await waitFor(
            `the code for ${user}`,
            async () => ((await messagesFor(h, challenge)).length ? true : undefined),
            45_000,
          );
          const otp = await secretFor(h, challenge);
          const res = await post(h, '/otp/verify', { challenge_id: challenge, otp });
          return { challenge, status: res.statusCode, body: res.json<unknown>() };
        }),
      );
      expect(verified.map(({ status, body }) => ({ status, body }))).toEqual(
        users.map(() => ({ status: 200, body: { status: 'verified' } })),
      );

      const failed = await waitFor('the stuck workflow task to fail', async () =>
        (await events(stuck.workflowId)).find((e) => e.workflowTaskFailedEventAttributes),
      );
      expect(failed.workflowTaskFailedEventAttributes).toMatchObject({
        cause: WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
        failure: { message: expect.stringMatching(/timed out/) },
      });
      // a challenge's task queued behind the stuck one may time out and run again, but never fails
      for (const { challenge } of verified) {
        const history = await events(challengeWorkflowId(challenge));
        expect(history.filter((e) => e.workflowTaskFailedEventAttributes)).toEqual([]);
      }
      expect(h.worker!.worker.getState()).toBe('RUNNING');
      expect((await stuck.describe()).status.name).toBe('RUNNING');
    } finally {
      await stuck.terminate('test over').catch(() => {});
    }
  });
});
