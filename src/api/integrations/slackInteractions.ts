/**
 * `POST /slack/interactions`: the buttons and menus of Warden's messages (block_actions) and
 * the resolve modal (view_submission). Buttons answer at once and report their outcome to the
 * clicking user with chat.postEphemeral. The modal answers within Slack's 3 seconds: a
 * refusal goes back into the modal (`response_action: errors`); a resolution whose checklist
 * is still running turns the modal into a "resolving…" notice and the outcome follows as an
 * ephemeral message.
 */
import type { FastifyReply } from 'fastify';
import {
  noticeModal,
  PREVENTIVE_CATEGORIES,
  RESOLVE_FIELDS,
  resolveModal,
  type ResolveModalMetadata,
  type StepButtonValue,
} from '../../incidents/slackBlocks';
import { RESOLVE_MODAL, SLACK_ACTIONS } from '../../incidents/templates';
import { slackError } from '../../providers';
import { decideStep, RunbookError } from '../../runbooks/client';
import {
  acknowledgeUpdate,
  addPreventiveActionUpdate,
  completeTaskUpdate,
  decideRunbookStartUpdate,
  escalateUpdate,
  INCIDENT_ID_PATTERN,
  INTERNAL_ROLES,
  LIMITS,
  recordRootCauseUpdate,
  resolveUpdate,
  type InternalRole,
  type PreventiveAction,
} from '../../shared/incidents';
import { ApiError } from '../errors';
import { readState, sendUpdate } from './incidentOps';
import type { SlackAction } from './slackAccess';
import { responder, type SlackContext } from './slackContext';

/** What Warden reads of an interaction payload. */
interface Payload {
  type?: string;
  trigger_id?: string;
  team?: { id?: string } | null;
  user?: { id?: string; username?: string; name?: string; team_id?: string };
  channel?: { id?: string };
  actions?: Array<{ action_id?: string; value?: string; selected_option?: { value?: string } }>;
  view?: {
    id?: string;
    callback_id?: string;
    private_metadata?: string;
    state?: {
      values?: Record<string, Record<string, { value?: string | null; selected_option?: { value?: string } }>>;
    };
  };
}

/** The view_submission answer Slack shows in the modal, or nothing (the modal closes). */
type ViewAnswer =
  | { response_action: 'errors'; errors: Record<string, string> }
  | { response_action: 'update'; view: Record<string, unknown> }
  | undefined;

/** How long the modal waits for the resolution before it says "resolving…" (Slack allows 3 s). */
const MODAL_WAIT_MS = 2200;
const RESOLVE_WAIT_MS = 120_000;

/** Which field of the modal a refusal concerns (the rest are about the resolution itself). */
const FIELD_OF_CODE: Record<string, string> = {
  preventive_action_required: RESOLVE_FIELDS.preventiveAction,
};

const isIncidentId = (v: unknown): v is string => typeof v === 'string' && INCIDENT_ID_PATTERN.test(v);
/** a field of Slack's JSON that should be a string (anything else reads as absent) */
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** Who sent the payload, as Slack says: the user and their workspace. */
const actorOf = (p: Payload) => ({ userId: str(p.user?.id), teamId: str(p.team?.id) ?? str(p.user?.team_id) });
const nameOf = (p: Payload) => responder(str(p.user?.id), str(p.user?.username) ?? str(p.user?.name));

function parseStepValue(value: string | undefined): StepButtonValue | undefined {
  try {
    const v = JSON.parse(value ?? '') as Partial<StepButtonValue>;
    if (isIncidentId(v.incident) && typeof v.run === 'string' && typeof v.step === 'string')
      return { incident: v.incident, run: v.run.slice(0, 200), step: v.step.slice(0, 100) };
  } catch {
    // not a value Warden wrote
  }
  return undefined;
}

export function interactionHandler(ctx: SlackContext) {
  const { app, access } = ctx;

  /** What a block action asks for, read from its action id and value (ids only, never trusted further). */
  function readAction(action: NonNullable<Payload['actions']>[number]) {
    const value = str(action.value) ?? str(action.selected_option?.value);
    switch (action.action_id) {
      case SLACK_ACTIONS.acknowledge:
      case SLACK_ACTIONS.resolve:
      case SLACK_ACTIONS.runbookStartApprove:
      case SLACK_ACTIONS.runbookStartReject:
        return isIncidentId(value) ? { id: value } : undefined;
      case SLACK_ACTIONS.escalate: {
        const [id, role] = (value ?? '').split('|');
        // a button without a role: the next role of the escalation path
        if (!isIncidentId(id)) return undefined;
        if (role !== undefined && !(INTERNAL_ROLES as readonly string[]).includes(role)) return undefined;
        return { id, role: role as InternalRole | undefined };
      }
      case SLACK_ACTIONS.taskDone: {
        const [id, taskId] = (value ?? '').split('|');
        return isIncidentId(id) && taskId ? { id, taskId: taskId.slice(0, 100) } : undefined;
      }
      case SLACK_ACTIONS.stepApprove:
      case SLACK_ACTIONS.stepReject: {
        const step = parseStepValue(value);
        return step ? { id: step.incident, step } : undefined;
      }
      default:
        return undefined;
    }
  }

  const ACTION_OF: Record<string, SlackAction> = {
    [SLACK_ACTIONS.acknowledge]: 'acknowledge',
    [SLACK_ACTIONS.escalate]: 'escalate',
    [SLACK_ACTIONS.resolve]: 'resolve',
    [SLACK_ACTIONS.runbookStartApprove]: 'decide_runbook_start',
    [SLACK_ACTIONS.runbookStartReject]: 'decide_runbook_start',
    [SLACK_ACTIONS.stepApprove]: 'decide_step',
    [SLACK_ACTIONS.stepReject]: 'decide_step',
    [SLACK_ACTIONS.taskDone]: 'complete_task',
  };

  async function blockAction(payload: Payload): Promise<void> {
    const action = Array.isArray(payload.actions) ? payload.actions[0] : undefined;
    const read = action && typeof action === 'object' ? readAction(action) : undefined;
    if (!action?.action_id || !read) return;
    const { id } = read;
    const actor = actorOf(payload);
    const tell = (text: string) => ctx.ephemeral(str(payload.channel?.id), actor.userId, text);
    const verdict = await access.authorize(actor, ACTION_OF[action.action_id]!, id);
    if (!verdict.ok) return tell(verdict.message);
    const by = nameOf(payload);
    try {
      switch (action.action_id) {
        case SLACK_ACTIONS.acknowledge:
          await sendUpdate(app, id, acknowledgeUpdate, { by });
          return tell(`You acknowledged *${id}* and own it now.`);
        case SLACK_ACTIONS.escalate: {
          const role = 'role' in read ? read.role : undefined;
          const r = await sendUpdate(app, id, escalateUpdate, {
            by,
            reason: 'escalated from Slack',
            ...(role ? { role } : {}),
          });
          const last = r.done ? r.state.escalations.at(-1) : undefined;
          return tell(`Escalated *${id}*${last ? ` to ${last.role.replace(/_/g, ' ')}` : ''}.`);
        }
        case SLACK_ACTIONS.resolve:
          return openResolveModal(payload, id);
        case SLACK_ACTIONS.runbookStartApprove:
        case SLACK_ACTIONS.runbookStartReject: {
          const approve = action.action_id === SLACK_ACTIONS.runbookStartApprove;
          await sendUpdate(app, id, decideRunbookStartUpdate, {
            by,
            approve,
            ...(verdict.role ? { role: verdict.role } : {}),
          });
          return tell(
            approve ? `Approved: *${id}*'s runbook starts now.` : `Rejected: *${id}*'s runbook will not start.`,
          );
        }
        case SLACK_ACTIONS.stepApprove:
        case SLACK_ACTIONS.stepReject: {
          const { step } = read as { step: StepButtonValue };
          const approve = action.action_id === SLACK_ACTIONS.stepApprove;
          await decideStep(ctx.runbooks, step.run, { step: step.step, by, approve });
          return tell(`${approve ? 'Approved' : 'Rejected'} step \`${step.step}\` of *${id}*'s runbook.`);
        }
        case SLACK_ACTIONS.taskDone: {
          const { taskId } = read as { taskId: string };
          await sendUpdate(app, id, completeTaskUpdate, { by, taskId, outcome: 'done' });
          return tell(`Marked task \`${taskId}\` of *${id}* done.`);
        }
      }
    } catch (err) {
      if (err instanceof ApiError || err instanceof RunbookError)
        return tell(`Could not do that on *${id}*: ${err.message} (\`${err.code}\`)`);
      throw err;
    }
  }

  async function openResolveModal(payload: Payload, id: string): Promise<void> {
    const trigger = str(payload.trigger_id);
    if (!trigger) return;
    const channel = str(payload.channel?.id);
    try {
      await app.warden.providers.slack.views.open({
        trigger_id: trigger,
        view: resolveModal({ id, ...(channel ? { channel } : {}) }) as never,
      });
    } catch (err) {
      throw slackError(err);
    }
  }

  /** The modal's fields, or the errors to show on them. */
  function modalFields(payload: Payload):
    | {
        ok: true;
        meta: ResolveModalMetadata;
        resolution: string;
        rootCause: string;
        action: string;
        category: PreventiveAction['category'];
      }
    | { ok: false; errors: Record<string, string> } {
    const values = payload.view?.state?.values ?? {};
    const text = (block: string) => str(values[block]?.value?.value)?.trim() ?? '';
    const errors: Record<string, string> = {};
    const required = (block: string, what: string) => {
      const value = text(block);
      if (!value) errors[block] = `${what} is required`;
      else if (value.length > LIMITS.text) errors[block] = `${what} is longer than ${LIMITS.text} characters`;
      return value;
    };
    const resolution = required(RESOLVE_FIELDS.resolution, 'The resolution');
    const rootCause = required(RESOLVE_FIELDS.rootCause, 'The root cause');
    const action = required(RESOLVE_FIELDS.preventiveAction, 'A preventive action');
    const category = str(values[RESOLVE_FIELDS.category]?.value?.selected_option?.value) ?? 'process';
    if (!(PREVENTIVE_CATEGORIES as readonly string[]).includes(category))
      errors[RESOLVE_FIELDS.category] = `one of ${PREVENTIVE_CATEGORIES.join(', ')}`;
    let meta: ResolveModalMetadata | undefined;
    try {
      const parsed = JSON.parse(str(payload.view?.private_metadata) ?? '') as Partial<ResolveModalMetadata> | null;
      if (isIncidentId(parsed?.id))
        meta = { id: parsed.id, ...(str(parsed.channel) ? { channel: parsed.channel } : {}) };
    } catch {
      // not a modal Warden opened
    }
    if (!meta) errors[RESOLVE_FIELDS.resolution] = 'This form does not name an incident; open it again from the alert';
    if (Object.keys(errors).length || !meta) return { ok: false, errors };
    return { ok: true, meta, resolution, rootCause, action, category: category as PreventiveAction['category'] };
  }

  /**
   * Root cause, preventive action and resolution as the workflow's updates. A resubmission
   * after a refusal records neither twice.
   */
  async function resolveFromModal(
    id: string,
    by: string,
    f: { resolution: string; rootCause: string; action: string; category: PreventiveAction['category'] },
  ) {
    const s = await readState(app, id);
    if (s.rootCause !== f.rootCause) await sendUpdate(app, id, recordRootCauseUpdate, { by, text: f.rootCause });
    if (!s.preventiveActions.some((a) => a.description === f.action))
      await sendUpdate(app, id, addPreventiveActionUpdate, { by, description: f.action, category: f.category });
    return sendUpdate(
      app,
      id,
      resolveUpdate,
      { by, resolution: f.resolution, rootCause: f.rootCause },
      RESOLVE_WAIT_MS,
    );
  }

  async function viewSubmission(payload: Payload): Promise<ViewAnswer> {
    if (typeof payload.view !== 'object' || payload.view?.callback_id !== RESOLVE_MODAL) return undefined;
    const fields = modalFields(payload);
    if (!fields.ok) return { response_action: 'errors', errors: fields.errors };
    const { id, channel } = fields.meta;
    const actor = actorOf(payload);
    const verdict = await access.authorize(actor, 'resolve', id);
    if (!verdict.ok) return { response_action: 'errors', errors: { [RESOLVE_FIELDS.resolution]: verdict.message } };
    const by = nameOf(payload);

    const work = resolveFromModal(id, by, fields);
    const quick = await Promise.race([
      work.then(
        (r) => ({ ok: r }),
        (err: unknown) => ({ err }),
      ),
      new Promise<null>((r) => setTimeout(() => r(null), MODAL_WAIT_MS)),
    ]);
    if (quick && 'err' in quick) {
      if (!(quick.err instanceof ApiError)) throw quick.err;
      const field = FIELD_OF_CODE[quick.err.code] ?? RESOLVE_FIELDS.resolution;
      return { response_action: 'errors', errors: { [field]: `${quick.err.message} (${quick.err.code})` } };
    }
    if (quick?.ok.done)
      return { response_action: 'update', view: noticeModal(id, `:large_green_circle: Resolved *${id}*.`) };
    // still running (the recovery checklist): the outcome is told when it is known
    const tell = (text: string) => ctx.ephemeral(channel, actor.userId, text);
    ctx.later(
      work.then(
        (r) =>
          tell(
            r.done
              ? `Resolved *${id}*.`
              : `Resolving *${id}*: the recovery checklist is still running; see the thread.`,
          ),
        (err: unknown) => {
          if (err instanceof ApiError) return tell(`Could not resolve *${id}*: ${err.message} (\`${err.code}\`)`);
          throw err;
        },
      ),
    );
    return {
      response_action: 'update',
      view: noticeModal(
        id,
        `:hourglass_flowing_sand: Resolving *${id}*… the recovery checklist is running. The outcome is posted in the incident thread and told to you there.`,
      ),
    };
  }

  return async (form: { get(name: string): string | null }, reply: FastifyReply) => {
    let payload: Payload;
    try {
      payload = JSON.parse(form.get('payload') ?? '') as Payload;
    } catch {
      throw new ApiError(400, 'invalid_request', '`payload` must be the JSON Slack sends');
    }
    if (typeof payload !== 'object' || payload === null)
      throw new ApiError(400, 'invalid_request', '`payload` must be the JSON Slack sends');
    if (payload.type === 'view_submission') {
      const answer = await viewSubmission(payload);
      return answer ? reply.status(200).send(answer) : reply.status(200).send();
    }
    if (payload.type === 'block_actions') ctx.later(blockAction(payload));
    return reply.status(200).send();
  };
}
