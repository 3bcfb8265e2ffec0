/**
 * `/incident`: open an incident (`/incident <p0..p3> <type> <title>`, anyone in the workspace),
 * or `help`, `status INC-…`, `ack INC-…`, `runbook INC-… approve|reject [<step>]`. Slack wants
 * an answer within 3 seconds: opening answers with the new incident's id when the start takes
 * under 2 s and otherwise says it is on its way; the others answer with their outcome.
 */
import { SLASH_HELP } from '../../incidents/slackBlocks';
import { decideStep, RunbookError } from '../../runbooks/client';
import { statusLabel } from '../../shared/format';
import {
  acknowledgeUpdate,
  decideRunbookStartUpdate,
  INCIDENT_ID_PATTERN,
  INCIDENT_TYPES,
  LIMITS,
  SEVERITIES,
  type IncidentType,
  type Severity,
} from '../../shared/incidents';
import { roleAtLeast, type Role } from '../../shared/roles';
import { ApiError } from '../errors';
import { readState, sendUpdate, startIncident } from './incidentOps';
import type { SlackAction } from './slackAccess';
import { responder, type SlackContext } from './slackContext';

const USAGE =
  'Usage: `/incident <p0|p1|p2|p3> <type> <title>`, type one of ' +
  INCIDENT_TYPES.map((t) => `\`${t}\``).join(', ') +
  '; `/incident help` for the other commands';
const QUICK_MS = 2000;
const STEP = /^[a-z][a-z0-9_]{0,63}$/;

export type SlashCommand =
  | { kind: 'open'; severity: Severity; type: IncidentType; title: string }
  | { kind: 'help' }
  | { kind: 'status' | 'ack'; id: string }
  | { kind: 'runbook'; id: string; approve: boolean; step?: string };

export function parseIncidentCommand(
  text: string,
): { severity: Severity; type: IncidentType; title: string } | { error: string } {
  const [rawSeverity = '', rawType = '', ...rest] = text.trim().split(/\s+/);
  const severity = rawSeverity.toUpperCase() as Severity;
  if (!(SEVERITIES as readonly string[]).includes(severity))
    return { error: `Unknown severity \`${rawSeverity || '(none)'}\`. ${USAGE}` };
  const type = rawType.toLowerCase() as IncidentType;
  if (!(INCIDENT_TYPES as readonly string[]).includes(type))
    return { error: `Unknown incident type \`${rawType || '(none)'}\`. ${USAGE}` };
  const title = rest.join(' ').trim();
  if (!title) return { error: `A title is required. ${USAGE}` };
  if (title.length > LIMITS.title) return { error: `The title is longer than ${LIMITS.title} characters.` };
  return { severity, type, title };
}

/** Every form of `/incident`, or the reason the text is none of them. */
export function parseSlashCommand(text: string): SlashCommand | { error: string } {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const verb = (words[0] ?? '').toLowerCase();
  if (verb === '' || verb === 'help') return { kind: 'help' };
  if (!['status', 'ack', 'runbook'].includes(verb)) {
    const open = parseIncidentCommand(text);
    return 'error' in open ? open : { kind: 'open', ...open };
  }
  const id = (words[1] ?? '').toUpperCase();
  if (!INCIDENT_ID_PATTERN.test(id))
    return { error: `\`/incident ${verb}\` needs an incident id like \`INC-2026-01-15-01\`. ${USAGE}` };
  if (verb === 'status' || verb === 'ack') {
    if (words.length > 2) return { error: `\`/incident ${verb} ${id}\` takes nothing more.` };
    return { kind: verb, id };
  }
  const decision = (words[2] ?? '').toLowerCase();
  const step = words[3];
  if ((decision !== 'approve' && decision !== 'reject') || words.length > 4 || (step && !STEP.test(step)))
    return { error: `Usage: \`/incident runbook ${id} approve|reject [<step>]\` (without a step: the runbook start)` };
  return { kind: 'runbook', id, approve: decision === 'approve', ...(step ? { step } : {}) };
}

interface Form {
  get(name: string): string | null;
}

type Answer = { response_type: 'ephemeral'; text: string };
const say = (text: string): Answer => ({ response_type: 'ephemeral', text });

const ACTION_OF: Record<SlashCommand['kind'], SlackAction> = {
  open: 'open',
  help: 'help',
  status: 'status',
  ack: 'acknowledge',
  runbook: 'decide_runbook_start',
};

export function commandHandler(ctx: SlackContext) {
  const { app, access } = ctx;
  const failure = (id: string, err: unknown): Answer => {
    if (err instanceof ApiError || err instanceof RunbookError)
      return say(`Could not do that on *${id}*: ${err.message} (\`${err instanceof ApiError ? err.code : err.code}\`)`);
    throw err;
  };

  async function open(
    form: Form,
    parsed: Extract<SlashCommand, { kind: 'open' }>,
    gated: boolean,
    role: Role | undefined,
  ): Promise<Answer> {
    const user = form.get('user_id');
    const { kind: _kind, ...incident } = parsed;
    const starting = startIncident(app, {
      ...incident,
      source: 'slack',
      openedBy: responder(user, form.get('user_name')),
      // its runbook runs on this authority (a gated one on its approver's)
      ...(role ? { openedByRole: role } : {}),
      ...(gated ? { runbookNeedsApproval: true } : {}),
    });
    const waits = gated ? ' Its runbook waits for a responder’s approval (posted in the thread).' : '';
    const quick = await Promise.race([
      starting.then(
        (r) => ({ ok: r }),
        (err: unknown) => ({ err }),
      ),
      new Promise<null>((r) => setTimeout(() => r(null), QUICK_MS)),
    ]);
    if (quick && 'ok' in quick)
      return say(
        `Opened *${quick.ok.id}* (${parsed.severity} ${parsed.type}). The alert is posted in the incident channel.${waits}`,
      );
    if (quick && 'err' in quick) {
      app.log.warn({ err: { name: (quick.err as Error).name } }, 'slash command could not open an incident');
      return say('Could not open the incident right now; try again or use the admin API.');
    }
    ctx.later(
      starting.then(
        (r) =>
          ctx.ephemeral(form.get('channel_id'), user, `Opened *${r.id}* (${parsed.severity} ${parsed.type}).${waits}`),
        () =>
          ctx.ephemeral(form.get('channel_id'), user, 'Could not open the incident; try again or use the admin API.'),
      ),
    );
    return say(`Opening a ${parsed.severity} ${parsed.type} incident…`);
  }

  async function status(id: string): Promise<Answer> {
    const s = await readState(app, id);
    const open = s.tasks.filter((t) => t.status === 'open' || t.status === 'overdue');
    return say(
      [
        `*${s.id || id}* ${s.severity} ${s.type}: ${s.title}`,
        `Status: ${statusLabel(s.status)} · Owner: ${s.owner ?? 'nobody yet'}`,
        s.runbook ? `Runbook: ${s.runbook.workflowType} ${s.runbook.status}` : undefined,
        s.runbookGate?.status === 'waiting' ? 'Runbook: waiting for a responder’s approval' : undefined,
        open.length ? `Open tasks: ${open.map((t) => `${t.title} (due ${t.dueAt})`).join('; ')}` : 'No open tasks',
      ]
        .filter(Boolean)
        .join('\n'),
    );
  }

  async function runbook(id: string, by: string, approve: boolean, step: string): Promise<Answer> {
    const s = await readState(app, id);
    if (!s.runbook) return say(`*${id}* has no runbook run to decide on.`);
    await decideStep(ctx.runbooks, s.runbook.workflowId, { step, by, approve });
    return say(`${approve ? 'Approved' : 'Rejected'} step \`${step}\` of *${id}*'s runbook.`);
  }

  return async (form: Form): Promise<Answer> => {
    if (form.get('command') !== '/incident') return say(`Unknown command. ${USAGE}`);
    const parsed = parseSlashCommand(form.get('text') ?? '');
    if ('error' in parsed) return say(parsed.error);
    const actor = { userId: form.get('user_id') ?? undefined, teamId: form.get('team_id') ?? undefined };
    const id = 'id' in parsed ? parsed.id : undefined;
    const action = parsed.kind === 'runbook' && parsed.step ? 'decide_step' : ACTION_OF[parsed.kind];
    const verdict = await access.authorize(actor, action, id);
    if (!verdict.ok) return say(verdict.message);
    const by = responder(actor.userId, form.get('user_name'));

    switch (parsed.kind) {
      case 'help':
        return say(SLASH_HELP);
      case 'open': {
        const { approvalSeverity } = app.warden.config.providers.slack;
        const gated =
          SEVERITIES.indexOf(parsed.severity) <= SEVERITIES.indexOf(approvalSeverity) &&
          !roleAtLeast(verdict.role, 'responder');
        return open(form, parsed, gated, verdict.role);
      }
      case 'status':
        return status(parsed.id).catch((err: unknown) => failure(parsed.id, err));
      case 'ack':
        return sendUpdate(app, parsed.id, acknowledgeUpdate, { by }, QUICK_MS).then(
          () => say(`You acknowledged *${parsed.id}* and own it now.`),
          (err: unknown) => failure(parsed.id, err),
        );
      case 'runbook':
        if (parsed.step)
          return runbook(parsed.id, by, parsed.approve, parsed.step).catch((err: unknown) => failure(parsed.id, err));
        return sendUpdate(
          app,
          parsed.id,
          decideRunbookStartUpdate,
          { by, approve: parsed.approve, ...(verdict.role ? { role: verdict.role } : {}) },
          QUICK_MS,
        ).then(
          () =>
            say(
              parsed.approve
                ? `Approved: *${parsed.id}*'s runbook starts now.`
                : `Rejected: *${parsed.id}*'s runbook will not start.`,
            ),
          (err: unknown) => failure(parsed.id, err),
        );
    }
  };
}
