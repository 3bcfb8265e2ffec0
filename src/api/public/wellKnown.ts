/**
 * What an app needs to verify the tokens Warden signs (docs/tokens.md), unauthenticated:
 *
 * - `GET /.well-known/jwks.json`: the public keys, the active one and retired ones still
 *   published (src/auth/tokenKeys.ts). Never a private member: the response schema admits
 *   only the public ones, and the serializer drops anything else.
 * - `GET /.well-known/openid-configuration`: the discovery document, derived from WARDEN_ISSUER.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TOKEN_ALG } from '../../auth/tokenKeys';
import { ErrorBody } from '../errors';

export const JWKS_PATH = '/.well-known/jwks.json';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const TOKEN_ENDPOINT_PATH = '/oauth/token';

/** apps and their caches may keep the key set this long; one that meets an unknown kid fetches it again */
const CACHE_CONTROL = 'public, max-age=300';

const Jwk = Type.Object(
  {
    kty: Type.Literal('EC'),
    crv: Type.Literal('P-256'),
    x: Type.String({ description: 'base64url x coordinate' }),
    y: Type.String({ description: 'base64url y coordinate' }),
    kid: Type.String(),
    alg: Type.Literal(TOKEN_ALG),
    use: Type.Literal('sig'),
  },
  { additionalProperties: false },
);

const Jwks = Type.Object({ keys: Type.Array(Jwk) }, { additionalProperties: false });

const Discovery = Type.Object(
  {
    issuer: Type.String(),
    jwks_uri: Type.String(),
    token_endpoint: Type.String(),
    response_types_supported: Type.Array(Type.String()),
    grant_types_supported: Type.Array(Type.String()),
    code_challenge_methods_supported: Type.Array(Type.String()),
    id_token_signing_alg_values_supported: Type.Array(Type.String()),
    subject_types_supported: Type.Array(Type.String()),
    token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);

const wellKnown: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    JWKS_PATH,
    {
      schema: {
        tags: ['apps'],
        summary: 'The public keys that verify the tokens Warden signs (JWKS)',
        response: { 200: Jwks, 503: ErrorBody },
      },
    },
    async (_request, reply) => {
      const jwks = await app.warden.tokenKeys.jwks();
      reply.header('Cache-Control', CACHE_CONTROL);
      return jwks;
    },
  );

  app.get(
    DISCOVERY_PATH,
    {
      schema: {
        tags: ['apps'],
        summary: "Warden's issuer metadata: where its keys and token endpoint are (discovery document)",
        response: { 200: Discovery },
      },
    },
    async (_request, reply) => {
      const issuer = app.warden.config.issuer;
      reply.header('Cache-Control', CACHE_CONTROL);
      return {
        issuer,
        jwks_uri: `${issuer}${JWKS_PATH}`,
        token_endpoint: `${issuer}${TOKEN_ENDPOINT_PATH}`,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code'],
        code_challenge_methods_supported: ['S256'],
        id_token_signing_alg_values_supported: [TOKEN_ALG],
        subject_types_supported: ['public'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      };
    },
  );
};

export default wellKnown;
