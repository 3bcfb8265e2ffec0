import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../helpers/authClient';

/**
 * The SDK patch (patches/README.md) drops the workflow VM's per-call timeout, Node's watchdog
 * thread per call, and replaces it with a stall watchdog on the workflow thread. Shown here
 * with a real worker on the run's dev server: ordinary workflows run, and a workflow stuck in
 * an endless loop makes the Worker fail with the reason instead of hanging every workflow.
 * It also lets a worker leave named workflow types out of the stack-trace tracking.
 */
describe('workflow thread stall watchdog and stack-trace tracking (SDK patch)', () => {
  let connection: NativeConnection;
  let clientConnection: Connection;
  let client: Client;
  let codePath: string;
  beforeAll(async () => {
    const address = inject('temporalAddress');
    connection = await NativeConnection.connect({ address });
    clientConnection = await Connection.connect({ address });
    client = new Client({ connection: clientConnection });
    const bundle = await bundleWorkflowCode({
      workflowsPath: path.resolve(__dirname, '../fixtures/workflows/stall.ts'),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    codePath = path.join(mkdtempSync(path.join(tmpdir(), 'warden-stall-')), 'bundle.js');
    writeFileSync(codePath, bundle.code);
  });
  afterAll(async () => {
    await clientConnection?.close();
    await connection?.close();
  });

  it('is applied: the installed SDK carries the patch', async () => {
    const threaded = (await import('@temporalio/worker/lib/workflow/threaded-vm.js' as string)) as {
      WorkerThreadClient: { prototype: Record<string, unknown> };
    };
    expect(typeof threaded.WorkerThreadClient.prototype.armStallWatchdog).toBe('function');
    const reusable = await readFile(require.resolve('@temporalio/worker/lib/workflow/reusable-vm.js'), 'utf8');
    expect(reusable).toContain('Warden patch');
    const shared = (await import('@temporalio/worker/lib/workflow/vm-shared.js' as string)) as {
      GlobalHandlers: { prototype: Record<string, unknown> };
    };
    expect(typeof shared.GlobalHandlers.prototype.stackTracesEnabledFor).toBe('function');
    expect(await readFile(require.resolve('@temporalio/worker/lib/workflow/vm-shared.js'), 'utf8')).toContain(
      'const activatorGetters = new WeakMap()',
    );
  });

  it('tracks stack traces for every workflow type but those named in WARDEN_WORKFLOW_TYPES_WITHOUT_STACK_TRACES', async () => {
    const taskQueue = `traces-${randomUUID()}`;
    const before = process.env.WARDEN_WORKFLOW_TYPES_WITHOUT_STACK_TRACES;
    process.env.WARDEN_WORKFLOW_TYPES_WITHOUT_STACK_TRACES = 'someOtherWorkflow, untrackedWaitingWorkflow';
    // debug mode runs the workflows in this process, where their promise records can be seen;
    // the list is read when the first workflow is created
    const worker = await Worker.create({ connection, taskQueue, workflowBundle: { codePath }, debugMode: true });
    const running = worker.run();
    const started: { terminate(reason: string): Promise<unknown> }[] = [];
    try {
      const tracked = await client.workflow.start('waitingWorkflow', {
        taskQueue,
        workflowId: `waiting-${randomUUID()}`,
      });
      started.push(tracked);
      const untracked = await client.workflow.start('untrackedWaitingWorkflow', {
        taskQueue,
        workflowId: `untracked-${randomUUID()}`,
      });
      started.push(untracked);
      const trace = await tracked.query<string>('__stack_trace');
      expect(trace).toMatch(/at waitingWorkflow \(/);
      await expect(untracked.query<string>('__stack_trace')).rejects.toThrow(/stack traces are not enabled/i);

      const { ReusableVMWorkflowCreator } = (await import(
        '@temporalio/worker/lib/workflow/reusable-vm.js' as string
      )) as {
        ReusableVMWorkflowCreator: {
          workflowByRunId: Map<string, { activator: { promiseStackStore: { promiseToStack: Map<unknown, unknown> } } }>;
        };
      };
      const recorded = (runId: string) =>
        ReusableVMWorkflowCreator.workflowByRunId.get(runId)!.activator.promiseStackStore.promiseToStack.size;
      expect(recorded(tracked.firstExecutionRunId)).toBeGreaterThan(0);
      expect(recorded(untracked.firstExecutionRunId)).toBe(0);
    } finally {
      await Promise.all(started.map((w) => w.terminate('test over')));
      worker.shutdown();
      await running;
      if (before === undefined) delete process.env.WARDEN_WORKFLOW_TYPES_WITHOUT_STACK_TRACES;
      else process.env.WARDEN_WORKFLOW_TYPES_WITHOUT_STACK_TRACES = before;
    }
  });

  it("still finds the workflow of an unhandled rejection (the cached getActivator) and fails that run's task only", async () => {
    const taskQueue = `rejecting-${randomUUID()}`;
    const worker = await Worker.create({ connection, taskQueue, workflowBundle: { codePath } });
    const running = worker.run();
    try {
      const handle = await client.workflow.start('rejectingWorkflow', {
        taskQueue,
        workflowId: `rejecting-${randomUUID()}`,
      });
      const failure = await waitFor("the rejecting workflow's failed task", async () => {
        const { events } = await handle.fetchHistory();
        return (
          events?.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes?.failure
            ?.message ?? undefined
        );
      });
      expect(failure).toMatch(/Unhandled Promise rejection.*nobody handles this/);
      expect(worker.getState()).toBe('RUNNING');
      expect(
        await client.workflow.execute('quickWorkflow', { taskQueue, workflowId: `quick-${randomUUID()}`, args: [41] }),
      ).toBe(42);
      await handle.terminate('test over');
    } finally {
      worker.shutdown();
      await running;
    }
  });

  it('runs ordinary workflows, and fails the Worker with the reason when a workflow never yields', async () => {
    const taskQueue = `stall-${randomUUID()}`;
    // the SDK's default isolate execution timeout (5 s) is the stall limit
    const worker = await Worker.create({ connection, taskQueue, workflowBundle: { codePath } });
    const running = worker.run();
    running.catch(() => {});
    try {
      const results = await Promise.all(
        [1, 2, 3].map((n) =>
          client.workflow.execute('quickWorkflow', { taskQueue, workflowId: `quick-${randomUUID()}`, args: [n] }),
        ),
      );
      expect(results).toEqual([2, 3, 4]);
      const started = Date.now();
      await client.workflow.start('stuckWorkflow', { taskQueue, workflowId: `stuck-${randomUUID()}` });
      await expect(running).rejects.toThrow(/made no progress for \d+ ms .*stuck in a loop/);
      // caught by the watchdog (5 s limit), not by anything slower
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => {});
    }
  });
});
