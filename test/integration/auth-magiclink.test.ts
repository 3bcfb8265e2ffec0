import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeRow, initiate, messagesFor, post, secretFor, waitFor } from '../helpers/authClient';
import { raiseRateLimits } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const LINK_PATH = '/browser/api/v1/identity/auth/magic-link/verify';

/** Email magic links end to end (SendGrid SDK into the sandbox), and the no-enumeration promise. */
describe('email magic links', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { WARDEN_PUBLIC_BASE_URL: 'https://login.warden.example' } });
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());

  it('emails a link; a GET shows a confirm page and consumes nothing; the form POST consumes it once', async () => {
    const res = await initiate(h, 'magic-link', 'test-user');
    expect(res.statusCode).toBe(202);
    const { challenge_id } = res.json<{ challenge_id: string }>();
    const token = await secretFor(h, challenge_id);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [email] = await messagesFor(h, challenge_id);
    expect(email).toMatchObject({ channel: 'email', provider: 'sendgrid', to: 'test-user@example.com' });
    expect(email!.body).toContain(`https://login.warden.example${LINK_PATH}?challenge=${challenge_id}&token=${token}`);

    for (let i = 0; i < 2; i += 1) {
      const page = await h.public.inject({
        method: 'GET',
        url: `${LINK_PATH}?challenge=${challenge_id}&token=${token}`,
      });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.headers['cache-control']).toBe('no-store');
      expect(page.headers['referrer-policy']).toBe('no-referrer');
      expect(page.body).toContain(
        `<form method="post" action="&#47;browser&#47;api&#47;v1&#47;identity&#47;auth&#47;magic-link&#47;verify">`,
      );
      expect(page.body).toContain(`name="challenge" value="${challenge_id}"`);
      expect(page.body).toContain('name="token" value="');
    }
    // the provider's acceptance reaches the outbox before the workflow records the outcome
    const afterGets = await waitFor('the delivery outcome', async () => {
      const row = await challengeRow(h, challenge_id);
      return row?.delivery_outcome ? row : undefined;
    });
    expect(afterGets).toMatchObject({ status: 'open', delivery_status: 'delivered' });
    expect(afterGets!.attempts).toBe(0);

    const form = await h.public.inject({
      method: 'POST',
      url: LINK_PATH,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ challenge: challenge_id, token }).toString(),
    });
    // a person's browser gets pages; this one did not start the sign-in (no device cookie)
    expect(form.statusCode).toBe(200);
    expect(form.headers['content-type']).toMatch(/^text\/html/);
    expect(form.body).toContain('Sign-in approved');
    expect(await challengeRow(h, challenge_id)).toMatchObject({ status: 'verified', sealed_secret: null });

    const again = await h.public.inject({
      method: 'POST',
      url: LINK_PATH,
      payload: { challenge: challenge_id, token },
    });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'already_used' });
  });

  it('accepts JSON and query-string POSTs, and answers a wrong token with 401 invalid_token', async () => {
    const { challenge_id } = (await initiate(h, 'magic-link', 'bob')).json<{ challenge_id: string }>();
    const token = await secretFor(h, challenge_id);
    const forged = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    const bad = await h.public.inject({
      method: 'POST',
      url: LINK_PATH,
      payload: { challenge: challenge_id, token: forged },
    });
    expect(bad.statusCode).toBe(401);
    expect(bad.json()).toMatchObject({ error: 'invalid_token', remaining_attempts: 4 });
    const ok = await h.public.inject({ method: 'POST', url: `${LINK_PATH}?challenge=${challenge_id}&token=${token}` });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: 'verified' });
  });

  it('gives unknown users and users without the needed contact the same 202 and sends them nothing', async () => {
    const cases: Array<['otp' | 'magic-link', string, boolean]> = [
      ['otp', 'test-user-2', true],
      ['otp', 'no-such-user-4711', false],
      ['otp', 'email-only', false],
      ['magic-link', 'test-user-2', true],
      ['magic-link', 'no-such-user-4711', false],
      ['magic-link', 'phone-only', false],
    ];
    const answers = [];
    for (const [method, userId, deliverable] of cases) {
      const res = await initiate(h, method, userId);
      expect(res.statusCode, `${method} ${userId}`).toBe(202);
      const body = res.json<{ challenge_id: string; expires_at: string }>();
      expect(Object.keys(body).sort()).toEqual(['challenge_id', 'expires_at']);
      answers.push({ method, userId, deliverable, ...body, headers: Object.keys(res.headers).sort() });
    }
    // the same headers for every answer
    expect(new Set(answers.map((a) => a.headers.join(','))).size).toBe(1);

    for (const a of answers) {
      const row = await waitFor(`delivery outcome of ${a.userId}`, async () => {
        const r = await challengeRow(h, a.challenge_id);
        return r?.delivery_outcome ? r : undefined;
      });
      expect(row.delivery_outcome).toBe(a.deliverable ? 'sent' : 'no_recipient');
      expect(await messagesFor(h, a.challenge_id)).toHaveLength(a.deliverable ? 1 : 0);
      // and a guess gets the same answer as against a real challenge
      const guess =
        a.method === 'otp'
          ? await post(h, '/otp/verify', { challenge_id: a.challenge_id, otp: '000000' })
          : await h.public.inject({
              method: 'POST',
              url: LINK_PATH,
              payload: { challenge: a.challenge_id, token: 'A'.repeat(43) },
            });
      expect(guess.statusCode).toBe(401);
      expect(guess.json()).toMatchObject({ remaining_attempts: 4 });
    }
  });

  it('answers malformed input on every magic-link route with a 400 JSON error', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const gets = [
      LINK_PATH,
      `${LINK_PATH}?challenge=${id}`,
      `${LINK_PATH}?challenge=nope&token=${'A'.repeat(43)}`,
      `${LINK_PATH}?challenge=${id}&token=%3Cscript%3Ealert(1)%3C%2Fscript%3E`,
      `${LINK_PATH}?challenge=${id}&token=${'A'.repeat(44)}`,
    ];
    for (const url of gets) {
      const res = await h.public.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
      expect(res.body).not.toContain('<script>');
    }
    const posts: unknown[] = [
      {},
      { challenge: id },
      { challenge: id, token: 42 },
      { challenge: [id], token: 'A'.repeat(43) },
    ];
    for (const payload of posts) {
      const res = await h.public.inject({
        method: 'POST',
        url: LINK_PATH,
        payload: payload as Record<string, unknown>,
      });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
    }
    for (const [path, payload] of [
      ['/magic-link/initiate', {}],
      ['/magic-link/initiate', { user_id: ['a'] }],
      ['/magic-link/resend', { challenge_id: 'x' }],
    ] as const) {
      const res = await post(h, path, payload);
      expect(res.statusCode, path).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_request' });
    }
  });
});
