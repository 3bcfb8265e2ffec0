/**
 * Warden's two task queues. Workflows and their quick activities (issue, deliver, verify, incident
 * pages) run on the main queue, WARDEN_TASK_QUEUE. The activities of runbooks and of the recovery
 * checklist can hold an activity slot for minutes (a leak scan for up to 30): they run on the ops
 * queue, polled by a Worker of their own, so they never take the slots that challenge sends need.
 *
 * The ops queue's name derives from the main one: a workflow finds it from its own task queue,
 * so there is no second setting to pass into workflows, or to get out of step with the first.
 */
export function opsTaskQueue(taskQueue: string): string {
  return `${taskQueue}-ops`;
}
