/**
 * The public API (browser-facing, port 8080). Each feature registers its routes here, one
 * plugin per file: the browser's sign-in routes under /browser/api/v1, the apps' backends'
 * under /server/api/v1 and /oauth.
 */
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import type { FastifyPluginAsync } from 'fastify';
import { registeredOrigin } from './appBinding';
import authMagicLink from './authMagicLink';
import authOtp from './authOtp';
import challengeState from './challengeState';
import oauthToken from './oauthToken';
import serverVerify from './serverVerify';
import wellKnown from './wellKnown';
import callbacks from '../callbacks';

/** The routes a browser calls: the device cookie, and CORS for the apps' registered origins only. */
const browserRoutes: FastifyPluginAsync = async (app) => {
  await app.register(cookie);
  await app.register(cors, {
    credentials: true,
    methods: ['GET', 'POST'],
    allowedHeaders: ['content-type'],
    maxAge: 600,
    origin: (origin, callback) => {
      if (origin === undefined) return callback(null, false);
      registeredOrigin(app, origin).then(
        (allowed) => callback(null, allowed),
        (err: Error) => callback(err, false),
      );
    },
  });
  await app.register(authOtp);
  await app.register(authMagicLink);
  await app.register(challengeState);
};

const publicRoutes: FastifyPluginAsync = async (app) => {
  await app.register(browserRoutes);
  // app backends: server-to-server verifications and the code exchange, with the app's key
  await app.register(serverVerify);
  await app.register(oauthToken);
  // /.well-known/jwks.json and the discovery document: how apps verify Warden's tokens
  await app.register(wellKnown);
  // provider status callbacks: called by the providers, authenticated by their signatures
  await app.register(callbacks);
};

export default publicRoutes;
