/**
 * Slack side of an incident: the incident alert posted once in the incident channel (with the
 * Acknowledge / Escalate / Resolve buttons), refreshed in place when status, severity or
 * owner change, and every update threaded under it. Decisions (a gated runbook start, a runbook
 * step waiting for approval, an open task) are posted with their buttons and rewritten in place
 * once taken. Slack has no idempotency key: a retry
 * after a lost reply can post twice, which is the lesser evil next to a missing page.
 */
import type { Block, KnownBlock } from '@slack/web-api';
import { providerSupportContact, slackMention, type Contacts } from '../incidents/contacts';
import {
  closedTaskText,
  decisionRequestBlocks,
  decisionRequestText,
  taskNoticeBlocks,
  type DecisionRequest,
} from '../incidents/slackBlocks';
import { escalationSlackText, incidentAlertBlocks, incidentAlertText, type AlertView } from '../incidents/templates';
import { slackError } from '../providers';
import type { Runtime } from '../runtime';
import type { IncidentState, IncidentTask, NotifiedRole } from '../shared/incidents';

export type IncidentSummary = Pick<
  IncidentState,
  | 'id'
  | 'type'
  | 'severity'
  | 'title'
  | 'impact'
  | 'status'
  | 'detectedAt'
  | 'owner'
  | 'source'
  | 'dataBreach'
  | 'affected'
>;

export interface SlackThread {
  channel: string;
  ts: string;
}

export interface NotifyRoleInput {
  incident: IncidentSummary;
  role: NotifiedRole;
  reason: string;
  thread?: SlackThread;
}

export interface TaskNoticeInput {
  incident: IncidentSummary;
  task: Pick<IncidentTask, 'id' | 'title' | 'contact' | 'dueAt'>;
  event: 'created' | 'reminder' | 'overdue';
  text: string;
  thread?: SlackThread;
}

type Deps = Pick<Runtime, 'providers' | 'config' | 'metrics'> & { contacts: () => Contacts };

export function createSlackNotifyActivities({ providers, config, metrics, contacts }: Deps) {
  const slack = providers.slack;
  const channel = config.providers.slack.channel;

  function view(incident: IncidentSummary): AlertView {
    const c = contacts();
    return { state: incident, owner: incident.owner ?? slackMention(c.roles.oncall), warRoom: c.war_room };
  }

  async function rewrite(where: SlackThread, text: string, blocks: unknown[]): Promise<void> {
    try {
      await slack.chat.update({ channel: where.channel, ts: where.ts, text, blocks: blocks as (Block | KnownBlock)[] });
    } catch (err) {
      throw slackError(err);
    }
  }

  async function post(text: string, thread?: SlackThread, blocks?: unknown[]): Promise<SlackThread> {
    try {
      const result = await slack.chat.postMessage({
        channel: thread?.channel ?? channel,
        text,
        ...(thread ? { thread_ts: thread.ts } : {}),
        ...(blocks ? { blocks: blocks as (Block | KnownBlock)[] } : {}),
        unfurl_links: false,
      });
      return { channel: result.channel ?? channel, ts: result.ts ?? '' };
    } catch (err) {
      throw slackError(err);
    }
  }

  /** Who a task concerns, as Slack shows it: the owner (or on-call) plus the external contact. */
  function taskAudience(input: TaskNoticeInput): string {
    const c = contacts();
    const owner = input.incident.owner ?? slackMention(c.roles.oncall);
    const external =
      input.task.contact === 'provider_support'
        ? providerSupportContact(c, input.incident.affected.providers)
        : input.task.contact === 'isp_cdn'
          ? [c.isp_cdn]
          : [c.roles.legal, c.roles.ciso];
    const names = external.map((x) => (x.url ? `${slackMention(x)} (${x.url})` : slackMention(x))).join(', ');
    return `${owner} · contact: ${names}`;
  }

  return {
    /** The internal incident alert with buttons; returns the thread to post updates under. */
    async postIncidentAlert(input: { incident: IncidentSummary }): Promise<SlackThread> {
      const v = view(input.incident);
      return post(incidentAlertText(v), undefined, incidentAlertBlocks(v));
    },

    /** Rewrites the alert in place (status, severity, owner); buttons go once resolved. */
    async updateIncidentAlert(input: { incident: IncidentSummary; thread: SlackThread }): Promise<void> {
      const v = view(input.incident);
      await rewrite(input.thread, incidentAlertText(v), incidentAlertBlocks(v));
    },

    async postIncidentThread(input: { text: string; thread?: SlackThread }): Promise<void> {
      await post(input.text, input.thread);
    },

    /** An escalation (or the first page of on-call) in the thread, mentioning the contact. */
    async notifyRoleSlack(input: NotifyRoleInput): Promise<{ contact: string }> {
      const contact = contacts().roles[input.role];
      await post(
        escalationSlackText(
          { incident: input.incident, role: input.role, contactName: contact.name, reason: input.reason },
          slackMention(contact),
        ),
        input.thread,
      );
      metrics.incidentEscalations.inc({ severity: input.incident.severity, role: input.role });
      return { contact: contact.name };
    },

    /** A task notice in the thread; the first one (`created`) carries the Done button. */
    async notifyTaskSlack(input: TaskNoticeInput): Promise<SlackThread> {
      const icon =
        input.event === 'overdue' ? ':warning:' : input.event === 'reminder' ? ':alarm_clock:' : ':clipboard:';
      const text = `${icon} ${input.text} — ${taskAudience(input)}`;
      const blocks =
        input.event === 'created' && input.thread
          ? taskNoticeBlocks(input.incident.id, text, { id: input.task.id, status: 'open' })
          : undefined;
      return post(text, input.thread, blocks);
    },

    /** Rewrites a task's first notice once the task is closed (its Done button goes). */
    async updateTaskNotice(input: {
      incident: IncidentSummary;
      task: Pick<IncidentTask, 'id' | 'title' | 'status' | 'completedBy'>;
      thread: SlackThread;
      ts: string;
    }): Promise<void> {
      const text = closedTaskText(input.task);
      await rewrite(
        { channel: input.thread.channel, ts: input.ts },
        text,
        taskNoticeBlocks(input.incident.id, text, input.task),
      );
    },

    /** A decision waiting in the thread (runbook start or step), with Approve and Reject buttons. */
    async postDecisionRequest(input: {
      incident: IncidentSummary;
      thread: SlackThread;
      request: DecisionRequest;
    }): Promise<SlackThread> {
      const id = input.incident.id;
      return post(decisionRequestText(id, input.request), input.thread, decisionRequestBlocks(id, input.request));
    },

    /** Rewrites a decision request in place: once decided it says by whom, and the buttons go. */
    async updateDecisionRequest(input: {
      incident: IncidentSummary;
      thread: SlackThread;
      ts: string;
      request: DecisionRequest;
    }): Promise<void> {
      const id = input.incident.id;
      await rewrite(
        { channel: input.thread.channel, ts: input.ts },
        decisionRequestText(id, input.request),
        decisionRequestBlocks(id, input.request),
      );
    },
  };
}
