/**
 * What the Slack command and interaction handlers share: the access checks, the runbook
 * client's dependencies, ephemeral answers, and the follow-up work that outlives Slack's
 * 3-second answer (the app waits for it on close).
 */
import type { FastifyInstance } from 'fastify';
import { slackError } from '../../providers';
import type { RunbookDeps } from '../../runbooks/client';
import { slackAccess, type SlackAccess } from './slackAccess';

export interface SlackContext {
  app: FastifyInstance;
  access: SlackAccess;
  runbooks: RunbookDeps;
  /** runs `work` after the answer; a failure is logged (name and message only) */
  later(work: Promise<unknown>): void;
  /** a message only `user` sees, in `channel` */
  ephemeral(channel: string | null | undefined, user: string | null | undefined, text: string): Promise<void>;
}

/** A responder as the workflow records them: a Slack mention that reads well elsewhere too. */
export const responder = (id: string | null | undefined, name: string | null | undefined) =>
  id && /^[UW][A-Z0-9]+$/.test(id) ? `<@${id}${name && /^[\w.-]{1,80}$/.test(name) ? `|${name}` : ''}>` : 'slack-user';

export function createSlackContext(app: FastifyInstance): SlackContext {
  const pending = new Set<Promise<unknown>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...pending]);
  });
  const { warden } = app;
  return {
    app,
    access: slackAccess(app),
    runbooks: {
      client: warden.temporal.client,
      db: warden.db,
      taskQueue: warden.config.temporal.taskQueue,
      blockLimits: warden.config.blockLimits,
    },
    later(work) {
      const tracked = work.catch((err: unknown) =>
        app.log.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'slack follow-up failed'),
      );
      pending.add(tracked);
      void tracked.finally(() => pending.delete(tracked));
    },
    async ephemeral(channel, user, text) {
      if (!channel || !user) return;
      try {
        await warden.providers.slack.chat.postEphemeral({ channel, user, text });
      } catch (err) {
        throw slackError(err);
      }
    },
  };
}
