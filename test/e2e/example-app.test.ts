/**
 * The example relying app (examples/relying-app) signing users in with Warden, in a real
 * browser: Warden listening on a real port, the app registered on the admin API with its own
 * origin and /callback, Chromium (playwright-core) clicking through the app's page, Warden's
 * confirm page and the app's callback. The SMS code and the magic link come from the sandbox
 * outbox. A browser that did not start a sign-in (a link opened on another device) approves
 * it and gets nothing: the device that asked finishes it by polling.
 *
 * WARDEN_SCREENSHOTS=1 also rewrites the docs' screenshots (docs/img/example-sign-in.png,
 * docs/img/magic-link-confirm.png).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelyingApp, type RelyingApp } from '../../examples/relying-app/server';
import { freePort } from '../../src/dev/process';
import { messages, putRateLimits, waitFor, type OutboxMessage } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.WARDEN_SCREENSHOTS === '1';
const SCREENSHOT_DIR = path.resolve('docs/img');
const CLIENT_ID = 'example-app';
const USER = { sub: 'test-user', phone: '+15555550100', email: 'test-user@example.com' };
const STEP_MS = 15_000;

describe('the example relying app in a browser', () => {
  let h: Harness;
  let app: RelyingApp;
  let browser: Browser;
  let wardenUrl: string;

  beforeAll(async () => {
    // CI installs it; a machine without it fails here rather than skipping the browser tests
    if (!existsSync(CHROMIUM))
      throw new Error(
        `Chromium is not installed at ${CHROMIUM}: install the Debian package (apt-get install -y chromium) or set CHROMIUM_PATH`,
      );
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });

    const publicPort = await freePort();
    h = await startHarness({ listen: true, env: { WARDEN_PUBLIC_PORT: String(publicPort) } });
    wardenUrl = h.servers!.urls.public;
    // the magic links in the emails and the tokens' issuer are the listening public API
    expect(h.config.publicBaseUrl).toBe(wardenUrl);
    expect(h.config.issuer).toBe(wardenUrl);
    // every test signs test-user in: the default per-user limit is not what is under test
    await putRateLimits(h, { per_user: { max_attempts: 1000 }, per_ip: { max_attempts: 1000 } });

    // the app: its origin is its web origin, its /callback its one redirect URI
    const appPort = await freePort();
    const appUrl = `http://127.0.0.1:${appPort}`;
    const admin = (url: string, payload: Record<string, unknown>) =>
      h.admin.inject({ method: 'POST', url: `/admin/api/v1${url}`, headers: h.adminHeaders, payload });
    const registered = await admin('/apps', {
      client_id: CLIENT_ID,
      name: 'Example app',
      methods: ['sms_otp', 'magic_link'],
      redirect_uris: [`${appUrl}/callback`],
      web_origins: [appUrl],
      token_ttl_seconds: 600,
    });
    expect(registered.statusCode, registered.body).toBe(201);
    const key = await admin(`/apps/${CLIENT_ID}/keys`, { label: 'example app' });
    expect(key.statusCode, key.body).toBe(201);
    app = await startRelyingApp({
      wardenUrl,
      clientId: CLIENT_ID,
      apiKey: key.json<{ key: string }>().key,
      port: appPort,
      host: '127.0.0.1',
      pollIntervalMs: 300,
    });
    expect(app.url).toBe(appUrl);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await h?.close();
  });

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 720, height: 520 } });
    context.setDefaultTimeout(STEP_MS);
    return { context, page: await context.newPage() };
  }

  /** The first message to `to` that arrives after `action`. */
  async function messageAfter(to: string, action: () => Promise<void>): Promise<OutboxMessage> {
    const before = new Set((await messages(h, to)).map((m) => m.id));
    await action();
    return waitFor(`a message to ${to}`, async () => (await messages(h, to)).find((m) => !before.has(m.id)));
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    if (!SCREENSHOTS) return;
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, name) });
  }

  /** What the app's page says about this browser: "Signed in as …", or the sign-in page's status. */
  async function appStatus(page: Page): Promise<string> {
    await page.goto(app.url);
    return (await page.locator('#signed-in, #status').first().textContent())!.trim();
  }

  /** Waits for the app's signed-in page; on a timeout, says where the browser is instead. */
  async function signedInAs(page: Page): Promise<string> {
    try {
      await page.waitForSelector('#signed-in');
    } catch (err) {
      const text = await page.locator('body').innerText();
      throw new Error(`not signed in: ${page.url()} shows ${JSON.stringify(text)}`, { cause: err });
    }
    expect(page.url()).toBe(`${app.url}/`);
    return (await page.locator('#signed-in').textContent())!.trim();
  }

  /** Starts a magic-link sign-in on `page` and answers the link from the email. */
  async function requestLink(page: Page): Promise<string> {
    await page.goto(app.url);
    await page.fill('#user-id', USER.sub);
    const email = await messageAfter(USER.email, () => page.getByRole('button', { name: 'Email me a link' }).click());
    await page.locator('#check-email').waitFor({ state: 'visible' });
    const link = /https?:\/\/\S+\/magic-link\/verify\?\S+/.exec(email.body)?.[0];
    expect(link, email.body).toBeDefined();
    expect(link!.startsWith(`${wardenUrl}/`)).toBe(true);
    return link!;
  }

  it('signs in with a code sent by SMS', async () => {
    const { page } = await newPage();
    expect(await appStatus(page)).toBe('You are not signed in.');
    await page.fill('#user-id', USER.sub);
    await screenshot(page, 'example-sign-in.png');

    const sms = await messageAfter(USER.phone, () => page.getByRole('button', { name: 'Text me a code' }).click());
    const code = /\b(\d{6})\b/.exec(sms.body)?.[1];
    expect(code, sms.body).toBeDefined();
    await page.fill('#otp-code', code!);
    await page.locator('#otp').getByRole('button', { name: 'Sign in' }).click();

    expect(await signedInAs(page)).toBe(`Signed in as ${USER.sub}`);
    // the token's amr, as the app read it
    expect(await page.locator('#method').textContent()).toBe('Signed in with a code sent by text message.');
  });

  it('signs in with a magic link opened in the same browser', async () => {
    const { context, page } = await newPage();
    const link = await requestLink(page);

    // the email client opens the link in a new tab of the same browser
    const linkPage = await context.newPage();
    await linkPage.goto(link);
    expect(await linkPage.locator('h1').textContent()).toBe('Sign in to Warden');
    await screenshot(linkPage, 'magic-link-confirm.png');
    await linkPage.getByRole('button', { name: 'Sign in' }).click();

    // Warden sends the device that asked straight to the app's callback with its code
    expect(await signedInAs(linkPage)).toBe(`Signed in as ${USER.sub}`);
    expect(await linkPage.locator('#method').textContent()).toBe('Signed in with a link sent by email.');
    // and the tab that asked, still polling, lands signed in too
    expect(await signedInAs(page)).toBe(`Signed in as ${USER.sub}`);
  });

  it('a link opened on another device approves the sign-in there and signs in only the device that asked', async () => {
    const first = await newPage();
    const link = await requestLink(first.page);
    const challengeId = new URL(link).searchParams.get('challenge');

    // another browser (a phone) opens the link it did not ask for
    const other = await newPage();
    await other.page.goto(link);
    await other.page.getByRole('button', { name: 'Sign in' }).click();
    await other.page.locator('h1', { hasText: 'Sign-in approved' }).waitFor();
    expect(await other.page.locator('main').innerText()).toContain('Go back to the device where you started');
    // no redirect, no code: it stays on Warden's page
    expect(other.page.url().startsWith(`${wardenUrl}/`)).toBe(true);
    expect(other.page.url()).not.toContain('code=');

    // the device that asked, polling, gets the code and ends signed in
    expect(await signedInAs(first.page)).toBe(`Signed in as ${USER.sub}`);

    // the other browser has no session on the app
    expect(await appStatus(other.page)).toBe('You are not signed in.');
    expect(await other.page.evaluate(async () => (await fetch('/session')).json())).toEqual({ signed_in: false });
    // it cannot read the challenge (it holds no binding) ...
    const state = await other.page.evaluate(
      async (url) => (await fetch(url, { credentials: 'include' })).status,
      `${wardenUrl}/browser/api/v1/identity/auth/challenges/${challengeId}`,
    );
    expect(state).toBe(404);
    // ... and a callback it did not start signs nobody in
    await other.page.goto(`${app.url}/callback?code=${'A'.repeat(43)}&state=${'B'.repeat(43)}`);
    expect(await other.page.locator('h1').textContent()).toBe('Continue on the device where you started');
    expect(await appStatus(other.page)).toBe('You are not signed in.');
    // while the first browser stays signed in
    expect(await appStatus(first.page)).toBe(`Signed in as ${USER.sub}`);
  });
});
