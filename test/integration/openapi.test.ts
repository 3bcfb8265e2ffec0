import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { version } from '../../package.json';
import type { WardenApp } from '../../src/api/app';
import { isDocumentationRoute, registeredRoutes } from '../../src/api/plugins/openapi';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

/** Routes allowed to lack a schema: none. A route added without one fails the test. */
const KNOWN_GAPS: Record<string, string> = {};

/**
 * Routes a plugin registers hidden from the document, outside the documentation's own: not
 * part of the contract, so not held to it. Any other hidden route fails the test.
 */
const HIDDEN_ROUTES: Record<string, string> = {
  // @fastify/cors answers the browsers' preflights for the browser routes (src/api/public/index.ts)
  'OPTIONS *': 'CORS preflight',
};

/** Documented answers with an error status that are not errors. */
const NOT_ERROR_BODIES = new Set([
  // the readiness probe's "not ready" has the probe's own shape, like its "ready"
  'GET /readyz 503',
]);

const ERROR_REF = '#/components/schemas/ErrorBody';
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

type Json = Record<string, unknown>;
type Operation = { responses?: Record<string, Json>; tags?: string[]; security?: unknown[] };
type Document = Json & { paths: Record<string, Record<string, Operation>>; components: Json };

/** The routes without a schema for their path parameters, their body or their success answer. */
function schemaGaps(app: WardenApp): Array<{ route: string; problem: string }> {
  const gaps: Array<{ route: string; problem: string }> = [];
  for (const route of registeredRoutes(app)) {
    // Fastify's HEAD twin of a GET carries the GET's schema; the documentation's own routes
    // (the document, the page, its assets) are not part of the API
    if (route.method === 'HEAD' || isDocumentationRoute(route.url)) continue;
    const schema = route.schema ?? {};
    const name = `${route.method} ${route.url}`;
    if (schema.hide) {
      if (!(name in HIDDEN_ROUTES)) gaps.push({ route: name, problem: 'hidden from the document (see HIDDEN_ROUTES)' });
      continue;
    }
    const missing: string[] = [];
    if (/[:*]/.test(route.url) && !schema.params) missing.push('its path parameters');
    if (BODY_METHODS.has(route.method) && !schema.body) missing.push('its body');
    const codes = Object.keys((schema.response ?? {}) as Json);
    if (!codes.some((code) => /^2(\d\d|xx)$/i.test(code))) missing.push('its success response');
    if (missing.length) gaps.push({ route: name, problem: `no schema for ${missing.join(', ')}` });
  }
  return gaps;
}

function operations(doc: Document): Array<{ name: string; operation: Operation }> {
  const out: Array<{ name: string; operation: Operation }> = [];
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, operation] of Object.entries(item))
      out.push({ name: `${method.toUpperCase()} ${path}`, operation });
  return out;
}

/** `/users/:sub` as OpenAPI writes it: `/users/{sub}`. */
const openapiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

describe('the OpenAPI documents of the public and the admin app', () => {
  let h: Harness;
  let viewer: { authorization: string };
  const docs: Partial<Record<'public' | 'admin', Document>> = {};

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    viewer = await operatorHeaders(h, 'docs-reader', 'viewer');
    const pub = await h.public.inject({ url: '/openapi.json' });
    expect(pub.statusCode, pub.body).toBe(200);
    docs.public = pub.json<Document>();
    const admin = await h.admin.inject({ url: '/openapi.json', headers: viewer });
    expect(admin.statusCode, admin.body).toBe(200);
    docs.admin = admin.json<Document>();
  });
  afterAll(async () => h?.close());

  it('every route has a schema for its path parameters, its body and its success answer', () => {
    const gaps = [...schemaGaps(h.public), ...schemaGaps(h.admin)];
    const unexpected = gaps.filter((gap) => !(gap.route in KNOWN_GAPS)).map((gap) => `${gap.route}: ${gap.problem}`);
    expect(unexpected, `routes without schemas:\n${unexpected.join('\n')}`).toEqual([]);
    const fixed = Object.keys(KNOWN_GAPS).filter((route) => !gaps.some((gap) => gap.route === route));
    expect(fixed, 'no longer gaps (or gone): remove them from KNOWN_GAPS').toEqual([]);
  });

  it.each(['public', 'admin'] as const)('the %s document is valid OpenAPI 3.1', async (which) => {
    const doc = docs[which]!;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({
      title: which === 'public' ? 'Warden public API' : 'Warden admin API',
      version,
    });
    const result = await new Validator().validate(structuredClone(doc));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it.each(['public', 'admin'] as const)(
    'the %s document has every route but the documentation routes, with tags',
    (which) => {
      const app = which === 'public' ? h.public : h.admin;
      const doc = docs[which]!;
      const documented = new Set(operations(doc).map((o) => o.name));
      const expected = registeredRoutes(app)
        .filter((r) => r.method !== 'HEAD' && !isDocumentationRoute(r.url) && !r.schema?.hide)
        .map((r) => `${r.method} ${openapiPath(r.url)}`);
      expect(expected.filter((route) => !documented.has(route))).toEqual([]);
      expect([...documented].filter((route) => !expected.includes(route))).toEqual([]);
      expect(Object.keys(doc.paths).filter((path) => isDocumentationRoute(path))).toEqual([]);
      expect(
        operations(doc)
          .filter((o) => !o.operation.tags?.length)
          .map((o) => o.name),
      ).toEqual([]);
    },
  );

  it.each(['public', 'admin'] as const)(
    'every error response of the %s document is an ErrorBody with a stable code',
    async (which) => {
      const doc = docs[which]!;
      const schemas = doc.components.schemas as Record<string, Json>;
      const errorBody = schemas.ErrorBody as { required: string[]; properties: Record<string, Json> };
      expect(errorBody.required).toEqual(expect.arrayContaining(['error', 'message']));
      expect(errorBody.properties.error).toMatchObject({ type: 'string', pattern: expect.any(String) });
      const stable = new RegExp(String(errorBody.properties.error!.pattern));
      for (const code of ['invalid_request', 'not_found', 'rate_limited', 'unauthorized']) expect(code).toMatch(stable);
      for (const code of ['Bad Request', 'FST_ERR_NOT_FOUND', 'notFound']) expect(code).not.toMatch(stable);

      const wrong: string[] = [];
      for (const { name, operation } of operations(doc)) {
        expect(operation.responses?.default, `${name}: no default (error) response`).toBeDefined();
        for (const [status, response] of Object.entries(operation.responses ?? {})) {
          if (!/^(4|5|default)/i.test(status) || NOT_ERROR_BODIES.has(`${name} ${status}`)) continue;
          const content = (response.content ?? {}) as Record<string, { schema?: Json }>;
          if (
            Object.keys(content).join() !== 'application/json' ||
            content['application/json']?.schema?.$ref !== ERROR_REF
          )
            wrong.push(`${name} ${status}: ${JSON.stringify(content)}`);
        }
      }
      expect(wrong).toEqual([]);

      // and the answers are what the document says
      const app = which === 'public' ? h.public : h.admin;
      const res = await app.inject({ url: '/no/such/route' });
      expect(res.statusCode).toBe(404);
      expect(res.json<{ error: string }>().error).toMatch(stable);
    },
  );

  it('declares how each app authenticates: operators on the admin API, app keys on the public one', () => {
    const pub = docs.public!;
    const admin = docs.admin!;
    expect((pub.components.securitySchemes as Json).appKey).toMatchObject({ type: 'http', scheme: 'basic' });
    expect((admin.components.securitySchemes as Json).operatorToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(admin.security).toEqual([{ operatorToken: [] }]);
    // probes answer anyone; integrations have their own credentials
    expect(admin.paths['/livez']!.get!.security).toEqual([]);
    expect(admin.paths['/alertmanager/webhook']!.post!.security).toEqual([{ alertmanagerToken: [] }]);
    expect(admin.paths['/codec/decode']!.post!.security).toEqual([{ codecDecodeToken: [] }]);
    // a CORS preflight carries no credential
    expect(admin.paths['/codec/decode']!.options!.security).toEqual([]);
    expect(admin.paths['/admin/api/v1/whoami']!.get!.security).toBeUndefined();
    expect(pub.paths['/callbacks/v1/twilio/status']!.post!.security).toEqual([{ twilioSignature: [] }]);
  });

  it('serves the reference page and its assets from the installed package', async () => {
    const page = await h.public.inject({ url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    // nothing from another host: the page works offline
    expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toContain('/docs/static/swagger-ui-bundle.js');
    for (const asset of assets) {
      const res = await h.public.inject({ url: asset });
      expect(res.statusCode, asset).toBe(200);
    }
    const initializer = await h.public.inject({ url: '/docs/static/swagger-initializer.js' });
    expect(initializer.body).toContain("resolveUrl('./json')");
    const json = await h.public.inject({ url: '/docs/json' });
    expect(json.json()).toEqual(docs.public);
  });

  it("the admin port's document and page need an operator's token, like the rest of the admin API", async () => {
    for (const url of ['/openapi.json', '/docs', '/docs/json', '/docs/static/swagger-ui-bundle.js']) {
      const anonymous = await h.admin.inject({ url });
      expect(anonymous.statusCode, url).toBe(401);
      expect(anonymous.json()).toMatchObject({ error: 'unauthorized' });
      const forged = await h.admin.inject({ url, headers: { authorization: 'Bearer not-a-token' } });
      expect(forged.statusCode, url).toBe(401);
      const read = await h.admin.inject({ url, headers: viewer });
      expect(read.statusCode, url).toBe(200);
    }
    // the public port's are open, like the API they describe
    expect((await h.public.inject({ url: '/openapi.json' })).statusCode).toBe(200);
  });
});
