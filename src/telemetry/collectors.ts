import type { Connection } from '@temporalio/client';
import { type google, temporal } from '@temporalio/proto';
import type { Config } from '../config';
import type { Database } from '../db/database';
import { opsTaskQueue } from '../shared/taskQueues';
import type { TaskQueueSample } from './metrics';

// a scrape must never hang on a slow dependency: Prometheus' own scrape timeout is 10 s
const PROBE_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out`)), PROBE_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

const WORKFLOW = ['workflow', temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW] as const;
const ACTIVITY = ['activity', temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY] as const;

function seconds(duration: google.protobuf.IDuration | null | undefined): number {
  if (!duration) return 0;
  return Number(duration.seconds ?? 0) + (duration.nanos ?? 0) / 1e9;
}

/**
 * Backlog and pollers of Warden's task queues, from the Temporal server's own statistics: the
 * main queue's workflow and activity tasks, the ops queue's activity tasks (it has no workflows).
 */
export function taskQueueProbe(
  connection: Connection,
  config: Pick<Config, 'temporal'>,
): () => Promise<TaskQueueSample[]> {
  const { namespace } = config.temporal;
  const described = [
    [config.temporal.taskQueue, WORKFLOW],
    [config.temporal.taskQueue, ACTIVITY],
    [opsTaskQueue(config.temporal.taskQueue), ACTIVITY],
  ] as const;
  return () =>
    withTimeout(
      Promise.all(
        described.map(async ([taskQueue, [taskType, type]]) => {
          const response = await connection.workflowService.describeTaskQueue({
            namespace,
            taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
            taskQueueType: type,
            reportStats: true,
          });
          return {
            taskQueue,
            taskType,
            backlog: Number(response.stats?.approximateBacklogCount ?? 0),
            backlogAgeSeconds: seconds(response.stats?.approximateBacklogAge),
            pollers: response.pollers?.length ?? 0,
          } satisfies TaskQueueSample;
        }),
      ),
      'DescribeTaskQueue',
    );
}

/** Open incidents per severity from the `incidents` projection the incident workflows keep. */
export function openIncidentsProbe(db: Database): () => Promise<Array<{ severity: string; count: number }>> {
  return async () => {
    const result = await withTimeout(
      db.query<{ severity: string; count: string }>(
        "SELECT severity, count(*) AS count FROM incidents WHERE status <> 'resolved' GROUP BY severity",
      ),
      'open incidents query',
    );
    return result.rows.map((row) => ({ severity: row.severity, count: Number(row.count) }));
  };
}

/** The circuit breakers of every provider (src/delivery/circuit.ts), shared by all workers. */
export function circuitProbe(db: Database): () => Promise<Array<{ channel: string; provider: string; state: string }>> {
  return async () => {
    const result = await withTimeout(
      db.query<{ channel: string; provider: string; state: string }>(
        'SELECT channel, provider, state FROM provider_circuits',
      ),
      'circuit query',
    );
    return result.rows;
  };
}
