/**
 * Loading the message templates (src/auth/messageCatalog.ts): an operator's folder overrides
 * the shipped files key by key, and anything Warden could not send from stops the start with
 * the file, the key and the placeholder named.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCatalog, TemplateError } from '../../src/auth/messageCatalog';
import { parseTemplate, renderTemplate, TemplateSyntaxError } from '../../src/auth/messageTemplate';
import { renderMagicLinkEmail, renderOtpSms, shippedMessageSettings } from '../../src/auth/messages';
import { ConfigError, loadConfig } from '../../src/config';

const base = { WARDEN_ADMIN_TOKEN: 'a-long-enough-admin-token' };
const EXPIRES = new Date(Date.now() + 300_000);

/** A folder of the operator's own templates. */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-templates-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

/** What loading `files` over the shipped templates throws: its file, key and message. */
function refusal(files: Record<string, string>): { file: string; key?: string; message: string } {
  const dir = folder(files);
  try {
    loadCatalog({ overrideDir: dir });
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    const e = err as TemplateError;
    return { file: path.relative(dir, e.file), key: e.key, message: e.message };
  }
  throw new Error('the templates were accepted');
}

describe('the template language', () => {
  const rules = { allowed: ['code', 'product', 'support'], required: ['code'] };

  it('fills values and keeps a section only when its value is set', () => {
    const t = parseTemplate('{{ product }}: {{code}}{{#support}} (help: {{support}}){{/support}}', rules);
    expect(renderTemplate(t, { product: 'Acme', code: '1' })).toBe('Acme: 1');
    expect(renderTemplate(t, { product: 'Acme', code: '1', support: 'a@b.c' })).toBe('Acme: 1 (help: a@b.c)');
    expect(renderTemplate(t, { product: '<A>', code: '1' }, (v) => v.replace('<', '&lt;'))).toBe('&lt;A>: 1');
  });

  it('refuses unknown placeholders, a required one missing or only in a section, and broken tags', () => {
    const refused = (source: string) => {
      try {
        parseTemplate(source, rules);
      } catch (err) {
        expect(err).toBeInstanceOf(TemplateSyntaxError);
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(refused('{{code}} {{name}}')).toMatch(/unknown placeholder \{\{name\}\}: this part may use \{\{code\}\}/);
    expect(refused('your code')).toMatch(/\{\{code\}\} is missing/);
    expect(refused('{{#support}}{{code}}{{/support}}')).toMatch(/\{\{code\}\} is missing/);
    expect(refused('{{code}} {{#support}}x')).toMatch(/\{\{#support\}\} is never closed/);
    expect(refused('{{code}} {{/support}}')).toMatch(/closes nothing/);
    expect(refused('{{code}} {{#support}}{{#product}}{{/support}}{{/product}}')).toMatch(/closes \{\{#product\}\}/);
    expect(refused('{{code}} {{code')).toMatch(/stray/);
    expect(refused('{{code}} }}')).toMatch(/stray/);
    expect(refused('{{code}} {{Code Name}}')).toMatch(/is not a placeholder/);
  });
});

describe('loading the templates', () => {
  it('ships English and four more locales, each complete', () => {
    expect([...loadCatalog().locales.keys()]).toEqual(['de', 'en', 'es', 'fr', 'pt-BR']);
  });

  it('overrides the shipped files key by key, and takes a new locale and layout of the operator’s', () => {
    const en = readFileSync(path.join('templates', 'en.yaml'), 'utf8');
    const dir = folder({
      'en.yaml': 'sms: "{{code}} is your {{product}} code."\nemail:\n  subject: "Sign in, {{minutes}} min"\n',
      'it.yaml': en.replace('Your {{product}} sign-in code is', 'Il tuo codice {{product}} è'),
      'email.it.html': '<html lang="{{lang}}"><a href="{{link}}">{{button}}</a></html>',
      'notes.txt': 'not a template: ignored',
    });
    const settings = { ...shippedMessageSettings(), catalog: loadCatalog({ overrideDir: dir }) };
    expect(renderOtpSms('123456', EXPIRES, { settings, locales: ['en'] })).toBe('123456 is your Warden code.');
    const email = renderMagicLinkEmail('https://x.example/l', EXPIRES, { settings, locales: ['en'] });
    expect(email.subject).toBe('Sign in, 5 min');
    // the keys the operator left out are the shipped ones, and so is the layout
    expect(email.text).toMatch(/^Sign in to Warden by opening this link:/);
    expect(email.html).toContain('role="presentation"');
    expect(renderOtpSms('123456', EXPIRES, { settings, locales: ['it'] })).toMatch(/^Il tuo codice Warden è 123456/);
    expect(renderMagicLinkEmail('https://x.example/l', EXPIRES, { settings, locales: ['it'] }).html).toBe(
      '<html lang="it"><a href="https:&#47;&#47;x.example&#47;l">Sign in</a></html>',
    );
  });

  it('names the file, the key and the placeholder that makes a template unusable', () => {
    expect(refusal({ 'en.yaml': 'sms: "Your code expires in {{expires_in}}."' })).toEqual({
      file: 'en.yaml',
      key: 'sms',
      message: expect.stringMatching(/en\.yaml \(key sms\): \{\{code\}\} is missing/),
    });
    expect(refusal({ 'de.yaml': 'email:\n  text: "Hallo {{user}}, {{link}}"' })).toMatchObject({
      file: 'de.yaml',
      key: 'email.text',
      message: expect.stringContaining('unknown placeholder {{user}}'),
    });
    // the link and the code only where they belong: never in a subject or a sentence of the HTML part
    expect(refusal({ 'fr.yaml': 'email:\n  subject: "{{link}}"' })).toMatchObject({ key: 'email.subject' });
    expect(refusal({ 'es.yaml': 'email:\n  html:\n    intro: "{{code}}"' })).toMatchObject({ key: 'email.html.intro' });
    expect(refusal({ 'en.yaml': 'email:\n  text: "{{#support}}{{link}}{{/support}}"' })).toMatchObject({
      key: 'email.text',
      message: expect.stringContaining('{{link}} is missing'),
    });
    expect(refusal({ 'email.html': '<p>{{heading}}</p>' })).toMatchObject({
      file: 'email.html',
      message: expect.stringContaining('{{link}} is missing'),
    });
  });

  it('names what is missing or misspelt, and a file it cannot read', () => {
    expect(refusal({ 'it.yaml': 'sms: "{{code}}"' })).toMatchObject({
      file: 'it.yaml',
      key: 'email.subject',
      message: expect.stringContaining('missing'),
    });
    expect(refusal({ 'en.yaml': 'emial:\n  subject: "x"' })).toMatchObject({
      key: 'emial',
      message: expect.stringContaining('unknown key'),
    });
    expect(refusal({ 'en.yaml': 'sms: [1, 2]' })).toMatchObject({
      key: 'sms',
      message: expect.stringContaining('text'),
    });
    expect(refusal({ 'en.yaml': 'sms: "a\n  b: c' })).toMatchObject({
      file: 'en.yaml',
      message: expect.stringContaining('not valid YAML'),
    });
    expect(refusal({ 'English.yaml': 'sms: "{{code}}"' })).toMatchObject({
      file: 'English.yaml',
      message: expect.stringContaining('not a language tag'),
    });
    expect(refusal({ 'en.yaml': 'direction: up' })).toMatchObject({ key: 'direction' });
    expect(refusal({ 'email.ja.html': '{{link}}' })).toMatchObject({ message: expect.stringContaining('no ja.yaml') });
  });

  it('stops the configuration at start, naming the setting or the file', () => {
    const broken = folder({ 'en.yaml': 'sms: "no code here"' });
    expect(() => loadConfig({ ...base, WARDEN_TEMPLATES_DIR: broken })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, WARDEN_TEMPLATES_DIR: broken })).toThrow(
      `message templates: ${path.join(broken, 'en.yaml')} (key sms): {{code}} is missing`,
    );
    expect(() => loadConfig({ ...base, WARDEN_TEMPLATES_DIR: path.join(broken, 'nope') })).toThrow(
      /WARDEN_TEMPLATES_DIR folder \(ENOENT\)/,
    );
    expect(() => loadConfig({ ...base, WARDEN_DEFAULT_LOCALE: 'it' })).toThrow(
      /WARDEN_DEFAULT_LOCALE names a locale without templates \(there are: de, en, es, fr, pt-BR\)/,
    );
    expect(() => loadConfig({ ...base, WARDEN_PRODUCT_NAME: 'A\nB' })).toThrow(/WARDEN_PRODUCT_NAME/);
    expect(() => loadConfig({ ...base, WARDEN_SUPPORT_EMAIL: 'help desk' })).toThrow(/WARDEN_SUPPORT_EMAIL/);
    const config = loadConfig({
      ...base,
      WARDEN_DEFAULT_LOCALE: 'pt-br',
      WARDEN_PRODUCT_NAME: 'Acme',
      WARDEN_SUPPORT_EMAIL: 'help@acme.example',
    });
    expect(config.messages).toMatchObject({
      defaultLocale: 'pt-BR',
      productName: 'Acme',
      supportEmail: 'help@acme.example',
    });
  });
});
