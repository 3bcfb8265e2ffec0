import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { holdsBinding, loadBoundChallenge, releaseCode } from '../../auth/bindings';
import { MAGIC_TOKEN_PATTERN } from '../../auth/crypto';
import { escapeHtml, MAGIC_LINK_PATH } from '../../auth/messages';
import { ApiError, ErrorBody } from '../errors';
import { captchaGuard } from './authCaptcha';
import { blocklistGuard } from './authGuards';
import { trustThisDevice } from './deviceTrust';
import { browserBinding, jsonOnly, proofOf, sameSiteForm } from './appBinding';
import { initiateChallenge, resendChallenge, verifyChallenge } from './authFlow';
import { verifiedAnswer } from './release';

/** The link's parameters, read by linkParams from the query string, a form or JSON. */
const LinkFields = Type.Object(
  { challenge: Type.Optional(Type.String({ maxLength: 64 })), token: Type.Optional(Type.String({ maxLength: 128 })) },
  { additionalProperties: true },
);
const HtmlPage = Type.String({ description: 'an HTML page' });

const isForm = (request: FastifyRequest) =>
  /^application\/x-www-form-urlencoded\b/i.test(request.headers['content-type'] ?? '');
import { errorResponses, Initiated, InitiateBody, Resent, ResendBody, UUID_PATTERN, Verified } from './authSchemas';

const UUID = new RegExp(UUID_PATTERN);

/** The link's two parameters from the query string, a form or JSON; 400 unless both are well-formed. */
function linkParams(...sources: unknown[]): { challenge: string; token: string } {
  const pick = (name: string) => {
    for (const source of sources) {
      const value =
        typeof source === 'object' && source !== null ? (source as Record<string, unknown>)[name] : undefined;
      if (value !== undefined) return value;
    }
    return undefined;
  };
  const challenge = pick('challenge');
  const token = pick('token');
  if (typeof challenge !== 'string' || !UUID.test(challenge)) {
    throw new ApiError(400, 'invalid_request', '`challenge` must be the challenge id from the link');
  }
  if (typeof token !== 'string' || !MAGIC_TOKEN_PATTERN.test(token)) {
    throw new ApiError(400, 'invalid_request', '`token` must be the token from the link');
  }
  return { challenge: challenge.toLowerCase(), token };
}

const CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const PAGE_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': CSP,
};

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${escapeHtml(title)}</title>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

/** The confirm page: mail scanners prefetch links, so a GET only shows a button that POSTs. */
function confirmPage(challenge: string, token: string): string {
  return page(
    'Sign in to Warden',
    `<p>Press the button to finish signing in. The link works once.</p>
<form method="post" action="${escapeHtml(MAGIC_LINK_PATH)}">
<input type="hidden" name="challenge" value="${escapeHtml(challenge)}">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<button type="submit">Sign in</button>
</form>
<p>If you did not ask to sign in, close this page: nothing happens until the button is pressed.</p>`,
  );
}

/** The link was opened on another device than the one that asked: that device goes on. */
const approvedElsewherePage = () =>
  page(
    'Sign-in approved',
    `<p>You approved the sign-in. Go back to the device where you started it: it continues there.</p>
<p>You can close this page.</p>`,
  );

const signedInPage = () => page('Signed in', '<p>You are signed in. Go back to the app you were signing in to.</p>');

const failedPage = (err: ApiError) => page('This link cannot sign you in', `<p>${escapeHtml(err.message)}.</p>`);

/**
 * Where the confirm form's POST goes once the link verified: the device that asked (its
 * device cookie) lands on the app's redirect URI with the code and the app's state; so does any
 * device when the code needs the app's PKCE verifier and no device holds the challenge (a link
 * an app's backend started). Anyone else reads that the sign-in is approved, and no code.
 */
async function landing(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  challengeId: string,
): Promise<FastifyReply> {
  const bound = await loadBoundChallenge(app.warden.db, challengeId);
  const proof = proofOf(request);
  const sameDevice = bound ? holdsBinding(bound, proof) : false;
  const release = bound?.redirect_uri && (sameDevice || (bound.device_sha256 === null && bound.code_challenge));
  const released = release ? await releaseCode(app.warden.db, challengeId) : undefined;
  if (released?.redirectUri) {
    const target = new URL(released.redirectUri);
    target.searchParams.set('code', released.code);
    if (released.state !== null) target.searchParams.set('state', released.state);
    return sendPage(reply.header('Location', target.toString()), 303, page('Signing in', '<p>Signing you in…</p>'));
  }
  return sendPage(reply, 200, bound && !sameDevice ? approvedElsewherePage() : signedInPage());
}

/** An HTML answer on a route whose JSON answers have a schema: the page is sent as it is. */
function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.status(status).headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(html);
}

/** Email magic links: initiate, the confirm page (GET), the consuming POST, resend. */
const magicLinkRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const base = '/browser/api/v1/identity/auth/magic-link';
  // the abuse runbook's CAPTCHA mode (a no-op while it is off)
  app.addHook('preHandler', captchaGuard(app, 'magic_link'));

  app.post(
    `${base}/initiate`,
    {
      config: { admission: { action: 'initiate', method: 'magic_link' } },
      onRequest: blocklistGuard(app, 'initiate', 'magic_link'),
      preValidation: jsonOnly,
      schema: { body: InitiateBody, response: { 202: Initiated, ...errorResponses } },
    },
    async (request, reply) => {
      const { binding } = await browserBinding(app, request, reply, 'magic_link', request.body);
      const body = await initiateChallenge(app, request, 'magic_link', request.body.user_id, binding);
      return reply.status(202).send(body);
    },
  );

  app.get(
    MAGIC_LINK_PATH,
    {
      onRequest: blocklistGuard(app, 'confirm_page', 'magic_link'),
      schema: {
        summary: "The magic link's confirm page: shows a button, consumes nothing",
        querystring: LinkFields,
        response: { 200: HtmlPage, 400: ErrorBody, 403: ErrorBody },
      },
    },
    async (request, reply) => {
      const { challenge, token } = linkParams(request.query);
      // browsers hold the form's redirect to form-action too: the app's redirect URI is allowed
      const bound = await loadBoundChallenge(app.warden.db, challenge);
      const landsOn = bound?.redirect_uri ? ` ${new URL(bound.redirect_uri).origin}` : '';
      return reply
        .headers(PAGE_HEADERS)
        .header('Content-Security-Policy', CSP.replace("form-action 'self'", `form-action 'self'${landsOn}`))
        .type('text/html; charset=utf-8')
        .send(confirmPage(challenge, token));
    },
  );

  app.post(
    MAGIC_LINK_PATH,
    {
      config: { admission: { action: 'verify', method: 'magic_link' } },
      onRequest: blocklistGuard(app, 'verify', 'magic_link'),
      // a POST to the link itself (its query string) has no body at all
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        summary: "Confirm a magic link: the confirm page's form, or JSON, or the link's own query string",
        querystring: LinkFields,
        body: LinkFields,
        response: {
          200: {
            description: 'JSON callers: as OTP verify; the confirm form: an HTML page',
            content: { 'application/json': { schema: Verified }, 'text/html': { schema: HtmlPage } },
          },
          303: { description: "the device that asked: to the app's redirect URI with `code` and `state`", ...HtmlPage },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      // the confirm page's form: a person's browser, answered with pages and a redirect
      if (isForm(request)) {
        await sameSiteForm(request);
        let challenge: string;
        try {
          const link = linkParams(request.body, request.query);
          challenge = link.challenge;
          const verified = await verifyChallenge(app, request, 'magic_link', challenge, link.token);
          await trustThisDevice(app, request, reply, verified.userId);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          return sendPage(reply.headers(err.headers), err.statusCode, failedPage(err));
        }
        return landing(app, request, reply, challenge);
      }
      // body fields win over the query string
      const { challenge, token } = linkParams(request.body, request.query);
      reply.header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer');
      const verified = await verifyChallenge(app, request, 'magic_link', challenge, token);
      await trustThisDevice(app, request, reply, verified.userId);
      return verifiedAnswer(app, request, challenge);
    },
  );

  app.post(
    `${base}/resend`,
    {
      onRequest: blocklistGuard(app, 'resend', 'magic_link'),
      preValidation: jsonOnly,
      schema: { body: ResendBody, response: { 202: Resent, ...errorResponses } },
    },
    async (request, reply) => {
      const body = await resendChallenge(app, request, 'magic_link', request.body.challenge_id.toLowerCase());
      return reply.status(202).send(body);
    },
  );
};

export default magicLinkRoutes;
