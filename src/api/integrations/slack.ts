/**
 * Slack on the admin server: `POST /slack/commands` (`/incident`, slackCommands.ts) and
 * `POST /slack/interactions` (buttons, menus and the resolve modal, slackInteractions.ts).
 * Every request is verified first (slackAuth.ts: signature, timestamp, replay); who may do what
 * is slackAccess.ts: the configured workspace only, and Warden's roles for Slack users.
 */
import type { FastifyPluginAsync } from 'fastify';
import { ErrorBody } from '../errors';
import { commandHandler } from './slackCommands';
import { slackVerifier } from './slackAuth';
import { createSlackContext } from './slackContext';
import { interactionHandler } from './slackInteractions';

export { parseIncidentCommand, parseSlashCommand } from './slackCommands';

interface Form {
  get(name: string): string | null;
}

const text = (description: string) => ({ type: 'string', description }) as const;

/**
 * Slack's form posts, for the document: any field is accepted (Slack adds fields), the
 * handlers read what they need. Only a form is validated, and a form always passes (the
 * parser's URLSearchParams has no own fields); the signature is checked right after.
 */
const slackForm = (description: string, fields: Record<string, ReturnType<typeof text>>) => ({
  content: {
    'application/x-www-form-urlencoded': {
      schema: { type: 'object', description, properties: fields, additionalProperties: true },
    },
  },
});

const refusals = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 415: ErrorBody, 503: ErrorBody };

const commandSchema = {
  summary: 'The `/incident` slash command',
  body: slackForm('A slash command', {
    command: text('`/incident`'),
    text: text('what follows the command: `p1 provider_outage SMS down`, `status INC-…`, `help`…'),
    user_id: text('who typed it'),
    user_name: text('their name'),
    team_id: text('the workspace; must be SLACK_TEAM_ID'),
    channel_id: text('where'),
    response_url: text("Slack's URL for later answers"),
    trigger_id: text('for opening a modal'),
  }),
  response: {
    200: {
      type: 'object',
      description: 'An ephemeral answer to whoever typed the command',
      required: ['response_type', 'text'],
      properties: { response_type: { type: 'string', enum: ['ephemeral'] }, text: { type: 'string' } },
    },
    ...refusals,
  },
} as const;

const interactionSchema = {
  summary: 'Buttons, menus and the resolve modal',
  body: slackForm('An interaction', {
    payload: text('JSON: a block_actions or view_submission payload'),
  }),
  response: {
    200: {
      type: 'object',
      description: "Empty; a modal's submission may get `response_action` (errors, or an updated view)",
      additionalProperties: true,
    },
    ...refusals,
  },
} as const;

const slack: FastifyPluginAsync = async (app) => {
  // Signatures are over the exact bytes Slack sent, so this plugin (and only this plugin)
  // keeps the raw form body next to the parsed one.
  app.removeContentTypeParser('application/x-www-form-urlencoded');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
    request.slackRawBody = body as string;
    done(null, new URLSearchParams(body as string));
  });
  app.addHook('preHandler', slackVerifier(app));

  const ctx = createSlackContext(app);
  const command = commandHandler(ctx);
  const interaction = interactionHandler(ctx);

  app.post('/slack/commands', { schema: commandSchema }, async (request) => command(request.body as Form));
  app.post('/slack/interactions', { schema: interactionSchema }, async (request, reply) =>
    interaction(request.body as Form, reply),
  );
};

export default slack;
