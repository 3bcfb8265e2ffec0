/**
 * Slack's slash command and buttons: `POST /slack/commands` (`/incident <p0..p3> <type>
 * <title>`) and `POST /slack/interactions` (Acknowledge / Escalate / Resolve on the alert).
 * Slack wants an answer within 3 seconds: the command answers with the new incident's id
 * when the start takes under 2 s and otherwise says it is on its way; buttons answer at once
 * and report their outcome to the clicking user with chat.postEphemeral.
 */
import type { FastifyPluginAsync } from 'fastify';
import { SLACK_ACTIONS } from '../../incidents/templates';
import { slackError } from '../../providers';
import {
  acknowledgeUpdate,
  escalateUpdate,
  INCIDENT_TYPES,
  LIMITS,
  resolveUpdate,
  SEVERITIES,
  type IncidentType,
  type Severity,
} from '../../shared/incidents';
import { ApiError } from '../errors';
import { sendUpdate, startIncident } from './incidentOps';
import { slackVerifier } from './slackAuth';

const USAGE =
  'Usage: `/incident <p0|p1|p2|p3> <type> <title>`, type one of ' + INCIDENT_TYPES.map((t) => `\`${t}\``).join(', ');
const QUICK_MS = 2000;

interface Form {
  get(name: string): string | null;
}

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

/** A responder as the workflow records them: a Slack mention that reads well elsewhere too. */
const responder = (id: string | null | undefined, name: string | null | undefined) =>
  id && /^[UW][A-Z0-9]+$/.test(id) ? `<@${id}${name && /^[\w.-]{1,80}$/.test(name) ? `|${name}` : ''}>` : 'slack-user';

const slack: FastifyPluginAsync = async (app) => {
  // Signatures are over the exact bytes Slack sent, so this plugin (and only this plugin)
  // keeps the raw form body next to the parsed one.
  app.removeContentTypeParser('application/x-www-form-urlencoded');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
    request.slackRawBody = body as string;
    done(null, new URLSearchParams(body as string));
  });
  app.addHook('preHandler', slackVerifier(app));

  // work that outlives the 3-second answer; the app waits for it on close
  const pending = new Set<Promise<unknown>>();
  const later = (work: Promise<unknown>) => {
    const tracked = work.catch((err: unknown) =>
      app.log.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'slack follow-up failed'),
    );
    pending.add(tracked);
    void tracked.finally(() => pending.delete(tracked));
  };
  app.addHook('onClose', async () => {
    await Promise.allSettled([...pending]);
  });

  const ephemeral = async (channel: string | null | undefined, user: string | null | undefined, text: string) => {
    if (!channel || !user) return;
    try {
      await app.warden.providers.slack.chat.postEphemeral({ channel, user, text });
    } catch (err) {
      throw slackError(err);
    }
  };

  app.post('/slack/commands', async (request) => {
    const form = request.body as Form;
    if (form.get('command') !== '/incident') return { response_type: 'ephemeral', text: `Unknown command. ${USAGE}` };
    const parsed = parseIncidentCommand(form.get('text') ?? '');
    if ('error' in parsed) return { response_type: 'ephemeral', text: parsed.error };
    const user = form.get('user_id');
    const starting = startIncident(app, {
      ...parsed,
      source: 'slack',
      openedBy: responder(user, form.get('user_name')),
    });
    const quick = await Promise.race([
      starting.then(
        (r) => ({ ok: r }),
        (err: unknown) => ({ err }),
      ),
      new Promise<null>((r) => setTimeout(() => r(null), QUICK_MS)),
    ]);
    if (quick && 'ok' in quick) {
      return {
        response_type: 'ephemeral',
        text: `Opened *${quick.ok.id}* (${parsed.severity} ${parsed.type}). The alert is posted in the incident channel.`,
      };
    }
    if (quick && 'err' in quick) {
      request.log.warn({ err: { name: (quick.err as Error).name } }, 'slash command could not open an incident');
      return {
        response_type: 'ephemeral',
        text: 'Could not open the incident right now; try again or use the admin API.',
      };
    }
    later(
      starting.then(
        (r) => ephemeral(form.get('channel_id'), user, `Opened *${r.id}* (${parsed.severity} ${parsed.type}).`),
        () => ephemeral(form.get('channel_id'), user, 'Could not open the incident; try again or use the admin API.'),
      ),
    );
    return { response_type: 'ephemeral', text: `Opening a ${parsed.severity} ${parsed.type} incident…` };
  });

  app.post('/slack/interactions', async (request, reply) => {
    let payload: {
      type?: string;
      user?: { id?: string; username?: string; name?: string };
      channel?: { id?: string };
      actions?: Array<{ action_id?: string; value?: string }>;
    };
    try {
      payload = JSON.parse((request.body as Form).get('payload') ?? '') as typeof payload;
    } catch {
      throw new ApiError(400, 'invalid_request', '`payload` must be the JSON Slack sends');
    }
    const action = payload.actions?.[0];
    if (payload.type !== 'block_actions' || !action?.action_id || !action.value) return reply.status(200).send();
    const by = responder(payload.user?.id, payload.user?.username ?? payload.user?.name);
    const id = action.value;
    const tell = (text: string) => ephemeral(payload.channel?.id, payload.user?.id, text);
    const run = async (): Promise<void> => {
      try {
        switch (action.action_id) {
          case SLACK_ACTIONS.acknowledge:
            await sendUpdate(app, id, acknowledgeUpdate, { by });
            return tell(`You acknowledged *${id}* and own it now.`);
          case SLACK_ACTIONS.escalate: {
            const r = await sendUpdate(app, id, escalateUpdate, { by, reason: 'escalated from Slack' });
            const last = r.done ? r.state.escalations.at(-1) : undefined;
            return tell(`Escalated *${id}*${last ? ` to ${last.role.replace(/_/g, ' ')}` : ''}.`);
          }
          case SLACK_ACTIONS.resolve: {
            const r = await sendUpdate(
              app,
              id,
              resolveUpdate,
              { by, resolution: `Resolved from Slack by ${by}` },
              60_000,
            );
            return tell(r.done ? `Resolved *${id}*.` : `Resolving *${id}*: the recovery checklist is still running.`);
          }
          default:
            return;
        }
      } catch (err) {
        if (err instanceof ApiError) return tell(`Could not do that on *${id}*: ${err.message}`);
        throw err;
      }
    };
    later(run());
    return reply.status(200).send();
  });
};

export default slack;
