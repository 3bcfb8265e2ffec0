/**
 * The admin server (port 9090): probes, then everything under /admin/api/v1 behind an
 * operator's bearer token and the role each route needs (plugins/operatorAuth.ts).
 * Integrations with their own authentication (Slack signatures, Alertmanager token, provider
 * callbacks, codec) register beside the admin scope, or on a listener of their own.
 */
import type { FastifyPluginAsync } from 'fastify';
import integrations from '../integrations';
import { authenticateOperator, authorizeOperator } from '../plugins/operatorAuth';
import apps from './apps';
import audit from './audit';
import blocklist from './blocklist';
import delivery from './delivery';
import database from './database';
import health from './health';
import incidentGate from './incidentGate';
import incidents from './incidents';
import keys from './keys';
import operators from './operators';
import privacy from './privacy';
import ratelimits from './ratelimits';
import runbooks from './runbooks';
import smsPrefixes from './smsPrefixes';
import users from './users';

const adminRoutes: FastifyPluginAsync = async (app) => {
  await app.register(health);
  if (app.warden.config.ports.integrations === undefined) await app.register(integrations);

  await app.register(
    async (admin) => {
      admin.addHook('onRequest', authenticateOperator);
      admin.addHook('preValidation', authorizeOperator);
      // unknown admin paths answer 401 too without a token: no probing which routes exist
      admin.setNotFoundHandler({ preHandler: authenticateOperator }, async (request, reply) =>
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
      await admin.register(privacy);
      await admin.register(incidents);
      await admin.register(incidentGate);
      await admin.register(runbooks);
      await admin.register(delivery);
      await admin.register(smsPrefixes);
      await admin.register(database);
      await admin.register(operators);
      await admin.register(apps);
    },
    { prefix: '/admin/api/v1' },
  );
};

export default adminRoutes;
