/**
 * Reading the canary's magic link out of an email (src/canary/mail.ts): the raw MIME an SES
 * receipt carries (nested multiparts, quoted-printable with soft breaks, base64, charsets) and
 * the text / HTML fields of a SendGrid Inbound Parse post. Only links to Warden's own confirm
 * page, with a well-formed challenge and token, are ever found.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderMagicLinkEmail, magicLinkUrl } from '../../src/auth/messages';
import { addressesIn, decodeHtmlEntities, findMagicLinks, mimeTexts } from '../../src/canary/mail';
import { quotedPrintable } from '../../src/sandbox/callbacks';

const BASE = 'https://auth.example.com';
const CONFIRM = `${BASE}/browser/api/v1/identity/auth/magic-link/verify`;
const CHALLENGE = '0b6f3a52-6c1e-4f7e-9a51-2c4d8e0f1a23';
const TOKEN = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5'.slice(0, 43);
const link = magicLinkUrl(BASE, CHALLENGE, TOKEN);
const email = renderMagicLinkEmail(link, new Date(Date.now() + 15 * 60_000));

function multipart(text: string, html: string): string {
  return [
    'From: Warden <no-reply@auth.example.com>',
    'To: canary@ops.example',
    'Subject: Your Warden sign-in link',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed;',
    '\tboundary="outer"',
    '',
    'This is a multi-part message.',
    '--outer',
    'Content-Type: multipart/alternative; boundary=inner',
    '',
    '--inner',
    'Content-Type: text/plain; charset="utf-8"',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(text),
    '--inner',
    'Content-Type: text/html; charset=UTF-8',
    'Content-Transfer-Encoding: base64',
    '',
    ...(Buffer.from(html, 'utf8')
      .toString('base64')
      .match(/.{1,76}/g) ?? []),
    '--inner--',
    '--outer',
    'Content-Type: application/pdf; name="a.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    'JVBERi0xLjQK',
    '--outer--',
    '',
  ].join('\r\n');
}

describe('canary mail', () => {
  it('reads both bodies of a nested multipart message, quoted-printable and base64', () => {
    const texts = mimeTexts(Buffer.from(multipart(email.text, email.html), 'utf8'));
    expect(texts.map((t) => t.type)).toEqual(['text/plain', 'text/html']);
    expect(texts[0]!.text).toBe(email.text.replace(/\n/g, '\r\n'));
    expect(texts[1]!.text).toBe(email.html);
    // the quoted-printable part really was cut (the link is longer than a line) and escaped
    expect(quotedPrintable(email.text)).toMatch(/=\r\n/);
    expect(quotedPrintable(email.text)).toContain('=3D');
    expect(findMagicLinks(texts, CONFIRM)).toEqual([{ challenge: CHALLENGE, token: TOKEN }]);
  });

  it('finds the link in the HTML alone, its href entity-encoded as Warden writes it', () => {
    expect(email.html).not.toContain(link);
    expect(decodeHtmlEntities(email.html)).toContain(link);
    expect(findMagicLinks([{ type: 'text/html', text: email.html }], CONFIRM)).toEqual([
      { challenge: CHALLENGE, token: TOKEN },
    ]);
  });

  it('reads a single-part message in another charset, and 8-bit UTF-8', () => {
    const latin1 = Buffer.concat([
      Buffer.from('Content-Type: text/plain; charset=iso-8859-1\r\n\r\nCaf', 'latin1'),
      Buffer.from([0xe9]),
      Buffer.from(` ${link}\r\n`, 'latin1'),
    ]);
    expect(mimeTexts(latin1)).toEqual([{ type: 'text/plain', text: `Café ${link}\r\n` }]);
    const utf8 = Buffer.from(`Content-Type: text/plain; charset=utf-8\r\n\r\nCafé ${link}`, 'utf8');
    expect(mimeTexts(utf8)[0]!.text).toBe(`Café ${link}`);
    // no Content-Type: text/plain, us-ascii
    expect(mimeTexts(`Subject: x\n\n${link}\n`)).toEqual([{ type: 'text/plain', text: `${link}\n` }]);
  });

  it('follows no link but the confirm page, and none without a well-formed challenge and token', () => {
    const elsewhere = [
      magicLinkUrl('https://evil.example', CHALLENGE, TOKEN),
      magicLinkUrl('http://auth.example.com', CHALLENGE, TOKEN),
      magicLinkUrl('https://auth.example.com:8443', CHALLENGE, TOKEN),
      `${BASE}/browser/api/v1/identity/auth/otp/verify?challenge=${CHALLENGE}&token=${TOKEN}`,
      `${CONFIRM}?challenge=not-a-uuid&token=${TOKEN}`,
      `${CONFIRM}?challenge=${CHALLENGE}&token=short`,
      `${CONFIRM}?challenge=${CHALLENGE}`,
    ];
    expect(findMagicLinks([{ type: 'text/plain', text: elsewhere.join('\n') }], CONFIRM)).toEqual([]);
    // a link ending a sentence, or in angle brackets, is still the link
    expect(findMagicLinks([{ type: 'text/plain', text: `Open <${link}>. Or ${link}.` }], CONFIRM)).toEqual([
      { challenge: CHALLENGE, token: TOKEN },
    ]);
  });

  it('names the recipients of a header or an envelope, lower-cased', () => {
    expect(addressesIn('"Ops Canary" <Canary@Ops.Example>, other@x.example')).toEqual([
      'canary@ops.example',
      'other@x.example',
    ]);
  });

  it('never throws, whatever the message', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), (raw) => {
        const texts = mimeTexts(raw);
        findMagicLinks(texts, CONFIRM);
        mimeTexts(`Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n${raw}\r\n--b--`);
      }),
    );
  });

  it('quoted-printable round trip', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 500, unit: 'grapheme' }), (text) => {
        const raw = `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${quotedPrintable(text)}`;
        expect(mimeTexts(raw)[0]!.text).toBe(text.replace(/\r?\n/g, '\r\n'));
        for (const line of quotedPrintable(text).split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
      }),
    );
  });
});
