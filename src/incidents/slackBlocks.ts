/**
 * Block Kit for what responders decide in Slack: the gated runbook start and runbook steps
 * waiting for an approval (Approve / Reject, rewritten in place once decided), task notices
 * with a Done button, the resolve modal, and the `/incident help` text. Button values carry
 * ids only; the interactions endpoint checks the clicker's role before acting on them.
 */
import { slackEscape, slackName } from '../shared/format';
import type { IncidentTask, RunbookGate, StepApprovalNotice } from '../shared/incidents';
import { RESOLVE_MODAL, SLACK_ACTIONS } from './templates';

export type DecisionRequest =
  ({ kind: 'runbook_start' } & RunbookGate) | ({ kind: 'runbook_step' } & StepApprovalNotice);

/** What a step button carries: the run, the step, and the incident for the refusal's audit row. */
export interface StepButtonValue {
  incident: string;
  run: string;
  step: string;
}

export const PREVENTIVE_CATEGORIES = ['code', 'monitoring', 'process', 'infrastructure'] as const;

/** Block and action ids of the resolve modal's inputs; a refusal is shown on one of these blocks. */
export const RESOLVE_FIELDS = {
  resolution: 'resolution',
  rootCause: 'root_cause',
  preventiveAction: 'preventive_action',
  category: 'preventive_category',
} as const;

const plain = (text: string) => ({ type: 'plain_text', text: text.slice(0, 75) });
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });

function decided(r: DecisionRequest): string {
  const note = r.note ? `: ${slackEscape(r.note)}` : '';
  const by = r.kind === 'runbook_start' ? r.decidedBy : r.by;
  return r.status === 'approved'
    ? `:white_check_mark: Approved by ${slackName(by ?? 'a responder')}${note}`
    : `:no_entry: Rejected by ${slackName(by ?? 'a responder')}${note}`;
}

/** The request's text: what waits, who may decide, and (once decided) by whom. */
export function decisionRequestText(incidentId: string, r: DecisionRequest): string {
  if (r.kind === 'runbook_start') {
    const head = `:raised_hand: The runbook of *${incidentId}* waits for a responder's approval before it starts (opened from Slack by ${slackName(r.requestedBy)}).`;
    if (r.status === 'waiting')
      return `${head}\nA responder decides: the buttons below, \`/incident runbook ${incidentId} approve\`, or POST /admin/api/v1/incidents/${incidentId}/runbook-gate/approve.`;
    return `${head}\n${decided(r)}${r.status === 'rejected' ? '. The runbook was not started.' : '. The runbook starts now.'}`;
  }
  const head = `:raised_hand: Runbook step *${slackEscape(r.title)}* (\`${r.step}\`) of *${incidentId}* waits for an approval.`;
  if (r.status === 'waiting')
    return `${head}\nAn admin decides: the buttons below, \`/incident runbook ${incidentId} approve ${r.step}\`, or POST /admin/api/v1/runbooks/runs/${r.runbookWorkflowId}/approve.`;
  return `${head}\n${decided(r)}${r.status === 'rejected' ? '. The step is not run.' : '. The step runs now.'}`;
}

export function decisionRequestBlocks(incidentId: string, r: DecisionRequest): unknown[] {
  const blocks: unknown[] = [{ type: 'section', text: mrkdwn(decisionRequestText(incidentId, r)) }];
  if (r.status !== 'waiting') return blocks;
  const [approve, reject, value] =
    r.kind === 'runbook_start'
      ? [SLACK_ACTIONS.runbookStartApprove, SLACK_ACTIONS.runbookStartReject, incidentId]
      : [
          SLACK_ACTIONS.stepApprove,
          SLACK_ACTIONS.stepReject,
          JSON.stringify({ incident: incidentId, run: r.runbookWorkflowId, step: r.step } satisfies StepButtonValue),
        ];
  blocks.push({
    type: 'actions',
    block_id: r.kind === 'runbook_start' ? 'runbook_start_decision' : `step_decision_${r.step}`.slice(0, 255),
    elements: [
      { type: 'button', action_id: approve, text: plain('Approve'), style: 'primary', value },
      { type: 'button', action_id: reject, text: plain('Reject'), style: 'danger', value },
    ],
  });
  return blocks;
}

/** A task's first notice: the text, and a Done button while the task is open. */
export function taskNoticeBlocks(incidentId: string, text: string, task: Pick<IncidentTask, 'id' | 'status'>) {
  const blocks: unknown[] = [{ type: 'section', text: mrkdwn(text) }];
  if (task.status === 'open' || task.status === 'overdue') {
    blocks.push({
      type: 'actions',
      block_id: `task_${task.id}`.slice(0, 255),
      elements: [
        {
          type: 'button',
          action_id: SLACK_ACTIONS.taskDone,
          text: plain('Done'),
          style: 'primary',
          value: `${incidentId}|${task.id}`,
        },
      ],
    });
  }
  return blocks;
}

/** The notice once the task is closed: who closed it, and no button. */
export function closedTaskText(task: Pick<IncidentTask, 'title' | 'status' | 'completedBy'>): string {
  const what = task.status === 'not_needed' ? 'not needed' : 'done';
  return `:ballot_box_with_check: Task "${slackEscape(task.title)}" ${what}${task.completedBy ? ` (${slackName(task.completedBy)})` : ''}`;
}

/** What the resolve modal carries between opening and submission. */
export interface ResolveModalMetadata {
  id: string;
  /** where the outcome is told to the responder (ephemeral) when it takes longer than Slack waits */
  channel?: string;
}

function textInput(blockId: string, label: string, hint: string, multiline: boolean) {
  return {
    type: 'input',
    block_id: blockId,
    label: plain(label),
    hint: plain(hint),
    element: { type: 'plain_text_input', action_id: 'value', multiline, max_length: 3000 },
  };
}

/** The resolve modal: resolution, root cause and one preventive action (with its category). */
export function resolveModal(meta: ResolveModalMetadata): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: RESOLVE_MODAL,
    private_metadata: JSON.stringify(meta),
    title: plain(`Resolve ${meta.id}`.slice(0, 24)),
    submit: plain('Resolve'),
    close: plain('Cancel'),
    blocks: [
      {
        type: 'section',
        text: mrkdwn(
          'Resolving runs the recovery validation checklist first; it must pass, and the open tasks must be closed.',
        ),
      },
      textInput(RESOLVE_FIELDS.resolution, 'Resolution', 'What restored the service', true),
      textInput(RESOLVE_FIELDS.rootCause, 'Root cause', 'Why it happened', true),
      textInput(RESOLVE_FIELDS.preventiveAction, 'Preventive action', 'What keeps it from happening again', true),
      {
        type: 'input',
        block_id: RESOLVE_FIELDS.category,
        label: plain('Preventive action category'),
        element: {
          type: 'static_select',
          action_id: 'value',
          initial_option: { text: plain('process'), value: 'process' },
          options: PREVENTIVE_CATEGORIES.map((c) => ({ text: plain(c), value: c })),
        },
      },
    ],
  };
}

/** A modal with one sentence: "resolving…" while the checklist runs, or the outcome. */
export function noticeModal(id: string, text: string): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: `${RESOLVE_MODAL}_notice`,
    title: plain(`Resolve ${id}`.slice(0, 24)),
    close: plain('Close'),
    blocks: [{ type: 'section', text: mrkdwn(text) }],
  };
}

export const SLASH_HELP = [
  '*/incident* — open and steer incidents from Slack:',
  '• `/incident <p0|p1|p2|p3> <type> <title>` opens an incident (anyone in the workspace)',
  '• `/incident status INC-…` shows its status, owner and open tasks (viewer)',
  '• `/incident ack INC-…` acknowledges it: you own it (responder)',
  '• `/incident runbook INC-… approve` / `reject` decides a runbook start that waits for a responder (responder)',
  '• `/incident runbook INC-… approve <step>` / `reject <step>` decides a runbook step (admin)',
  '• `/incident help` shows this',
  'The alert’s buttons acknowledge, escalate and resolve; roles come from SLACK_ROLES.',
].join('\n');
