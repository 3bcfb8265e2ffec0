import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { Runtime } from '../runtime';
import { createDataConverter } from '../temporal/client';

export interface WorkerHandle {
  worker: Worker;
  /** resolves when the worker has stopped (after shutdown() or a fatal error) */
  running: Promise<void>;
  /** stops polling, lets running activities finish within the grace time, closes the connection */
  shutdown(): Promise<void>;
}

export interface WorkerSettings {
  /** a prebuilt bundle (tests build one for the whole run); otherwise bundled at start */
  workflowBundlePath?: string;
  taskQueue?: string;
}

export async function startWorker(runtime: Runtime, settings: WorkerSettings = {}): Promise<WorkerHandle> {
  const { config } = runtime;
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const options: WorkerOptions = {
    connection,
    namespace: config.temporal.namespace,
    taskQueue: settings.taskQueue ?? config.temporal.taskQueue,
    activities: createActivities(runtime),
    dataConverter: createDataConverter(config),
    shutdownGraceTime: '10 seconds',
    ...(settings.workflowBundlePath
      ? { workflowBundle: { codePath: settings.workflowBundlePath } }
      : { workflowsPath: require.resolve('../workflows') }),
  };
  let worker: Worker;
  try {
    worker = await Worker.create(options);
  } catch (err) {
    await connection.close();
    throw err;
  }
  const running = worker.run().finally(() => connection.close().catch(() => {}));
  return {
    worker,
    running,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
