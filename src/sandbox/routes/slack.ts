import type { FastifyInstance } from 'fastify';
import type { SandboxContext } from '../context';
import type { SandboxState } from '../state';
import { applyFault, bearer, record, sendFailure, type FaultShapes, type ProviderFailure } from '../http';

const TEAM = {
  team: 'Warden Sandbox',
  team_id: 'T0SANDBOX',
  user: 'warden',
  user_id: 'U0SANDBOX',
  bot_id: 'B0SANDBOX',
};

function slackError(status: number, error: string, headers?: Record<string, string>): ProviderFailure {
  return { status, body: { ok: false, error }, headers };
}

// Slack always names a wait on 429 (the SDK refuses a 429 without one); 1 s unless the
// fault says otherwise.
const shapes: FaultShapes = {
  error: (status) =>
    status === 429 ? slackError(429, 'ratelimited', { 'Retry-After': '1' }) : slackError(status, 'service_unavailable'),
  permanent: () => slackError(200, 'channel_not_found'),
};

type Args = Record<string, unknown>;

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** The SDK form-encodes arguments and JSON-encodes nested ones (blocks); JSON bodies arrive parsed. */
function blocksOf(value: unknown): unknown {
  if (typeof value !== 'string') return value ?? null;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

/** Slack's answer for the methods Warden calls; every other method is answered `{ok: true}`. */
function answer(
  method: string,
  args: Args,
  ts: string,
  state: SandboxState,
): { body: Record<string, unknown> } | { error: string } {
  const channel = str(args.channel);
  const text = str(args.text);
  const blocks = blocksOf(args.blocks);
  const message = {
    type: 'message',
    text: text ?? '',
    user: TEAM.user_id,
    bot_id: TEAM.bot_id,
    ts,
    blocks: blocks ?? undefined,
    thread_ts: str(args.thread_ts) ?? undefined,
  };
  switch (method) {
    case 'auth.test':
      return { body: { ok: true, url: 'https://warden-sandbox.slack.com/', ...TEAM, is_enterprise_install: false } };
    case 'chat.postMessage':
      if (!channel) return { error: 'channel_not_found' };
      if (!text && !blocks && !args.attachments) return { error: 'no_text' };
      return { body: { ok: true, channel, ts, message } };
    case 'chat.update':
      if (!channel) return { error: 'channel_not_found' };
      if (!str(args.ts)) return { error: 'message_not_found' };
      return { body: { ok: true, channel, ts, text: text ?? '', message } };
    case 'chat.postEphemeral':
      if (!channel) return { error: 'channel_not_found' };
      if (!str(args.user)) return { error: 'user_not_found' };
      return { body: { ok: true, message_ts: ts } };
    case 'views.open': {
      // a trigger id is good for one modal, for 3 seconds; the sandbox only insists on one
      const view = blocksOf(args.view);
      if (!str(args.trigger_id)) return { error: 'invalid_trigger_id' };
      if (!view || typeof view !== 'object') return { error: 'invalid_arguments' };
      return { body: { ok: true, view: { id: `V${ts.replace('.', '')}`, ...(view as object) } } };
    }
    case 'views.update': {
      const view = blocksOf(args.view);
      if (!str(args.view_id) && !str(args.external_id)) return { error: 'not_found' };
      if (!view || typeof view !== 'object') return { error: 'invalid_arguments' };
      return { body: { ok: true, view: { id: str(args.view_id), ...(view as object) } } };
    }
    case 'usergroups.users.list': {
      const group = str(args.usergroup);
      const users = group ? state.slackUsergroup(group) : undefined;
      if (!users) return { error: 'no_such_subteam' };
      return { body: { ok: true, users } };
    }
    default:
      return { body: { ok: true } };
  }
}

/**
 * POST /slack/api/:method as @slack/web-api sends it with `slackApiUrl: <sandbox>/slack/api/`.
 * Every accepted call is recorded for GET /sandbox/slack. Slack answers application errors
 * with HTTP 200 and `ok: false`, which the SDK raises as a platform error.
 */
export async function slackRoutes(app: FastifyInstance, { state }: SandboxContext): Promise<void> {
  app.post<{ Params: { method: string } }>('/slack/api/:method', async (request, reply) => {
    const args: Args = typeof request.body === 'object' && request.body !== null ? (request.body as Args) : {};
    const method = request.params.method;
    if (!bearer(request) && !str(args.token)) {
      record(state, 'slack', request, 'rejected', 200, null);
      return sendFailure(reply, slackError(200, 'not_authed'));
    }

    if (await applyFault(state, 'slack', request, reply, shapes, null)) return reply;

    // chat.update keeps the message's ts; everything else gets a fresh one.
    const ts = method === 'chat.update' ? (str(args.ts) ?? state.nextSlackTs()) : state.nextSlackTs();
    const result = answer(method, args, ts, state);
    if ('error' in result) {
      record(state, 'slack', request, 'rejected', 200, null);
      return sendFailure(reply, slackError(200, result.error));
    }
    state.addSlackCall({
      method,
      channel: str(args.channel),
      text: str(args.text),
      blocks: blocksOf(args.blocks),
      thread_ts: str(args.thread_ts),
      ts,
      ...(method.startsWith('views.')
        ? { view: blocksOf(args.view), trigger_id: str(args.trigger_id), view_id: str(args.view_id) }
        : {}),
      ...(method === 'chat.postEphemeral' ? { user: str(args.user) } : {}),
    });
    record(state, 'slack', request, 'accepted', 200, null);
    return reply.code(200).send(result.body);
  });
}
