/**
 * Who may do what from Slack. A signed request proves it came from Slack, not who sent it may
 * act: the request must come from the one configured workspace (SLACK_TEAM_ID), and the
 * Slack user must hold the role the action needs (SLACK_ROLES maps users and user groups to
 * Warden's roles; a group's members are read with usergroups.users.list and kept for a
 * minute). Raising the alarm is never gated: anyone in the workspace may open an incident.
 * Every refusal is audited (`identity.access.refused`) with the Slack ids, never a secret.
 */
import type { FastifyInstance } from 'fastify';
import { AuditEventType, recordAudit } from '../../auth/audit';
import { INCIDENT_ID_PATTERN } from '../../shared/incidents';
import { ROLES, roleAtLeast, type Role } from '../../shared/roles';

export const SLACK_PERMISSIONS = {
  open: null,
  help: null,
  status: 'viewer',
  acknowledge: 'responder',
  escalate: 'responder',
  note: 'responder',
  resolve: 'responder',
  complete_task: 'responder',
  decide_runbook_start: 'responder',
  decide_step: 'admin',
} as const satisfies Record<string, Role | null>;
export type SlackAction = keyof typeof SLACK_PERMISSIONS;

const DOING: Record<SlackAction, string> = {
  open: 'open an incident',
  help: 'read the help',
  status: 'read an incident',
  acknowledge: 'acknowledge an incident',
  escalate: 'escalate an incident',
  note: 'add a note',
  resolve: 'resolve an incident',
  complete_task: 'complete a task',
  decide_runbook_start: 'approve or reject a runbook start',
  decide_step: 'approve or reject a runbook step',
};

/** Who sent a Slack request, as the request says. */
export interface SlackActor {
  userId?: string;
  teamId?: string;
}

export type AccessVerdict =
  { ok: true; role: Role | undefined } | { ok: false; code: 'forbidden' | 'wrong_team'; message: string };

const GROUP_TTL_MS = 60_000;
/** a group whose members could not be read is asked again this soon */
const GROUP_RETRY_MS = 5_000;

export interface SlackAccess {
  roleOf(userId: string | undefined): Promise<Role | undefined>;
  /** The verdict for `action` (on `incidentId`); a refusal is audited before it is returned. */
  authorize(actor: SlackActor, action: SlackAction, incidentId?: string): Promise<AccessVerdict>;
}

export function slackAccess(app: FastifyInstance): SlackAccess {
  const { config, db, logger, providers } = app.warden;
  const { roles, teamId } = config.providers.slack;
  const groups = new Map<string, { members: Set<string>; until: number }>();

  async function members(group: string): Promise<Set<string>> {
    const cached = groups.get(group);
    if (cached && cached.until > Date.now()) return cached.members;
    try {
      const result = await providers.slack.usergroups.users.list({ usergroup: group });
      const found = new Set(result.users ?? []);
      groups.set(group, { members: found, until: Date.now() + GROUP_TTL_MS });
      return found;
    } catch (err) {
      // fail closed: nobody holds a role through a group Slack would not list
      app.log.warn({ err: { name: (err as Error).name, message: (err as Error).message }, group }, 'user group unread');
      const empty = new Set<string>();
      groups.set(group, { members: empty, until: Date.now() + GROUP_RETRY_MS });
      return empty;
    }
  }

  async function roleOf(userId: string | undefined): Promise<Role | undefined> {
    if (!userId) return undefined;
    // the highest of the user's own role and those of their groups (a group that cannot raise it is not asked)
    let best: Role | undefined = roles.users[userId];
    for (const [group, role] of Object.entries(roles.groups)) {
      if (best && ROLES.indexOf(role) <= ROLES.indexOf(best)) continue;
      if ((await members(group)).has(userId)) best = role;
    }
    return best;
  }

  async function refuse(
    actor: SlackActor,
    action: SlackAction,
    incidentId: string | undefined,
    reason: 'team' | 'role',
    details: Record<string, unknown>,
  ): Promise<void> {
    const incident = incidentId && INCIDENT_ID_PATTERN.test(incidentId) ? incidentId : undefined;
    await recordAudit(db.writer, logger, {
      type: AuditEventType.accessRefused,
      outcome: 'refused',
      reason,
      incidentId: incident,
      details: {
        via: 'slack',
        slack_user: actor.userId?.slice(0, 32) ?? null,
        team_id: actor.teamId?.slice(0, 32) ?? null,
        action,
        incident_id: incident ?? null,
        ...details,
      },
    }).catch((err: unknown) => app.log.warn({ err: { name: (err as Error).name } }, 'refusal not audited'));
  }

  return {
    roleOf,
    async authorize(actor, action, incidentId) {
      if (!teamId || actor.teamId !== teamId) {
        await refuse(actor, action, incidentId, 'team', {});
        return {
          ok: false,
          code: 'wrong_team',
          message: '`wrong_team`: this Warden accepts requests from its own Slack workspace only.',
        };
      }
      const needed = SLACK_PERMISSIONS[action];
      const role = await roleOf(actor.userId);
      if (needed === null || roleAtLeast(role, needed)) return { ok: true, role };
      await refuse(actor, action, incidentId, 'role', { needed, role: role ?? null });
      return {
        ok: false,
        code: 'forbidden',
        message: `\`forbidden\`: to ${DOING[action]} from Slack you need the *${needed}* role; you have ${role ? `the ${role} role` : 'no role'}. An admin grants roles with SLACK_ROLES.`,
      };
    },
  };
}
