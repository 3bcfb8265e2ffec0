/**
 * Slack on the admin server: `POST /slack/commands` (`/incident`, slackCommands.ts) and
 * `POST /slack/interactions` (buttons, menus and the resolve modal, slackInteractions.ts).
 * Every request is verified first (slackAuth.ts: signature, timestamp, replay); who may do what
 * is slackAccess.ts: the configured workspace only, and Warden's roles for Slack users.
 */
import type { FastifyPluginAsync } from 'fastify';
import { commandHandler } from './slackCommands';
import { slackVerifier } from './slackAuth';
import { createSlackContext } from './slackContext';
import { interactionHandler } from './slackInteractions';

export { parseIncidentCommand, parseSlashCommand } from './slackCommands';

interface Form {
  get(name: string): string | null;
}

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

  app.post('/slack/commands', async (request) => command(request.body as Form));
  app.post('/slack/interactions', async (request, reply) => interaction(request.body as Form, reply));
};

export default slack;
