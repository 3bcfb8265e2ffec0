import type { FastifyPluginAsync } from 'fastify';
import { requireBearer } from '../plugins/bearerAuth';
import health from './health';

/**
 * The admin server (port 9090): probes, then everything under /admin/api/v1 behind the
 * admin bearer token. Integrations with their own authentication (Slack signatures,
 * Alertmanager token, provider callbacks, codec) register beside the admin scope.
 */
const adminRoutes: FastifyPluginAsync = async (app) => {
  await app.register(health);

  await app.register(
    async (admin) => {
      admin.addHook('onRequest', requireBearer(() => app.warden.config.adminToken));
      // admin feature route plugins are registered here
    },
    { prefix: '/admin/api/v1' },
  );
};

export default adminRoutes;
