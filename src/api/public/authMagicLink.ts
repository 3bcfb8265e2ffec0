import { type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { MAGIC_TOKEN_PATTERN } from '../../auth/crypto';
import { escapeHtml, MAGIC_LINK_PATH } from '../../auth/messages';
import { ApiError } from '../errors';
import { captchaGuard } from './authCaptcha';
import { blocklistGuard } from './authGuards';
import { initiateChallenge, resendChallenge, verifyChallenge } from './authFlow';
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

/** The confirm page: mail scanners prefetch links, so a GET only shows a button that POSTs. */
function confirmPage(challenge: string, token: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>Sign in to Warden</title>
</head>
<body>
<main>
<h1>Sign in to Warden</h1>
<p>Press the button to finish signing in. The link works once.</p>
<form method="post" action="${escapeHtml(MAGIC_LINK_PATH)}">
<input type="hidden" name="challenge" value="${escapeHtml(challenge)}">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<button type="submit">Sign in</button>
</form>
<p>If you did not ask to sign in, close this page: nothing happens until the button is pressed.</p>
</main>
</body>
</html>
`;
}

/** Email magic links: initiate, the confirm page (GET), the consuming POST, resend. */
const magicLinkRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const base = '/browser/api/v1/identity/auth/magic-link';
  // the abuse runbook's CAPTCHA mode (a no-op while it is off)
  app.addHook('preHandler', captchaGuard(app, 'magic_link'));

  app.post(
    `${base}/initiate`,
    {
      onRequest: blocklistGuard(app, 'initiate', 'magic_link'),
      schema: { body: InitiateBody, response: { 202: Initiated, ...errorResponses } },
    },
    async (request, reply) => {
      const body = await initiateChallenge(app, request, 'magic_link', request.body.user_id);
      return reply.status(202).send(body);
    },
  );

  app.get(MAGIC_LINK_PATH, { onRequest: blocklistGuard(app, 'confirm_page', 'magic_link') }, async (request, reply) => {
    const { challenge, token } = linkParams(request.query);
    return reply
      .header('Cache-Control', 'no-store')
      .header('Pragma', 'no-cache')
      .header('Referrer-Policy', 'no-referrer')
      .header('X-Content-Type-Options', 'nosniff')
      .header('X-Frame-Options', 'DENY')
      .header(
        'Content-Security-Policy',
        "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      )
      .type('text/html; charset=utf-8')
      .send(confirmPage(challenge, token));
  });

  app.post(
    MAGIC_LINK_PATH,
    {
      onRequest: blocklistGuard(app, 'verify', 'magic_link'),
      schema: { response: { 200: Verified, ...errorResponses } },
    },
    async (request, reply) => {
      // body fields win over the query string; a form post from the confirm page has only a body
      const { challenge, token } = linkParams(request.body, request.query);
      reply.header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer');
      return verifyChallenge(app, request, 'magic_link', challenge, token);
    },
  );

  app.post(
    `${base}/resend`,
    {
      onRequest: blocklistGuard(app, 'resend', 'magic_link'),
      schema: { body: ResendBody, response: { 202: Resent, ...errorResponses } },
    },
    async (request, reply) => {
      const body = await resendChallenge(app, request, 'magic_link', request.body.challenge_id.toLowerCase());
      return reply.status(202).send(body);
    },
  );
};

export default magicLinkRoutes;
