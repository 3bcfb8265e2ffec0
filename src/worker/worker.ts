/**
 * Two Workers on one connection: `worker` polls the main task queue (workflows and every
 * activity), `ops` the ops task queue, where runbooks and the recovery checklist schedule their
 * activities (src/shared/taskQueues.ts), with activity slots of its own. Both register every
 * activity: a runbook may call any of them, and an activity scheduled on the main queue before
 * the ops queue existed still finds a Worker there.
 */
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import { GracefulShutdownPeriodExpiredError, NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { opsTaskQueue } from '../shared/taskQueues';
import type { Runtime } from '../runtime';
import { TRACING_WORKFLOW_MODULES, type Tracing } from '../telemetry/tracing';
import { createDataConverter } from '../temporal/client';
import { temporalConnectionOptions, temporalTransport } from '../temporal/connectionOptions';

export interface WorkerHandle {
  worker: Worker;
  ops: Worker;
  /** resolves when both Workers have stopped (after shutdown() or a fatal error of either) */
  running: Promise<void>;
  /**
   * Stops polling, lets running activities finish within the grace time, then cancels them; one
   * that still has not returned after the force time is abandoned (Temporal retries it elsewhere
   * once its timeout passes), so a stop never hangs. Closes the connection.
   */
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
  return {
    interceptors: {
      ...activityTracing(tracing).interceptors,
      ...(prebuilt ? {} : { workflowModules: TRACING_WORKFLOW_MODULES }),
    },
    sinks: { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) },
  };
}

function activityTracing(tracing: Tracing): Pick<WorkerOptions, 'interceptors'> {
  const options = { tracer: tracing.tracer };
  return {
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx, options),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
  };
}

export async function startWorker(runtime: Runtime, settings: WorkerSettings = {}): Promise<WorkerHandle> {
  const { config } = runtime;
  const options = temporalConnectionOptions(config.temporal);
  const connection = await NativeConnection.connect(options).catch((err: unknown) => {
    const where = `${options.address} (${temporalTransport(config.temporal)})`;
    throw new Error(`the worker cannot reach Temporal at ${where}: ${(err as Error).message}`, { cause: err });
  });
  const taskQueue = settings.taskQueue ?? config.temporal.taskQueue;
  const common = {
    connection,
    namespace: config.temporal.namespace,
    activities: createActivities(runtime),
    dataConverter: createDataConverter(config, runtime.subjectKeys),
    shutdownGraceTime: '10 seconds',
    shutdownForceTime: '30 seconds',
  } satisfies Partial<WorkerOptions>;
  let worker: Worker;
  let ops: Worker;
  try {
    worker = await Worker.create({
      ...common,
      taskQueue,
      ...(runtime.tracing ? tracingOptions(runtime.tracing, settings.workflowBundlePath !== undefined) : {}),
      ...(settings.workflowBundlePath
        ? { workflowBundle: { codePath: settings.workflowBundlePath } }
        : { workflowsPath: require.resolve('../workflows') }),
    });
    ops = await Worker.create({
      ...common,
      taskQueue: opsTaskQueue(taskQueue),
      ...(runtime.tracing ? activityTracing(runtime.tracing) : {}),
    });
  } catch (err) {
    // refused while a created Worker holds it; the process is failing to start anyway
    await connection.close().catch(() => {});
    throw err;
  }
  const stop = () => {
    for (const w of [worker, ops]) if (w.getState() === 'RUNNING') w.shutdown();
  };
  // one Worker stopping (a fatal error) stops the other, so the process never runs half a worker
  const running = Promise.allSettled([worker.run().finally(stop), ops.run().finally(stop)]).then(async (results) => {
    await connection.close().catch(() => {});
    for (const result of results) {
      if (result.status === 'fulfilled') continue;
      if (!(result.reason instanceof GracefulShutdownPeriodExpiredError)) throw result.reason;
      runtime.logger.warn({ err: result.reason.message }, 'worker stopped with activities still running');
    }
  });
  return {
    worker,
    ops,
    running,
    async shutdown() {
      stop();
      await running;
    },
  };
}
