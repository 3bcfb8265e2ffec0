import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { Runtime } from '../runtime';
import { TRACING_WORKFLOW_MODULES, type Tracing } from '../telemetry/tracing';
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

/**
 * With tracing on: a span per activity execution (a child of the workflow's span), trace ids on
 * activity log lines, and workflow spans exported through the interceptors' sink. A prebuilt
 * bundle must have been built with TRACING_WORKFLOW_MODULES for workflow spans to exist.
 */
function tracingOptions(tracing: Tracing, prebuilt: boolean): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const options = { tracer: tracing.tracer };
  return {
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx, options),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
      ...(prebuilt ? {} : { workflowModules: TRACING_WORKFLOW_MODULES }),
    },
    sinks: { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) },
  };
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
    ...(runtime.tracing ? tracingOptions(runtime.tracing, settings.workflowBundlePath !== undefined) : {}),
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
