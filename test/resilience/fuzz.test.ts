/**
 * Property-based fuzzing of every route of the real public and admin apps: the routes
 * come from the apps' own routers, so a new route is fuzzed without editing this file. Each
 * request carries an arbitrary body (wrong types, huge strings, unicode, nulls, deep objects,
 * non-JSON under JSON and form content types), query string and path parameters, and no,
 * forged or genuine credentials (admin token, Slack signature, provider signatures, the
 * Alertmanager and codec tokens), so the handlers behind authentication are fuzzed too.
 *
 * Property: never a 5xx other than the deliberate ones (503 channel_disabled, read_only,
 * not_configured...), and every 4xx/5xx is a JSON body with a stable snake_case `error` code.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { Histogram } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WardenApp } from '../../src/api/app';
import { formParams } from '../../src/api/callbacks/common';
import { MAGIC_LINK_PATH } from '../../src/auth/messages';
import { isDocumentationRoute } from '../../src/api/plugins/openapi';
import { initiate } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { appRoutes, routeParams, type AppRoute } from '../helpers/routes';
import { plivoHeaders, sendgridHeaders, slackHeaders, snsMessage, twilioHeaders } from '../helpers/signing';
import { fuzzBody, fuzzParam, fuzzQuery, jsonValue, wellFormed, type FuzzBody } from './fuzz-arbitraries';

const RUNS = Number(process.env.WARDEN_FUZZ_RUNS ?? 100);

/** 5xx answers that are a decision, not a failure: each names the switch or setting behind it. */
const DELIBERATE_5XX: Record<number, string[]> = {
  503: ['channel_disabled', 'read_only', 'not_configured', 'codec_not_configured', 'captcha_unavailable'],
  501: ['runbook_not_available'],
};

type Credentials = 'none' | 'forged' | 'genuine';

interface FuzzCase {
  params: string[];
  query: string;
  body: FuzzBody;
  credentials: Credentials;
  ip: string;
  extraHeaders: Record<string, string>;
}

function checkAnswer(
  route: AppRoute,
  status: number,
  headers: Record<string, unknown>,
  body: string,
  what: string,
): void {
  if (status >= 500) {
    let code: unknown;
    try {
      code = (JSON.parse(body) as { error?: unknown }).error;
    } catch {
      code = undefined;
    }
    expect(DELIBERATE_5XX[status]?.includes(String(code)), `${what} answered ${status} ${body.slice(0, 300)}`).toBe(
      true,
    );
  }
  // the confirm page's form is a person's browser: its refusals are pages, every other error JSON
  const pageForm = route.url === MAGIC_LINK_PATH && /x-www-form-urlencoded/i.test(what);
  if (status >= 400) {
    expect(String(headers['content-type']), `${what}: content type of ${status}`).toMatch(
      pageForm ? /^(application\/json|text\/html)/ : /^application\/json/,
    );
    if (route.method === 'HEAD') return;
    if (pageForm && String(headers['content-type']).startsWith('text/html')) {
      expect(body, `${what}: the page of ${status}`).toMatch(/^<!doctype html>/);
      return;
    }
    let parsed: { error?: unknown; message?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      throw new Error(`${what} answered ${status} with a body that is not JSON: ${body.slice(0, 200)}`);
    }
    expect(parsed.error, `${what}: error code of ${status} ${body.slice(0, 300)}`).toMatch(
      /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/,
    );
    expect(typeof parsed.message, `${what}: message of ${status}`).toBe('string');
  }
}

describe('fuzzing every public and admin endpoint (fast-check)', () => {
  let h: Harness;
  const sendgridKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const snsKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const snsToken = randomBytes(16).toString('hex');
  const parseToken = randomBytes(16).toString('hex');
  const alertmanagerToken = randomBytes(18).toString('base64url');
  const codecToken = randomBytes(18).toString('base64url');
  const fuzzed = new Map<string, number>();
  const failures: string[] = [];
  let challengeId = '';

  beforeAll(async () => {
    h = await startHarness({
      env: {
        SENDGRID_WEBHOOK_PUBLIC_KEY: sendgridKeys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        SES_SNS_TOKEN: snsToken,
        SES_SNS_SIGNING_CERT: snsKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        SENDGRID_INBOUND_TOKEN: parseToken,
        WARDEN_ALERTMANAGER_TOKEN: alertmanagerToken,
        WARDEN_CODEC_TOKEN: codecToken,
      },
    });
    // a real challenge, so path parameters sometimes name something that exists
    challengeId = (await initiate(h, 'otp', 'alice')).json<{ challenge_id: string }>().challenge_id;
  }, 180_000);
  afterAll(async () => h?.close());

  /** The credentials a route's callers present, genuine or forged, over exactly this request. */
  function credentialHeaders(
    route: AppRoute,
    url: string,
    body: FuzzBody,
    kind: Credentials,
  ): { headers: Record<string, string>; body: FuzzBody; url: string } {
    if (kind === 'none') return { headers: {}, body, url };
    const forged = kind === 'forged';
    const raw = body.payload === undefined ? '' : body.payload.toString();
    const bearer = (token: string) => ({
      authorization: `Bearer ${forged ? randomBytes(18).toString('base64url') : token}`,
    });
    if (url.startsWith('/admin/api/')) return { headers: bearer(h.config.adminToken), body, url };
    if (url.startsWith('/alertmanager/')) return { headers: bearer(alertmanagerToken), body, url };
    if (url.startsWith('/codec/')) return { headers: bearer(codecToken), body, url };
    if (url.startsWith('/slack/'))
      return {
        headers: slackHeaders(forged ? 'not-the-secret' : h.config.providers.slack.signingSecret!, raw),
        body,
        url,
      };
    const params = () => {
      const ct = body.contentType ?? '';
      if (/x-www-form-urlencoded/i.test(ct)) return formParams(Object.fromEntries(new URLSearchParams(raw)));
      if (/json/i.test(ct)) {
        try {
          return formParams(JSON.parse(raw));
        } catch {
          return {};
        }
      }
      return {};
    };
    if (route.url.endsWith('/twilio/status'))
      return { headers: twilioHeaders(h, url, params(), forged ? 'wrong' : undefined), body, url };
    if (route.url.endsWith('/plivo/status'))
      return { headers: plivoHeaders(h, url, params(), forged ? 'wrong' : undefined), body, url };
    if (route.url.endsWith('/sendgrid/events'))
      return {
        headers: sendgridHeaders(
          forged ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey : sendgridKeys.privateKey,
          raw,
        ),
        body,
        url,
      };
    if (route.url.includes('/ses/')) {
      // the genuine path token and an SNS message signed over a random SES event
      const message = snsMessage(snsKeys.privateKey, {
        Type: raw.length % 3 === 0 ? 'SubscriptionConfirmation' : 'Notification',
        Message: raw,
        SubscribeURL: raw.slice(0, 200),
        Token: 't',
      });
      return {
        headers: {},
        body: {
          payload: forged ? message.replace(/"Signature":"[^"]{8}/, '"Signature":"AAAAAAAA') : message,
          contentType: 'text/plain; charset=UTF-8',
        },
        // the token segment alone: `/inbound` (the canary's SES receipts) stays
        url: url.replace(/\/ses\/[^/?]*/, `/ses/${snsToken}`),
      };
    }
    // SendGrid Inbound Parse: the genuine (or a wrong) secret path token, whatever the body
    if (route.url.includes('/sendgrid/inbound/'))
      return {
        headers: {},
        body,
        url: url.replace(/\/sendgrid\/inbound\/[^/?]*/, `/sendgrid/inbound/${forged ? 'x'.repeat(32) : parseToken}`),
      };
    return { headers: bearer(h.config.adminToken), body, url };
  }

  const caseOf = (route: AppRoute): fc.Arbitrary<FuzzCase> =>
    fc.record({
      params: fc.array(
        fc.oneof({ weight: 4, arbitrary: fuzzParam }, { weight: 1, arbitrary: fc.constant(challengeId) }),
        {
          minLength: routeParams(route.url).length,
          maxLength: routeParams(route.url).length,
        },
      ),
      query: fuzzQuery,
      body: fuzzBody,
      credentials: fc.constantFrom<Credentials>('none', 'forged', 'genuine', 'genuine'),
      ip: fc.ipV4(),
      extraHeaders: fc.oneof(
        fc.constant({}),
        fc.record({ 'x-namespace': fc.string({ maxLength: 10 }) }),
        fc.record({ origin: fc.constantFrom('http://localhost:8233', 'https://evil.example') }),
        jsonValue.map((v) => ({ 'x-forwarded-for': wellFormed(JSON.stringify(v) ?? '').replace(/[^\x20-\x7e]/g, '') })),
      ),
    });

  /** Fuzzes one route; a failing property is recorded (seed and the failing request) and the walk goes on. */
  async function fuzzRoute(app: WardenApp, route: AppRoute): Promise<void> {
    try {
      await fc.assert(
        fc.asyncProperty(caseOf(route), async (c) => {
          let i = 0;
          const path = route.url.replace(/:\w+/g, () => c.params[i++] || 'x');
          const base = c.query ? `${path}?${c.query}` : path;
          const { headers: credentials, body, url } = credentialHeaders(route, base, c.body, c.credentials);
          const headers: Record<string, string> = { ...c.extraHeaders, ...credentials };
          if (body.contentType !== undefined) headers['content-type'] = body.contentType;
          const res = await app.inject({
            method: route.method as 'GET',
            url,
            headers,
            ...(body.payload !== undefined ? { payload: body.payload } : {}),
            remoteAddress: c.ip,
          });
          const what = `${route.method} ${url.slice(0, 160)} (${c.credentials} credentials, ${body.contentType ?? 'no body'}, body ${String(body.payload ?? '').slice(0, 120)})`;
          checkAnswer(route, res.statusCode, res.headers, res.body, what);
        }),
        { numRuns: RUNS, endOnFailure: true },
      );
    } catch (err) {
      const seed = /\{ seed: [^}]*\}/.exec(String((err as Error).message))?.[0] ?? '';
      const cause =
        (err as Error).cause instanceof Error
          ? ((err as Error).cause as Error).message
          : String((err as Error).message);
      failures.push(`${route.method} ${route.url} ${seed}: ${cause.slice(0, 700)}`);
    }
    fuzzed.set(`${route.method} ${route.url}`, RUNS);
  }

  /** Undo levers a genuine admin request may have pulled, so later routes are fuzzed past them. */
  async function restore(): Promise<void> {
    for (const [url, payload] of [
      ['/admin/api/v1/database/read-only', { read_only: false }],
      ['/admin/api/v1/database/pool', { reset: true }],
    ] as const) {
      const res = await h.admin.inject({ method: 'PUT', url, headers: h.adminHeaders, payload });
      expect(res.statusCode, res.body).toBe(200);
    }
  }

  it('enumerates the routes of both apps from their own routers', () => {
    const all = [...appRoutes(h.public), ...appRoutes(h.admin)].map((r) => `${r.method} ${r.url}`);
    for (const expected of [
      'POST /browser/api/v1/identity/auth/otp/initiate',
      'GET /browser/api/v1/identity/auth/magic-link/verify',
      'GET /browser/api/v1/identity/auth/challenges/:id',
      'POST /callbacks/v1/twilio/status',
      'POST /callbacks/v1/ses/:token',
      'POST /slack/commands',
      'POST /slack/interactions',
      'POST /alertmanager/webhook',
      'POST /codec/decode',
      'OPTIONS /codec/encode',
      'GET /livez',
      'POST /admin/api/v1/incidents/:id/checklist/:item',
      'POST /admin/api/v1/runbooks/:name',
      'PUT /admin/api/v1/database/read-only',
    ]) {
      expect(all).toContain(expected);
    }
    expect(all.length).toBeGreaterThan(60);
  });

  it('public app: no route answers a 5xx or a non-JSON error, whatever it is sent', { timeout: 240_000 }, async () => {
    const before = failures.length;
    for (const route of appRoutes(h.public)) await fuzzRoute(h.public, route);
    expect(failures.slice(before).join('\n\n')).toBe('');
  });

  it(
    'admin app: no route answers a 5xx or a non-JSON error, with no, forged or genuine credentials',
    { timeout: 300_000 },
    async () => {
      const before = failures.length;
      for (const route of appRoutes(h.admin)) {
        await fuzzRoute(h.admin, route);
        if (route.url.startsWith('/admin/api/v1/database')) await restore();
      }
      expect(failures.slice(before).join('\n\n')).toBe('');
    },
  );

  // Found by probing every field with U+0000: random bodies seldom are valid enough to reach
  // Postgres with it, so the routes that store text are pinned here with otherwise valid bodies.
  const NUL = 'a\u0000b';
  it.each([
    ['POST', '/admin/api/v1/keys/rotate', { reason: NUL }],
    ['POST', '/admin/api/v1/incidents', { type: 'other', severity: 'P3', title: NUL }],
    ['POST', '/admin/api/v1/blocklist/ip', { ip: '203.0.113.5', reason: NUL }],
    ['POST', '/admin/api/v1/users/revoke-challenges', { user_ids: [NUL] }],
    ['POST', '/admin/api/v1/users/force-password-reset', { user_ids: [NUL] }],
    ['POST', '/admin/api/v1/users/clear-rate-limits', { user_ids: [NUL] }],
    ['PUT', '/admin/api/v1/delivery/routes/sms', { enabled: true, reason: NUL }],
    ['POST', '/admin/api/v1/delivery/routes/sms/switch', { to: 'primary', reason: NUL }],
    ['POST', '/admin/api/v1/runbooks/abuse-mitigation', { severity: 'P3', users: [NUL], ips: ['203.0.113.7'] }],
  ] as const)(
    '%s %s with U+0000 in a stored text field answers 400 invalid_request, not 500',
    async (method, url, payload) => {
      const res = await h.admin.inject({ method, url, headers: h.adminHeaders, payload });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
    },
  );

  it('fuzzed every route, and reached each one past its authentication', async () => {
    const routes = [...appRoutes(h.public), ...appRoutes(h.admin)];
    for (const r of routes)
      expect(fuzzed.get(`${r.method} ${r.url}`), `${r.method} ${r.url} was not fuzzed`).toBe(RUNS);
    // the HTTP histogram records the route template and status of every answer
    const histogram = h.runtime.registry.getSingleMetric('warden_http_request_duration_seconds') as Histogram;
    const reached = new Set(
      (await histogram.get()).values
        .filter((v) => v.metricName?.endsWith('_count') && v.value > 0 && v.labels.status !== '401')
        .map((v) => `${String(v.labels.method)} ${String(v.labels.route)}`),
    );
    // the reference page's routes (/docs...) are fuzzed too, but the router prints its asset
    // wildcard and trailing-slash twin under other templates than requests are counted with
    const unreached = routes
      .filter((r) => !isDocumentationRoute(r.url))
      .map((r) => `${r.method} ${r.url}`)
      .filter((r) => !reached.has(r));
    expect(unreached).toEqual([]);
  });
});
