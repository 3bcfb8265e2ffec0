/**
 * The public API (browser-facing, port 8080). Each feature registers its routes here, one
 * plugin per file, under /browser/api/v1.
 */
import type { FastifyPluginAsync } from 'fastify';
import authMagicLink from './authMagicLink';
import authOtp from './authOtp';
import challengeState from './challengeState';
import callbacks from '../callbacks';

const publicRoutes: FastifyPluginAsync = async (app) => {
  // feature route plugins are registered here
  await app.register(authOtp);
  await app.register(authMagicLink);
  await app.register(challengeState);
  // provider status callbacks: called by the providers, authenticated by their signatures
  await app.register(callbacks);
};

export default publicRoutes;
