/**
 * The OpenAPI 3.1 document of the public and the admin app, generated from the route schemas
 * (@fastify/swagger): `GET /openapi.json`, and a reference page on it at `/docs` (Swagger UI,
 * its assets served from the installed package, so it works offline). Neither documentation
 * route is in the document.
 *
 * On the admin port both need an operator's bearer token (any role, a viewer is enough): the
 * document reveals no secret, but it lists every admin route, and nothing on that port says
 * what exists without a credential (unknown /admin/api/v1 paths answer 401 too); only the
 * probes answer anyone. A browser opens the admin /docs through something that adds the
 * Authorization header; the public port's document and page are open like the API they describe.
 *
 * Nothing of the API is hidden: the provider callbacks, Slack, Alertmanager and the Temporal
 * codec are in the documents with the credential each takes, because operators wire them up
 * (a provider's webhook URL, TEMPORAL_CODEC_ENDPOINT), so they are part of their port's
 * contract. The provider sandbox is a process of its own (src/sandbox/), mounted on neither app.
 *
 * Registered before the routes, it also records every route and the schema it was given
 * (`registeredRoutes`), so a test can name the routes that have none.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema, FastifySchemaCompiler } from 'fastify';
import fp from 'fastify-plugin';
import { version } from '../../../package.json';
import { ErrorBody } from '../errors';
import { authenticateOperator, authorizeOperator } from './operatorAuth';

export type DocumentedApp = 'public' | 'admin';

export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PREFIX = '/docs';

/** A route as it was registered: the test's view of which schemas exist. */
export interface RegisteredRoute {
  method: string;
  url: string;
  schema?: FastifySchema & { hide?: boolean };
}

const registries = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Every route of an app built with this plugin, in registration order (HEAD twins included). */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  const routes = registries.get(app);
  if (!routes) throw new Error('this app was built without the OpenAPI plugin');
  return routes;
}

/** The documentation's own routes (the document, the page and its assets). */
export function isDocumentationRoute(url: string): boolean {
  return url === OPENAPI_PATH || url === DOCS_PREFIX || url.startsWith(`${DOCS_PREFIX}/`);
}

/**
 * The validator of a body that reaches its handler raw (bytes a provider's signature covers, an
 * upload read as a stream): the route's body schema describes what the bytes hold, for the
 * document, and the handler checks the content once it has parsed it (after the signature).
 * Running the schema against the raw value would refuse every request.
 */
export const describedRawBody: FastifySchemaCompiler<unknown> = () => () => true;

const ERROR_REF = '#/components/schemas/ErrorBody';

interface Area {
  /** a path prefix */
  prefix: string;
  tag: string;
  description: string;
  /** the security requirement of the area's operations; unset: the document's default */
  security?: Array<Record<string, string[]>>;
}

const PUBLIC_AREAS: Area[] = [
  {
    prefix: '/browser/api/v1/identity/auth/otp/',
    tag: 'otp',
    description: 'SMS one-time passcodes: start, verify and resend a challenge whose code is sent by SMS.',
  },
  {
    prefix: '/browser/api/v1/identity/auth/magic-link',
    tag: 'magic-link',
    description: 'Email magic links: start, confirm and resend a challenge whose link is sent by email.',
  },
  {
    prefix: '/browser/api/v1/identity/auth/challenges/',
    tag: 'challenges',
    description: "A challenge's public state, for the page that started it.",
  },
  {
    prefix: '/server/api/v1/',
    tag: 'apps',
    description: "For an app's backend, with the app's key: verifications and the code exchange.",
    security: [{ appKey: [] }],
  },
  { prefix: '/oauth/', tag: 'apps', description: '', security: [{ appKey: [] }] },
  {
    prefix: '/.well-known/',
    tag: 'discovery',
    description: 'The public keys and the metadata that verify the tokens Warden signs: no credential.',
  },
  {
    prefix: '/callbacks/v1/twilio/',
    tag: 'callbacks',
    description:
      'Called by the SMS and email providers with delivery reports (and the canary’s incoming messages); each is authenticated by its provider’s signature or a secret path token.',
    security: [{ twilioSignature: [] }],
  },
  { prefix: '/callbacks/v1/plivo/', tag: 'callbacks', description: '', security: [{ plivoSignature: [] }] },
  { prefix: '/callbacks/v1/sendgrid/events', tag: 'callbacks', description: '', security: [{ sendgridSignature: [] }] },
  // the rest: a secret path token (and, for SNS, the message's own signature in the body)
  { prefix: '/callbacks/v1/', tag: 'callbacks', description: '', security: [] },
];

const ADMIN_AREAS: Area[] = [
  {
    prefix: '/livez',
    tag: 'probes',
    description: 'Liveness and readiness, for the orchestrator: no credential.',
    security: [],
  },
  { prefix: '/readyz', tag: 'probes', description: '', security: [] },
  {
    prefix: '/admin/api/v1/whoami',
    tag: 'operators',
    description: 'Who is calling; operators and their API tokens.',
  },
  { prefix: '/admin/api/v1/operators', tag: 'operators', description: '' },
  {
    prefix: '/admin/api/v1/incidents',
    tag: 'incidents',
    description: 'Open, list, read and steer incidents; their report and customer notification.',
  },
  {
    prefix: '/admin/api/v1/runbooks',
    tag: 'runbooks',
    description: 'Start runbooks, decide their steps, read their runs and artifacts.',
  },
  {
    prefix: '/admin/api/v1/delivery',
    tag: 'delivery',
    description: 'Delivery routes and their circuits, the switch to the backup, failed deliveries and their resend.',
  },
  {
    prefix: '/admin/api/v1/users',
    tag: 'users',
    description: 'Users, their bulk import, and per-user containment.',
  },
  { prefix: '/admin/api/v1/blocklist', tag: 'blocklist', description: 'The IP blocklist of the public auth routes.' },
  {
    prefix: '/admin/api/v1/ratelimits',
    tag: 'settings',
    description: 'Rate limits and challenge settings, changed without a restart.',
  },
  { prefix: '/admin/api/v1/auth/settings', tag: 'settings', description: '' },
  { prefix: '/admin/api/v1/audit', tag: 'audit', description: 'The audit trail, exported as NDJSON.' },
  { prefix: '/admin/api/v1/keys', tag: 'keys', description: 'Data keys and their emergency rotation.' },
  {
    prefix: '/admin/api/v1/database',
    tag: 'database',
    description: 'The database’s state, read-only degradation, the pool size and the primary.',
  },
  {
    prefix: '/slack/',
    tag: 'slack',
    description: 'The `/incident` command and interactions, signed by Slack.',
    security: [{ slackSignature: [] }],
  },
  {
    prefix: '/alertmanager/',
    tag: 'alertmanager',
    description: 'Alertmanager’s webhook: one incident per notification group.',
    security: [{ alertmanagerToken: [] }],
  },
  {
    prefix: '/codec/decode',
    tag: 'codec',
    description: 'Temporal’s remote codec protocol, for the Temporal UI and CLI.',
    security: [{ codecDecodeToken: [] }],
  },
  { prefix: '/codec/encode', tag: 'codec', description: '', security: [{ codecEncodeToken: [] }] },
];

/** A route outside every listed area is tagged with its first own segment (after /admin/api/v1, say). */
function areaOf(areas: Area[], url: string): Area {
  const found = areas.find((a) => url === a.prefix || url.startsWith(a.prefix));
  if (found) return found;
  const own = url.replace(/^\/(admin|browser|server)\/api\/v1\/(identity\/auth\/)?/, '/');
  return { prefix: '', tag: /^\/([^/:*]+)/.exec(own)?.[1] ?? 'other', description: '' };
}

const signatureHeader = (name: string, description: string) => ({
  type: 'apiKey' as const,
  in: 'header' as const,
  name,
  description,
});

const SECURITY_SCHEMES = {
  public: {
    appKey: {
      type: 'http',
      scheme: 'basic',
      description: "An app's key: its client id and secret as HTTP Basic credentials (the token endpoint).",
    },
    twilioSignature: signatureHeader(
      'X-Twilio-Signature',
      "Twilio's HMAC-SHA1 over the callback URL and the form, with the account's auth token.",
    ),
    plivoSignature: signatureHeader(
      'X-Plivo-Signature-V3',
      "Plivo's V3 signature (with X-Plivo-Signature-V3-Nonce) over the callback URL and the form.",
    ),
    sendgridSignature: signatureHeader(
      'X-Twilio-Email-Event-Webhook-Signature',
      "SendGrid's ECDSA signature over X-Twilio-Email-Event-Webhook-Timestamp and the raw body (SENDGRID_WEBHOOK_PUBLIC_KEY).",
    ),
  },
  admin: {
    operatorToken: {
      type: 'http',
      scheme: 'bearer',
      description:
        "An operator's API token (POST /admin/api/v1/operators/{id}/tokens), or the deployment's bootstrap WARDEN_ADMIN_TOKEN. Each route needs a role: viewer, responder or admin.",
    },
    alertmanagerToken: { type: 'http', scheme: 'bearer', description: 'WARDEN_ALERTMANAGER_TOKEN.' },
    codecDecodeToken: {
      type: 'http',
      scheme: 'bearer',
      description: 'WARDEN_CODEC_TOKEN (decodes only). Without codec auth (development) loopback hosts only.',
    },
    codecEncodeToken: { type: 'http', scheme: 'bearer', description: 'WARDEN_CODEC_ENCODE_TOKEN (encodes only).' },
    slackSignature: signatureHeader(
      'X-Slack-Signature',
      "Slack's v0 signature (with X-Slack-Request-Timestamp) over the raw body, with SLACK_SIGNING_SECRET.",
    ),
  },
} as const;

const INFO = {
  public: {
    title: 'Warden public API',
    description:
      'Passwordless sign-in (SMS one-time passcodes, email magic links) and the providers’ delivery callbacks. Errors are an ErrorBody whose `error` is a stable code.',
  },
  admin: {
    title: 'Warden admin API',
    description:
      'Operators’ API: incidents, runbooks, delivery, users, settings, the database; and the integrations on the admin port. Errors are an ErrorBody whose `error` is a stable code.',
  },
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The document as generated, made consistent: error bodies are one component, every operation
 * says that any other status is an error, an optional body is not required, and only the tags
 * in use are listed.
 */
function finish(doc: Json, areas: Area[]): Json {
  const components = (doc.components ?? {}) as Json;
  const schemas = (components.schemas ?? {}) as Json;
  schemas.ErrorBody = structuredClone(ErrorBody);
  components.schemas = schemas;
  doc.components = components;

  const used = new Set<string>();
  for (const item of Object.values((doc.paths ?? {}) as Json)) {
    if (!isObject(item)) continue;
    for (const operation of Object.values(item)) {
      if (!isObject(operation)) continue;
      for (const tag of (operation.tags as string[] | undefined) ?? []) used.add(tag);
      const responses = (operation.responses ?? {}) as Json;
      for (const response of Object.values(responses)) {
        if (!isObject(response) || !isObject(response.content)) continue;
        for (const media of Object.values(response.content)) {
          if (isObject(media) && isObject(media.schema) && media.schema.title === ErrorBody.title)
            media.schema = { $ref: ERROR_REF };
        }
      }
      responses.default ??= {
        description: 'Any other status: an error with a stable code',
        content: { 'application/json': { schema: { $ref: ERROR_REF } } },
      };
      operation.responses = responses;
      // a body schema that admits null: the body may be left out
      const body = operation.requestBody;
      if (isObject(body) && isObject(body.content)) {
        const optional = Object.values(body.content).some(
          (media) =>
            isObject(media) &&
            isObject(media.schema) &&
            Array.isArray(media.schema.anyOf) &&
            media.schema.anyOf.some((s) => isObject(s) && s.type === 'null'),
        );
        if (optional) body.required = false;
      }
    }
  }
  const described = new Map<string, string>();
  for (const area of areas) if (area.description && !described.has(area.tag)) described.set(area.tag, area.description);
  doc.tags = [...used].map((name) => ({ name, ...(described.get(name) ? { description: described.get(name) } : {}) }));
  return doc;
}

async function openapi(app: FastifyInstance, options: { documents: DocumentedApp }): Promise<void> {
  const which = options.documents;
  const areas = which === 'admin' ? ADMIN_AREAS : PUBLIC_AREAS;

  const routes: RegisteredRoute[] = [];
  registries.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, schema: route.schema });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { ...INFO[which], version },
      components: { securitySchemes: SECURITY_SCHEMES[which] },
      // the admin API's routes need an operator's token unless their area says otherwise
      ...(which === 'admin' ? { security: [{ operatorToken: [] }] } : {}),
    },
    // tags and security by area, unless the route's schema names its own
    transform: ({ schema, url, route }) => {
      const area = areaOf(areas, url);
      // a CORS preflight carries no credential
      const security = route.method === 'OPTIONS' ? [] : area.security;
      return {
        url,
        schema: {
          ...schema,
          ...(schema?.tags ? {} : { tags: [area.tag] }),
          ...(schema?.security || !security ? {} : { security }),
        } as FastifySchema,
      };
    },
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject;
      return finish(documentObject.openapiObject as Json, areas) as typeof documentObject.openapiObject;
    },
  });

  await app.register(async (docs) => {
    if (which === 'admin') {
      // the operator's token, any role (see the header comment)
      docs.addHook('onRequest', authenticateOperator);
      docs.addHook('preValidation', authorizeOperator);
    }
    docs.get(OPENAPI_PATH, { schema: { hide: true }, config: { role: 'viewer' } }, async (_request, reply) =>
      reply.header('Cache-Control', 'no-cache').send(docs.swagger()),
    );
    await docs.register(swaggerUi, {
      routePrefix: DOCS_PREFIX,
      // no top bar: it would offer to explore other documents
      uiConfig: { layout: 'BaseLayout', deepLinking: true, docExpansion: 'list', defaultModelsExpandDepth: 0 },
      // the page loads its own assets only: no CDN, no validator badge (validatorUrl null)
      staticCSP:
        "default-src 'self'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'; object-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'",
      theme: { title: INFO[which].title },
    });
  });
}

export default fp(openapi, { name: 'warden-openapi', fastify: '5.x' });
