/**
 * The admin server (port 9090): probes, then everything under /admin/api/v1 behind the
 * admin bearer token. Integrations with their own authentication (Slack signatures,
 * Alertmanager token, provider callbacks, codec) register beside the admin scope.
 */
import type { FastifyPluginAsync } from 'fastify';
import integrations from '../integrations';
import { requireBearer } from '../plugins/bearerAuth';
import audit from './audit';
import blocklist from './blocklist';
import delivery from './delivery';
import database from './database';
import health from './health';
import incidents from './incidents';
import keys from './keys';
import ratelimits from './ratelimits';
import runbooks from './runbooks';
import users from './users';

const adminRoutes: FastifyPluginAsync = async (app) => {
  await app.register(health);
  await app.register(integrations);

  await app.register(
    async (admin) => {
      const auth = requireBearer(() => app.warden.config.adminToken);
      admin.addHook('onRequest', auth);
      // unknown admin paths answer 401 too without a token: no probing which routes exist
      admin.setNotFoundHandler({ preHandler: auth }, async (request, reply) =>
        reply
          .status(404)
          .send({ error: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` }),
      );
      // admin feature route plugins are registered here
      await admin.register(keys);
      await admin.register(blocklist);
      await admin.register(ratelimits);
      await admin.register(audit);
      await admin.register(users);
      await admin.register(incidents);
      await admin.register(runbooks);
      await admin.register(delivery);
      await admin.register(database);
    },
    { prefix: '/admin/api/v1' },
  );
};

export default adminRoutes;
