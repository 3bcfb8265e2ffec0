/**
 * An example relying application: a web app that signs its users in with Warden.
 *
 * The browser talks to Warden directly (initiate, the OTP verify, polling a magic link's
 * challenge), so that Warden can set its device cookie on it; this server keeps everything
 * secret: the PKCE verifier, the state and the nonce of each sign-in attempt (in a server-side
 * session), and the app's API key. A sign-in ends at `/callback`, which checks the state
 * against the session, exchanges the code at Warden's /oauth/token with the verifier and the
 * key, verifies the id_token against Warden's JWKS (issuer, audience, nonce), and only then
 * marks the session signed in.
 *
 * Run it against `npm start` (examples/relying-app/README.md):
 *
 *   WARDEN_APP_KEY=... node --import tsx examples/relying-app/server.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export interface RelyingAppOptions {
  /** Warden's public API, e.g. http://127.0.0.1:8080 */
  wardenUrl: string;
  /** the app's client_id, as registered on Warden's admin API */
  clientId: string;
  /** one of the app's API keys (POST /admin/api/v1/apps/:client_id/keys) */
  apiKey: string;
  /** the `iss` Warden's tokens carry (WARDEN_ISSUER); Warden's URL when not given */
  issuer?: string;
  /** 0 (the default): any free port */
  port?: number;
  /** 127.0.0.1 by default */
  host?: string;
  /**
   * the app's origin as browsers reach it (its registered web origin; `${publicUrl}/callback`
   * is its redirect URI): the listening address when not given
   */
  publicUrl?: string;
  /** how often the sign-in page polls a magic link's challenge */
  pollIntervalMs?: number;
}

export interface RelyingApp {
  /** the app's origin, e.g. http://127.0.0.1:3000: its web origin, and `${url}/callback` its redirect URI */
  url: string;
  close(): Promise<void>;
}

type Method = 'sms_otp' | 'magic_link';

/** One sign-in attempt of a browser: what only this server knows of it. */
interface Attempt {
  state: string;
  verifier: string;
  nonce: string;
  method: Method;
  createdAt: number;
  /** set once a callback of this attempt signed the session in */
  done: boolean;
  /** callbacks of one attempt run one at a time (a magic link's redirect and the polling tab may both bring a code) */
  queue: Promise<unknown>;
}

interface Session {
  id: string;
  user?: { sub: string; amr: string[]; authTime?: number };
  attempts: Map<string, Attempt>;
  touchedAt: number;
}

const SESSION_COOKIE = 'example_session';
const SESSION_IDLE_MS = 12 * 3600_000;
/** a sign-in attempt lives as long as a magic link may (Warden's default is 15 minutes) */
const ATTEMPT_TTL_MS = 20 * 60_000;
const MAX_ATTEMPTS_PER_SESSION = 5;
/** how long a callback whose code was superseded waits for the attempt's other callback */
const SUPERSEDED_WAIT_MS = 10_000;

const SIGN_IN_PAGE = readFileSync(path.join(__dirname, 'sign-in.html'), 'utf8');

const random = (bytes = 32) => randomBytes(bytes).toString('base64url');
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`=/]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Example app</title>
<style>body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; }</style>
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

const HTML_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.status(status).headers(HTML_HEADERS).type('text/html; charset=utf-8').send(html);
}

/** The refusal Warden answered with: `{ error, message, reason? }`. */
interface WardenError {
  error?: string;
  message?: string;
  reason?: string;
}

export async function startRelyingApp(options: RelyingAppOptions): Promise<RelyingApp> {
  const wardenUrl = options.wardenUrl.replace(/\/+$/, '');
  const issuer = (options.issuer ?? wardenUrl).replace(/\/+$/, '');
  const pollIntervalMs = options.pollIntervalMs ?? 1500;
  // fetched once, cached, and fetched again when a token names a key it does not know
  const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', wardenUrl));
  const sessions = new Map<string, Session>();
  let redirectUri = '';

  const app = Fastify({ logger: false });
  await app.register(cookie);
  await app.register(formbody);

  // ---- sessions: a random id in an HttpOnly cookie of the app's own origin, the rest in memory

  const setSessionCookie = (reply: FastifyReply, id: string) =>
    reply.setCookie(SESSION_COOKIE, id, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: redirectUri.startsWith('https:'),
    });

  function sessionOf(request: FastifyRequest): Session | undefined {
    const now = Date.now();
    for (const [id, s] of sessions) if (now - s.touchedAt > SESSION_IDLE_MS) sessions.delete(id);
    const found = sessions.get(request.cookies[SESSION_COOKIE] ?? '');
    if (!found) return undefined;
    found.touchedAt = now;
    for (const [state, a] of found.attempts) if (now - a.createdAt > ATTEMPT_TTL_MS) found.attempts.delete(state);
    return found;
  }

  /**
   * Every sign-in attempt gets a session id of its own (the browser's pending attempts come
   * along): an id someone planted in this browser before it signs in is never the one that
   * ends up signed in.
   */
  function freshSession(reply: FastifyReply, previous: Session | undefined): Session {
    if (previous) sessions.delete(previous.id);
    const created: Session = { id: random(), attempts: previous?.attempts ?? new Map(), touchedAt: Date.now() };
    sessions.set(created.id, created);
    setSessionCookie(reply, created.id);
    return created;
  }

  // ---- pages

  app.get('/', async (request, reply) => {
    const user = sessionOf(request)?.user;
    if (!user) return sendPage(reply, 200, SIGN_IN_PAGE);
    const how = user.amr.includes('otp') ? 'a code sent by text message' : 'a link sent by email';
    return sendPage(
      reply,
      200,
      page(
        'Example app',
        `<p id="signed-in">Signed in as <strong>${escapeHtml(user.sub)}</strong></p>
<p id="method">Signed in with ${how}.</p>
<form method="post" action="/sign-out"><button type="submit">Sign out</button></form>`,
      ),
    );
  });

  /** For the sign-in page: whether this browser is signed in (another tab may have finished). */
  app.get('/session', async (request, reply) => {
    const user = sessionOf(request)?.user;
    reply.header('cache-control', 'no-store');
    return user ? { signed_in: true, sub: user.sub } : { signed_in: false };
  });

  app.post('/sign-out', async (request, reply) => {
    const session = sessionOf(request);
    if (session) sessions.delete(session.id);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/', 303);
  });

  // ---- sign-in

  /**
   * A new attempt: the PKCE verifier, state and nonce are made and kept here; the page gets
   * what Warden's initiate needs, which is the S256 challenge, never the verifier.
   */
  app.post<{ Body: { method?: string } }>('/start', async (request, reply) => {
    // JSON only: another site's form cannot start attempts in this browser's session
    if (!/^application\/json\b/i.test(request.headers['content-type'] ?? ''))
      return reply.status(415).send({ error: 'unsupported_media_type' });
    const method = request.body?.method;
    if (method !== 'sms_otp' && method !== 'magic_link') return reply.status(400).send({ error: 'invalid_method' });
    const session = freshSession(reply, sessionOf(request));
    while (session.attempts.size >= MAX_ATTEMPTS_PER_SESSION) {
      session.attempts.delete(session.attempts.keys().next().value!);
    }
    const attempt: Attempt = {
      state: random(),
      verifier: random(),
      nonce: random(),
      method,
      createdAt: Date.now(),
      done: false,
      queue: Promise.resolve(),
    };
    session.attempts.set(attempt.state, attempt);
    reply.header('cache-control', 'no-store');
    return {
      warden_url: wardenUrl,
      client_id: options.clientId,
      redirect_uri: redirectUri,
      method,
      state: attempt.state,
      nonce: attempt.nonce,
      code_challenge: s256(attempt.verifier),
      code_challenge_method: 'S256',
      poll_interval_ms: pollIntervalMs,
    };
  });

  /** The code for a signed-in user: exchanged once, with the key and the verifier; the token verified. */
  async function exchange(code: string, attempt: Attempt) {
    const basic = Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.apiKey)}`);
    const res = await fetch(`${wardenUrl}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic.toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: attempt.verifier,
        redirect_uri: redirectUri,
      }),
    });
    const body = (await res.json().catch(() => ({}))) as { id_token?: string } & WardenError;
    if (!res.ok || typeof body.id_token !== 'string')
      return { ok: false as const, error: body.reason ?? body.error ?? `HTTP ${res.status}`, message: body.message };
    const { payload } = await jwtVerify(body.id_token, jwks, {
      issuer,
      audience: options.clientId,
      algorithms: ['ES256'],
    });
    if (payload.nonce !== attempt.nonce) throw new Error('the token is not for this sign-in (nonce)');
    if (typeof payload.sub !== 'string' || !payload.sub) throw new Error('the token names no user');
    const amr = Array.isArray(payload.amr) ? payload.amr.filter((v): v is string => typeof v === 'string') : [];
    return {
      ok: true as const,
      user: { sub: payload.sub, amr, authTime: typeof payload.auth_time === 'number' ? payload.auth_time : undefined },
    };
  }

  const elsewhere = () =>
    page(
      'Continue on the device where you started',
      `<p>This browser did not start this sign-in, so it cannot finish it here.</p>
<p>If you approved a sign-in from an email, go back to the device where you asked for the link: it signs in there.</p>
<p><a href="/">Start a new sign-in here</a></p>`,
    );
  const failed = (message: string) =>
    page(
      'Sign-in failed',
      `<p>${escapeHtml(message)}</p>
<p><a href="/">Try again</a></p>`,
    );

  /** Where every sign-in ends: GET from Warden's magic-link redirect, POST from the sign-in page. */
  async function callback(request: FastifyRequest, reply: FastifyReply, params: Record<string, unknown>) {
    const session = sessionOf(request);
    const state = typeof params.state === 'string' ? params.state : undefined;
    const attempt = state !== undefined ? session?.attempts.get(state) : undefined;
    // a browser without this attempt's state (another device, a link it did not ask for): no session
    if (!session || !attempt) return sendPage(reply, 400, elsewhere());
    const code = params.code;
    if (typeof code !== 'string' || code === '') return sendPage(reply, 400, failed('Warden sent no code.'));

    let outcome: 'signed_in' | 'superseded' | { error: string };
    try {
      outcome = await serialized(attempt, async () => {
        // the attempt's other callback got there first
        if (attempt.done) return 'signed_in' as const;
        const result = await exchange(code, attempt);
        if (!result.ok) {
          // another tab of this browser holds a newer code of the same sign-in: it finishes it
          if (result.error === 'superseded' || result.error === 'already_exchanged') return 'superseded' as const;
          return { error: `Warden refused the code (${result.error}).` };
        }
        session.user = result.user;
        attempt.done = true;
        return 'signed_in' as const;
      });
    } catch (err) {
      request.log.warn({ err }, 'the id_token did not verify');
      return sendPage(reply, 400, failed('The sign-in could not be verified.'));
    }
    if (outcome === 'superseded') {
      const deadline = Date.now() + SUPERSEDED_WAIT_MS;
      while (!attempt.done && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      outcome = attempt.done ? 'signed_in' : { error: 'This sign-in was already used.' };
    }
    if (outcome !== 'signed_in') return sendPage(reply, 400, failed(outcome.error));
    // the attempt is kept (done) a little longer: its other callback, if any, lands on / too
    setTimeout(() => session.attempts.delete(attempt.state), 60_000).unref();
    return reply.headers(HTML_HEADERS).redirect('/', 303);
  }

  app.get('/callback', async (request, reply) => callback(request, reply, request.query as Record<string, unknown>));
  app.post('/callback', async (request, reply) =>
    callback(request, reply, (request.body ?? {}) as Record<string, unknown>),
  );

  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the example app is not listening');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = (options.publicUrl ?? `http://${host}:${address.port}`).replace(/\/+$/, '');
  redirectUri = `${url}/callback`;
  return { url, close: () => app.close() };
}

/** Runs `work` after the attempt's earlier callbacks have finished. */
function serialized<T>(attempt: Attempt, work: () => Promise<T>): Promise<T> {
  const run = attempt.queue.then(work, work);
  attempt.queue = run.catch(() => undefined);
  return run;
}

if (require.main === module) {
  const apiKey = process.env.WARDEN_APP_KEY;
  if (!apiKey) {
    process.stderr.write('set WARDEN_APP_KEY to the key of the app (examples/relying-app/README.md)\n');
    process.exit(1);
  }
  startRelyingApp({
    wardenUrl: process.env.WARDEN_URL ?? 'http://127.0.0.1:8080',
    clientId: process.env.WARDEN_CLIENT_ID ?? 'example-app',
    apiKey,
    issuer: process.env.WARDEN_ISSUER,
    port: Number(process.env.PORT ?? 3000),
    host: process.env.HOST ?? '127.0.0.1',
    publicUrl: process.env.APP_URL,
  }).then(
    (started) => process.stdout.write(`example app on ${started.url} (sign-ins return to ${started.url}/callback)\n`),
    (err: unknown) => {
      process.stderr.write(`the example app could not start: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
