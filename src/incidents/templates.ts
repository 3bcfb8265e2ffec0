import type { IncidentState } from '../shared/incidents';
import { plainName, slackEscape, slackName, statusLabel, utc } from '../shared/format';
import { ROLE_RESPONSIBILITY, ROLE_TITLES } from '../shared/escalation';
import { SEVERITY_TABLE, TYPE_LABELS } from '../shared/severity';
import { INTERNAL_ROLES, type NotifiedRole } from '../shared/incidents';

/** Slack action ids of Warden's buttons and menus; the interactions endpoint dispatches on them. */
export const SLACK_ACTIONS = {
  acknowledge: 'incident_acknowledge',
  /** a menu of the internal roles (option value `<incident id>|<role>`) */
  escalate: 'incident_escalate',
  /** opens the resolve modal */
  resolve: 'incident_resolve',
  runbookStartApprove: 'incident_runbook_start_approve',
  runbookStartReject: 'incident_runbook_start_reject',
  stepApprove: 'runbook_step_approve',
  stepReject: 'runbook_step_reject',
  /** value `<incident id>|<task id>` */
  taskDone: 'incident_task_done',
} as const;

/** callback_id of the resolve modal */
export const RESOLVE_MODAL = 'incident_resolve_modal';

export interface AlertView {
  state: Pick<
    IncidentState,
    'id' | 'type' | 'severity' | 'title' | 'impact' | 'status' | 'detectedAt' | 'owner' | 'source'
  >;
  /** the owner as Slack shows it: the acknowledger, else the on-call mention */
  owner: string;
  warRoom?: string;
}

/**
 * The internal incident notification (docs/incident-response.md), field for field:
 * INCIDENT ALERT - P{SEVERITY}, Title, Detected, Impact, Status, Owner, War Room, Updates.
 */
export function incidentAlertText(view: AlertView): string {
  const s = view.state;
  return [
    `🚨 INCIDENT ALERT - ${s.severity}`,
    `Title: ${slackEscape(s.title)}`,
    `Detected: ${utc(s.detectedAt)}`,
    `Impact: ${slackEscape(s.impact || SEVERITY_TABLE[s.severity].impact)}`,
    `Status: ${statusLabel(s.status)}`,
    `Owner: ${view.owner.startsWith('<@') ? view.owner : `@${slackEscape(view.owner)}`}`,
    `War Room: ${view.warRoom ? slackEscape(view.warRoom) : 'this channel (no war room link configured)'}`,
    '',
    'Updates: Thread below',
  ].join('\n');
}

/**
 * Block Kit for the alert: the template, the incident's id and type, and its actions: Acknowledge,
 * an Escalate menu of the internal roles, and Resolve (which opens the resolve modal).
 */
export function incidentAlertBlocks(view: AlertView): unknown[] {
  const s = view.state;
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: incidentAlertText(view) } },
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `*${s.id}* · ${TYPE_LABELS[s.type]} · ${SEVERITY_TABLE[s.severity].name}, acknowledge ${SEVERITY_TABLE[s.severity].responseText} · opened via ${s.source}`,
        },
      ],
    },
  ];
  if (s.status !== 'resolved') {
    blocks.push({
      type: 'actions',
      block_id: 'incident_actions',
      elements: [
        {
          type: 'button',
          action_id: SLACK_ACTIONS.acknowledge,
          text: { type: 'plain_text', text: 'Acknowledge' },
          style: 'primary',
          value: s.id,
        },
        {
          type: 'static_select',
          action_id: SLACK_ACTIONS.escalate,
          placeholder: { type: 'plain_text', text: 'Escalate to…' },
          options: INTERNAL_ROLES.map((role) => ({
            text: { type: 'plain_text', text: ROLE_TITLES[role] },
            value: `${s.id}|${role}`,
          })),
        },
        {
          type: 'button',
          action_id: SLACK_ACTIONS.resolve,
          text: { type: 'plain_text', text: 'Resolve' },
          style: 'danger',
          value: s.id,
        },
      ],
    });
  }
  return blocks;
}

export interface EscalationMessage {
  incident: Pick<
    IncidentState,
    'id' | 'type' | 'severity' | 'title' | 'impact' | 'status' | 'detectedAt' | 'dataBreach'
  >;
  role: NotifiedRole;
  contactName: string;
  reason: string;
  warRoom?: string;
}

export function escalationSlackText(m: EscalationMessage, mention: string): string {
  const head =
    m.role === 'oncall' ? ':pager: On-call notified' : `:rotating_light: Escalated to ${ROLE_TITLES[m.role]}`;
  return `${head}: ${mention} (${ROLE_RESPONSIBILITY[m.role]}). ${slackEscape(m.reason)}.`;
}

export function escalationEmail(m: EscalationMessage): { subject: string; text: string } {
  const i = m.incident;
  const subject = `[${i.id}] ${i.severity} ${m.role === 'oncall' ? 'incident' : 'escalation'}: ${i.title}`;
  const text = [
    `${m.contactName},`,
    '',
    m.role === 'oncall'
      ? `A ${i.severity} incident needs the on-call engineer.`
      : `The incident below is escalated to you as ${ROLE_TITLES[m.role]} (${ROLE_RESPONSIBILITY[m.role]}).`,
    `Reason: ${m.reason}.`,
    '',
    `INCIDENT ALERT - ${i.severity}`,
    `Incident: ${i.id}`,
    `Title: ${i.title}`,
    `Type: ${TYPE_LABELS[i.type]}${i.dataBreach ? ' (data breach)' : ''}`,
    `Detected: ${utc(i.detectedAt)}`,
    `Impact: ${i.impact || SEVERITY_TABLE[i.severity].impact}`,
    `Status: ${statusLabel(i.status)}`,
    `War Room: ${m.warRoom ?? 'the incident thread in Slack'}`,
    '',
    `Acknowledge with the Acknowledge button in Slack or POST /admin/api/v1/incidents/${i.id}/ack.`,
  ].join('\n');
  return { subject, text };
}

export interface CustomerNotificationInput {
  state: Pick<
    IncidentState,
    'detectedAt' | 'resolvedAt' | 'rootCause' | 'resolution' | 'dataBreach' | 'preventiveActions'
  >;
  affectedPercent?: number;
  rootCause?: string;
  resolution?: string;
  supportEmail: string;
}

/** The customer notification (docs/incident-response.md), filled from the incident. */
export function customerNotification(input: CustomerNotificationInput): string {
  const s = input.state;
  const date = (s.resolvedAt ?? s.detectedAt).slice(0, 10);
  const time = (iso: string | undefined) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : '{end_time}');
  const percent = input.affectedPercent !== undefined ? String(input.affectedPercent) : '{Percentage}';
  const prevention = s.preventiveActions.map((a) => a.description);
  const resolution = input.resolution ?? s.resolution ?? '{Steps taken to resolve and prevent recurrence}';
  return [
    `Subject: Service Incident Notification - ${date}`,
    '',
    'Dear Customers,',
    '',
    `We experienced a temporary service disruption affecting authentication services between ${time(s.detectedAt)} and ${time(s.resolvedAt)} UTC.`,
    '',
    'Impact:',
    `- ${percent}% of users experienced delays or failures during SMS OTP/Magic Link authentication`,
    // never tell customers nothing was compromised when the incident is flagged a data breach
    s.dataBreach
      ? '- Some user data may have been affected; we are contacting affected customers directly'
      : '- No user data was compromised',
    `- All services fully restored as of ${time(s.resolvedAt)} UTC`,
    '',
    'Root Cause:',
    input.rootCause ?? s.rootCause ?? '{Brief non-technical explanation}',
    '',
    'Resolution:',
    prevention.length ? `${resolution}\nTo prevent recurrence: ${prevention.join('; ')}.` : resolution,
    '',
    `We apologize for any inconvenience. If you have questions, contact ${input.supportEmail}`,
    '',
    'Operations Team',
    '',
  ].join('\n');
}

export { plainName, slackName };
