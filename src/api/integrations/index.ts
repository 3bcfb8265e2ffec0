/**
 * Integrations on the admin server with their own authentication, beside (not inside) the
 * bearer-protected /admin/api/v1 scope: Slack (request signatures) and Alertmanager (its own
 * bearer token). Each is its own encapsulated plugin: Slack's raw-body parser stays in Slack.
 */
import type { FastifyPluginAsync } from 'fastify';
import alertmanager from './alertmanager';
import slack from './slack';

const integrations: FastifyPluginAsync = async (app) => {
  await app.register(slack);
  await app.register(alertmanager);
};

export default integrations;
