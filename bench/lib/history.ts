/**
 * Where a challenge's time went, read from its Temporal workflow history: every event carries
 * the server's timestamp, so the gaps between the benchmark's own send/answer times and the
 * workflow's events split a request into stages without touching the service's code. Same
 * machine, same clock.
 */

// temporal.api.enums.v1.EventType values
const STARTED = 1;
const WFT_SCHEDULED = 5;
const WFT_STARTED = 6;
const WFT_COMPLETED = 7;
const ACTIVITY_SCHEDULED = 10;
const ACTIVITY_STARTED = 11;
const ACTIVITY_COMPLETED = 12;
const UPDATE_ACCEPTED = 41;
const UPDATE_COMPLETED = 43;

type Id = number | { toString(): string } | null | undefined;

/** The fields of a history event this module reads (structurally what @temporalio/proto gives). */
export interface RawEvent {
  eventId?: Id;
  eventType?: number | null;
  eventTime?: { seconds?: Id; nanos?: number | null } | null;
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null;
  activityTaskStartedEventAttributes?: { scheduledEventId?: Id } | null;
  activityTaskCompletedEventAttributes?: { scheduledEventId?: Id } | null;
  workflowExecutionUpdateAcceptedEventAttributes?: {
    acceptedRequest?: { input?: { name?: string | null } | null } | null;
  } | null;
  workflowExecutionUpdateCompletedEventAttributes?: { acceptedEventId?: Id } | null;
}

export interface Ev {
  id: number;
  type: number;
  /** epoch ms */
  at: number;
  activity?: string;
  scheduledId?: number;
  updateName?: string;
  acceptedId?: number;
}

const num = (v: Id): number => (v == null ? 0 : Number(v.toString()));

export function normalize(events: readonly RawEvent[]): Ev[] {
  return events.map((e) => {
    const ev: Ev = {
      id: num(e.eventId),
      type: e.eventType ?? 0,
      at: num(e.eventTime?.seconds) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6,
    };
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) ev.activity = name;
    const scheduled =
      e.activityTaskStartedEventAttributes?.scheduledEventId ??
      e.activityTaskCompletedEventAttributes?.scheduledEventId;
    if (scheduled != null) ev.scheduledId = num(scheduled);
    const update = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name;
    if (update) ev.updateName = update;
    const accepted = e.workflowExecutionUpdateCompletedEventAttributes?.acceptedEventId;
    if (accepted != null) ev.acceptedId = num(accepted);
    return ev;
  });
}

function activity(evs: readonly Ev[], name: string) {
  const scheduled = evs.find((e) => e.type === ACTIVITY_SCHEDULED && e.activity === name);
  if (!scheduled) return undefined;
  const started = evs.find((e) => e.type === ACTIVITY_STARTED && e.scheduledId === scheduled.id);
  const completed = evs.find((e) => e.type === ACTIVITY_COMPLETED && e.scheduledId === scheduled.id);
  return started && completed ? { scheduled, started, completed } : undefined;
}

/** An update's accepted and completed events, and the workflow task that accepted it. */
function update(evs: readonly Ev[], name: string) {
  const accepted = evs.find((e) => e.type === UPDATE_ACCEPTED && e.updateName === name);
  if (!accepted) return undefined;
  const completed = evs.find((e) => e.type === UPDATE_COMPLETED && e.acceptedId === accepted.id);
  const before = evs.filter((e) => e.id < accepted.id);
  const last = (type: number) => [...before].reverse().find((e) => e.type === type);
  const task = { scheduled: last(WFT_SCHEDULED), started: last(WFT_STARTED), completed: last(WFT_COMPLETED) };
  if (!completed || !task.scheduled || !task.started || !task.completed) return undefined;
  return { accepted, completed, task: task as { scheduled: Ev; started: Ev; completed: Ev } };
}

export type Stages = Record<string, number>;

/**
 * Initiate: HTTP -> update-with-start -> first workflow task -> issue -> update result -> HTTP.
 * The issue runs as a local activity inside the first workflow task (a marker, no activity
 * events); histories from before that change have an issue activity of their own.
 */
export function initiateStages(evs: readonly Ev[], t: { sentAt: number; answeredAt: number }): Stages | undefined {
  const started = evs.find((e) => e.type === STARTED);
  const firstTask = {
    scheduled: evs.find((e) => e.type === WFT_SCHEDULED),
    started: evs.find((e) => e.type === WFT_STARTED),
    completed: evs.find((e) => e.type === WFT_COMPLETED),
  };
  const issue = activity(evs, 'issueChallenge');
  const issued = update(evs, 'awaitIssue');
  if (!started || !firstTask.scheduled || !firstTask.started || !firstTask.completed || !issued) return undefined;
  if (!issue) {
    // an issue activity scheduled but not finished: an incomplete history, not a local issue
    if (
      evs.some((e) => e.type === ACTIVITY_SCHEDULED && e.activity === 'issueChallenge') ||
      issued.completed.at < firstTask.completed.at
    )
      return undefined;
    return {
      'API before the workflow starts (HTTP in, blocklist, rate limit, settings, start RPC)': started.at - t.sentAt,
      'workflow task: queue': firstTask.started.at - firstTask.scheduled.at,
      'workflow task: run, with the issue as a local activity (HMAC, bcrypt hash, seal, DB insert)':
        firstTask.completed.at - firstTask.started.at,
      'update completed after the task': issued.completed.at - firstTask.completed.at,
      'API after the update (result back, HTTP out)': t.answeredAt - issued.completed.at,
      total: t.answeredAt - t.sentAt,
    };
  }
  return {
    'API before the workflow starts (HTTP in, blocklist, rate limit, settings, start RPC)': started.at - t.sentAt,
    'workflow task: queue': firstTask.started.at - firstTask.scheduled.at,
    'workflow task: run': firstTask.completed.at - firstTask.started.at,
    'issue activity: queue': issue.started.at - issue.scheduled.at,
    'issue activity: run (HMAC, bcrypt hash, seal, DB insert)': issue.completed.at - issue.started.at,
    'workflow task completing the update': issued.completed.at - issue.completed.at,
    'API after the update (result back, HTTP out)': t.answeredAt - issued.completed.at,
    total: t.answeredAt - t.sentAt,
  };
}

/** Delivery: the first send activity and when the provider sandbox accepted the message. */
export function deliveryStages(evs: readonly Ev[], t: { sentAt: number; outboxAt: number }): Stages | undefined {
  const deliver = activity(evs, 'sendDelivery');
  if (!deliver) return undefined;
  return {
    'deliver activity: queue': deliver.started.at - deliver.scheduled.at,
    'deliver activity: start -> provider accepted (DB, unseal, SDK send)': t.outboxAt - deliver.started.at,
    'deliver activity: run (whole)': deliver.completed.at - deliver.started.at,
    'initiate sent -> provider accepted': t.outboxAt - t.sentAt,
  };
}

/**
 * Verify: HTTP -> update -> workflow task with local activities (bcrypt compare, DB) -> HTTP.
 * Under load the update often rides on a workflow task that was already scheduled (for a
 * delivery result) before the request arrived, so the API's own work and the wait for that
 * task are one stage here.
 */
export function verifyStages(evs: readonly Ev[], t: { sentAt: number; answeredAt: number }): Stages | undefined {
  const u = update(evs, 'verify');
  if (!u) return undefined;
  return {
    'API before the update (HTTP in, blocklist, row read, rate limit, seal, update RPC) + wait for a workflow task':
      u.task.started.at - t.sentAt,
    'workflow task with local activities (bcrypt compare, DB read, end row)': u.completed.at - u.task.started.at,
    'API after the update (audit transaction, HTTP out)': t.answeredAt - u.completed.at,
    total: t.answeredAt - t.sentAt,
  };
}
