/**
 * The messages people read (src/auth/messages.ts, templates/): the language chosen for each
 * user, the origin-bound last line of the SMS, HTML escaping, and every shipped locale read
 * back by the same parsers the canary and the tests use.
 */
import { describe, expect, it } from 'vitest';
import { resolveLocale } from '../../src/auth/messageCatalog';
import {
  magicLinkUrl,
  renderMagicLinkEmail,
  renderOtpSms,
  shippedMessageSettings,
  webOtpHost,
  type MessageSettings,
} from '../../src/auth/messages';
import { findMagicLinks } from '../../src/canary/mail';

const CODE = '042917';
const BASE = 'https://login.example.com';
const CHALLENGE = '0b6f3a52-6c1e-4f7e-9a51-2c4d8e0f1a23';
const TOKEN = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5'.slice(0, 43);
const LINK = magicLinkUrl(BASE, CHALLENGE, TOKEN);
const NOW = new Date('2025-06-01T12:00:00Z');
const IN_5_MIN = new Date(NOW.getTime() + 300_000);
/** how Chromium reads the origin-bound code out of a message (content/browser/sms/sms_parser.cc) */
const CHROME_OTP = /(?:^|\s)@([a-zA-Z0-9.-]+) #([^#\s]+)(?: @([a-zA-Z0-9.-]+))?/;
const SHIPPED = ['de', 'en', 'es', 'fr', 'pt-BR'];

const sms = (locales: Array<string | null>, settings?: MessageSettings) =>
  renderOtpSms(CODE, IN_5_MIN, { locales, now: NOW, settings, webOtpHost: 'shop.example.com' });
const languageOf = (body: string) =>
  body.startsWith('Your')
    ? 'en'
    : body.startsWith('Tu ')
      ? 'es'
      : body.startsWith('Seu ')
        ? 'pt-BR'
        : body.startsWith('Votre')
          ? 'fr'
          : body.startsWith('Ihr')
            ? 'de'
            : '?';

describe('the language of a message', () => {
  const available = new Set(['en', 'es', 'pt', 'de', 'zh-Hant']);

  it('is the user’s, then the app’s, then the default', () => {
    expect(resolveLocale(available, ['es', 'de'], 'en')).toBe('es');
    expect(resolveLocale(available, [null, 'de'], 'en')).toBe('de');
    expect(resolveLocale(available, [undefined, null], 'en')).toBe('en');
    // a user's locale without templates gives way to the app's, not straight to the default
    expect(resolveLocale(available, ['it', 'de'], 'en')).toBe('de');
    expect(resolveLocale(available, ['it', 'ja'], 'en')).toBe('en');
  });

  it('drops the region, then the script, before moving on: pt-BR → pt → default', () => {
    expect(resolveLocale(available, ['pt-BR'], 'en')).toBe('pt');
    expect(resolveLocale(new Set(['en']), ['pt-BR'], 'en')).toBe('en');
    expect(resolveLocale(available, ['zh-Hant-TW'], 'en')).toBe('zh-Hant');
    expect(resolveLocale(available, ['de-AT', 'es'], 'en')).toBe('de');
  });

  it('takes a regional locale of the same language over the next preference, and ignores case and junk', () => {
    expect(resolveLocale(new Set(['en', 'pt-BR', 'es']), ['pt-PT', 'es'], 'en')).toBe('pt-BR');
    expect(resolveLocale(new Set(['en', 'pt-BR']), ['PT-br'], 'en')).toBe('pt-BR');
    expect(resolveLocale(available, ['English please', '', 'es'], 'en')).toBe('es');
  });

  it('picks the shipped templates accordingly', () => {
    expect(languageOf(sms(['pt-BR', 'es']))).toBe('pt-BR');
    expect(languageOf(sms([null, 'es']))).toBe('es');
    expect(languageOf(sms(['it', null]))).toBe('en');
    expect(languageOf(sms(['de-CH', 'fr']))).toBe('de');
    expect(languageOf(sms(['pt', null]))).toBe('pt-BR');
    const french = { ...shippedMessageSettings(), defaultLocale: 'fr' };
    expect(languageOf(sms(['it', 'ja'], french))).toBe('fr');
  });
});

describe('the SMS', () => {
  it('ends with the origin-bound line `@host #code` that browsers read, in every locale', () => {
    for (const locale of SHIPPED) {
      const body = sms([locale]);
      const lines = body.split('\n');
      expect(lines.at(-1), locale).toBe(`@shop.example.com #${CODE}`);
      expect(lines.at(-2), locale).toBe('');
      expect(CHROME_OTP.exec(body)?.slice(1, 3), locale).toEqual(['shop.example.com', CODE]);
      // the code reads in the sentence too, and the first six digits are the code (what the
      // canary and the tests look for)
      expect(/(?<![0-9])([0-9]{6})(?![0-9])/.exec(body)?.[1], locale).toBe(CODE);
      expect(body, locale).toMatch(/Warden/);
      expect(body.length, locale).toBeLessThanOrEqual(160);
    }
    expect(sms(['en'])).toMatch(/^Your Warden sign-in code is 042917\. It expires in 5 minutes\. Never share/);
    expect(renderOtpSms(CODE, new Date(NOW.getTime() + 30_000), { now: NOW })).toMatch(/expires in 1 minute\./);
    expect(sms(['de'])).toContain('läuft in 5 Minuten ab');
  });

  it('stays in the GSM 7-bit alphabet in English, French and German (one segment), not in Spanish or Portuguese', () => {
    const gsm7 =
      '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
    const outside = (body: string) => [...body].filter((c) => !gsm7.includes(c));
    for (const locale of ['en', 'fr', 'de']) expect(outside(sms([locale])), locale).toEqual([]);
    // documented in docs/messages.md: these take UCS-2, two segments
    for (const locale of ['es', 'pt-BR']) expect(outside(sms([locale])).length, locale).toBeGreaterThan(0);
  });

  it('has no such line when there is no host to bind it to', () => {
    const body = renderOtpSms(CODE, IN_5_MIN, { now: NOW });
    expect(body).not.toContain('@');
    expect(CHROME_OTP.test(body)).toBe(false);
  });

  it('is bound to the app’s first web origin, else to Warden’s public host, never to a stand-in', () => {
    expect(webOtpHost(['https://shop.example.com:8443', 'https://m.shop.example.com'], BASE)).toBe('shop.example.com');
    expect(webOtpHost(['http://localhost:3000'], BASE)).toBe('localhost');
    expect(webOtpHost([], BASE)).toBe('login.example.com');
    expect(webOtpHost(null, 'http://127.0.0.1:8080')).toBe('127.0.0.1');
    // a host the format cannot carry: no line, and not Warden's host in its place
    expect(webOtpHost(['http://[::1]:3000'], BASE)).toBeUndefined();
    expect(webOtpHost(undefined, 'http://[::1]:8080')).toBeUndefined();
  });
});

describe('the magic-link email', () => {
  it('has a plain-text and an HTML part in every locale, each with the link the canary finds', () => {
    for (const locale of SHIPPED) {
      const email = renderMagicLinkEmail(LINK, IN_5_MIN, { locales: [locale], now: NOW });
      expect(email.subject, locale).toMatch(/Warden/);
      expect(email.subject, locale).not.toMatch(/[\r\n]/);
      expect(email.text, locale).toContain(LINK);
      expect(email.html, locale).toContain(`<html lang="${locale}" dir="ltr">`);
      expect(email.html, locale).not.toContain('{{');
      expect(email.html, locale).not.toContain('<!--');
      const found = findMagicLinks(
        [
          { type: 'text/plain', text: email.text },
          { type: 'text/html', text: email.html },
        ],
        `${BASE}/browser/api/v1/identity/auth/magic-link/verify`,
      );
      expect(found, locale).toEqual([{ challenge: CHALLENGE, token: TOKEN }]);
    }
  });

  it('shows a button and the link as text, with a hidden preheader, in HTML', () => {
    const { html } = renderMagicLinkEmail(LINK, IN_5_MIN, { now: NOW });
    const escaped = LINK.replace(/[&/=]/g, (c) => `&#${c.charCodeAt(0)};`);
    // the button and the link written out, both to the same escaped URL
    expect(html.split(`href="${escaped}"`)).toHaveLength(3);
    expect(html).toContain(`>${escaped}</a`);
    expect(html).toMatch(/>\s*Sign in\s*<\/a/);
    expect(html).toMatch(/display: none;[^>]*>\s*Your link to sign in to Warden\. It works once, within 5 minutes\./);
    expect(html).toContain('<meta name="color-scheme" content="light dark" />');
    expect(html).toContain('role="presentation"');
  });

  it('escapes every value in the HTML part and none in the text, and keeps the support line optional', () => {
    const settings: MessageSettings = {
      ...shippedMessageSettings(),
      productName: `<b onmouseover="x()">A&B's</b>`,
      supportEmail: 'help+me@example.com',
    };
    const email = renderMagicLinkEmail(LINK, IN_5_MIN, { settings, now: NOW });
    expect(email.html).not.toContain('<b onmouseover');
    expect(email.html).toContain('&#60;b onmouseover&#61;&#34;x()&#34;&#62;A&#38;B&#39;s&#60;&#47;b&#62;');
    expect(email.html).toContain('href="mailto:help+me@example.com"');
    expect(email.text).toContain(`Sign in to <b onmouseover="x()">A&B's</b> by opening this link:`);
    expect(email.text.split('\n').at(-1)).toBe('Questions? Write to help+me@example.com.');
    expect(email.subject).toBe(`Your <b onmouseover="x()">A&B's</b> sign-in link`);

    const none = renderMagicLinkEmail(LINK, IN_5_MIN, { now: NOW });
    expect(none.html).not.toContain('mailto:');
    expect(none.text).not.toMatch(/Questions|\n\n\n|[ \t]\n/);
    expect(none.text.split('\n').at(-1)).toMatch(/^If you did not ask to sign in/);
  });
});
