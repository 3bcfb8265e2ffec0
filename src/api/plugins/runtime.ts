import fp from 'fastify-plugin';
import type { Runtime } from '../../runtime';

declare module 'fastify' {
  interface FastifyInstance {
    /** the process's open resources: config, db, Temporal client, providers, logger, metrics */
    warden: Runtime;
  }
}

/** Decorates the app with the runtime; the runtime's owner (server.ts, tests) closes it. */
export default fp<{ runtime: Runtime }>(
  async (app, { runtime }) => {
    app.decorate('warden', runtime);
  },
  { name: 'warden-runtime' },
);
