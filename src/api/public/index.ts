import type { FastifyPluginAsync } from 'fastify';

/**
 * The public API (browser-facing, port 8080). Each feature registers its routes here, one
 * plugin per file, under /browser/api/v1.
 */
const publicRoutes: FastifyPluginAsync = async (_app) => {
  // feature route plugins are registered here
};

export default publicRoutes;
