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
      const auth = requireBearer(() => app.warden.config.adminToken);
      admin.addHook('onRequest', auth);
      // unknown admin paths answer 401 too without a token: no probing which routes exist
      admin.setNotFoundHandler({ preHandler: auth }, async (request, reply) =>
        reply.status(404).send({ error: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` }),
      );
      // admin feature route plugins are registered here
    },
    { prefix: '/admin/api/v1' },
  );
};

export default adminRoutes;
