/**
 * Messages people read, end to end: sign-ins through the public API deliver, through the
 * providers' SDKs into the sandbox outbox, an SMS in the user's language (else the app's, else
 * the default) whose last line binds the code to the right site, and an email with a plain-text
 * and an HTML part; the operator's templates, product name and support address are used.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeRow, messagesFor, post, secretFor, type OutboxMessage } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

const LINK_PATH = '/browser/api/v1/identity/auth/magic-link/verify';
const PUBLIC = 'https://login.acme.example';
type Email = OutboxMessage & { html?: string };

describe('messages people read', () => {
  let h: Harness;
  beforeAll(async () => {
    const templates = mkdtempSync(path.join(os.tmpdir(), 'warden-templates-'));
    // one key of one shipped locale, overridden by the operator
    writeFileSync(path.join(templates, 'de.yaml'), 'sms: "{{product}}-Code: {{code}} (gültig {{expires_in}})."\n');
    h = await startHarness({
      env: {
        WARDEN_PUBLIC_BASE_URL: PUBLIC,
        WARDEN_PRODUCT_NAME: 'Acme',
        WARDEN_SUPPORT_EMAIL: 'help@acme.example',
        WARDEN_DEFAULT_LOCALE: 'fr',
        WARDEN_TEMPLATES_DIR: templates,
      },
    });
    const admin = (url: string, payload: Record<string, unknown>) =>
      h.admin.inject({ method: 'POST', url: `/admin/api/v1${url}`, headers: h.adminHeaders, payload });
    const shop = await admin('/apps', {
      client_id: 'shop',
      name: 'Shop',
      methods: ['sms_otp', 'magic_link'],
      web_origins: ['https://shop.acme.example'],
      locale: 'es',
    });
    expect(shop.statusCode, shop.body).toBe(201);
    expect(shop.json()).toMatchObject({ client_id: 'shop', locale: 'es' });
    for (const user of [
      { sub: 'ana', phone: '+12025550181', locale: 'pt-BR' },
      { sub: 'bruno', email: 'bruno@example.com' },
      { sub: 'carla', phone: '+12025550182', locale: 'it' },
      { sub: 'dieter', phone: '+12025550183', locale: 'de-AT' },
    ]) {
      const res = await admin('/users', user);
      expect(res.statusCode, res.body).toBe(201);
    }
  });
  afterAll(async () => h?.close());

  const start = async (method: 'otp' | 'magic-link', body: Record<string, unknown>) => {
    const res = await post(h, `/${method}/initiate`, body);
    expect(res.statusCode, res.body).toBe(202);
    return res.json<{ challenge_id: string }>().challenge_id;
  };
  const sent = async (challengeId: string): Promise<Email> => {
    await secretFor(h, challengeId);
    return (await messagesFor(h, challengeId))[0]!;
  };

  it('texts the code in the user’s language, bound to the app’s web origin, and the code verifies', async () => {
    const id = await start('otp', { user_id: 'ana', client_id: 'shop' });
    const code = await secretFor(h, id);
    const sms = await sent(id);
    expect(sms).toMatchObject({ channel: 'sms', to: '+12025550181' });
    expect(sms.body).toBe(
      `Seu código de acesso para Acme é ${code}. Ele expira em 5 minutos. Não compartilhe com ninguém.\n\n` +
        `@shop.acme.example #${code}`,
    );
    const verified = await post(h, '/otp/verify', { challenge_id: id, otp: code });
    expect(verified.statusCode, verified.body).toBe(200);
    expect(await challengeRow(h, id)).toMatchObject({ status: 'verified' });
  });

  it('emails a user without a locale in the app’s, with a plain-text and an HTML part that both carry the link', async () => {
    const id = await start('magic-link', { user_id: 'bruno', client_id: 'shop' });
    const token = await secretFor(h, id);
    const email = await sent(id);
    const link = `${PUBLIC}${LINK_PATH}?challenge=${id}&token=${token}`;
    expect(email).toMatchObject({ channel: 'email', to: 'bruno@example.com' });
    expect(email.subject).toBe('Tu enlace para iniciar sesión en Acme');
    expect(email.body).toMatch(/^Inicia sesión en Acme abriendo este enlace:\n\n/);
    expect(email.body).toContain(`\n${link}\n`);
    expect(email.body).toContain('¿Tienes alguna pregunta? Escríbenos a help@acme.example.');
    const html = email.html!;
    expect(html).toContain('<html lang="es" dir="ltr">');
    const escaped = link.replace(/[&/=]/g, (c) => `&#${c.charCodeAt(0)};`);
    expect(html.split(`href="${escaped}"`)).toHaveLength(3);
    expect(html).toMatch(/>\s*Iniciar sesión\s*<\/a/);
    expect(html).toContain('href="mailto:help@acme.example"');
    expect(html).not.toContain('{{');

    // the link works: its confirm page consumes it
    const confirmed = await h.public.inject({
      method: 'POST',
      url: LINK_PATH,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ challenge: id, token }).toString(),
    });
    expect(confirmed.statusCode).toBe(200);
    expect(await challengeRow(h, id)).toMatchObject({ status: 'verified' });
  });

  it('falls back to the default locale and Warden’s own host for an app without either', async () => {
    // carla's Italian has no templates, and the default app has no locale and no web origins
    const id = await start('otp', { user_id: 'carla' });
    const code = await secretFor(h, id);
    expect((await sent(id)).body).toBe(
      `Votre code de connexion Acme est ${code}. Il expire dans 5 minutes. Ne le communiquez à personne.\n\n` +
        `@login.acme.example #${code}`,
    );
  });

  it('uses the operator’s template for its key, in a regional variant of its locale', async () => {
    const id = await start('otp', { user_id: 'dieter' });
    const code = await secretFor(h, id);
    expect((await sent(id)).body).toBe(`Acme-Code: ${code} (gültig 5 Minuten).\n\n@login.acme.example #${code}`);
  });

  it('keeps an app’s locale through the admin API: changed, cleared, and refused when it is no language tag', async () => {
    const patch = (payload: Record<string, unknown>) =>
      h.admin.inject({ method: 'PATCH', url: '/admin/api/v1/apps/shop', headers: h.adminHeaders, payload });
    expect((await patch({ locale: 'pt-BR' })).json()).toMatchObject({ locale: 'pt-BR' });
    const bad = await patch({ locale: 'Spanish' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request', field: 'locale' });
    expect((await patch({ locale: null })).json()).toMatchObject({ locale: null });
    expect(await h.sql("SELECT locale FROM apps WHERE client_id = 'shop'")).toEqual([{ locale: null }]);
    const audit = await h.sql<{ details: { fields: string[] } }>(
      "SELECT details FROM audit_events WHERE event_type = 'identity.app.updated' ORDER BY id",
    );
    expect(audit.map((a) => a.details.fields)).toEqual([['locale'], ['locale']]);
  });
});
