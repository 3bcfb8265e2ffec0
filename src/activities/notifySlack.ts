/**
 * Slack side of an incident: the incident alert posted once in the incident channel (with the
 * Acknowledge / Escalate / Resolve buttons), refreshed in place when status, severity or
 * owner change, and every update threaded under it. Slack has no idempotency key: a retry
 * after a lost reply can post twice, which is the lesser evil next to a missing page.
 */
import type { Block, KnownBlock } from '@slack/web-api';
import { providerSupportContact, slackMention, type Contacts } from '../incidents/contacts';
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
      try {
        await slack.chat.update({
          channel: input.thread.channel,
          ts: input.thread.ts,
          text: incidentAlertText(v),
          blocks: incidentAlertBlocks(v) as (Block | KnownBlock)[],
        });
      } catch (err) {
        throw slackError(err);
      }
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

    async notifyTaskSlack(input: TaskNoticeInput): Promise<void> {
      const icon =
        input.event === 'overdue' ? ':warning:' : input.event === 'reminder' ? ':alarm_clock:' : ':clipboard:';
      await post(`${icon} ${input.text} — ${taskAudience(input)}`, input.thread);
    },
  };
}
