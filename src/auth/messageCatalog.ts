/**
 * The message templates, read once at start from the shipped folder (templates/ at the root of
 * the repository and of the image) and from an operator's folder (WARDEN_TEMPLATES_DIR) whose
 * files win key by key. One YAML file per locale holds the SMS, the email's subject and plain
 * text, and the sentences of its HTML part; `email.html` (or `email.<locale>.html`) is the HTML
 * layout they are set in. Everything is checked here, so a missing key, an unknown placeholder
 * or a template that would drop the code or the link stops the process at start with the file
 * and the key named. docs/messages.md is the operator's view.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseTemplate, TemplateSyntaxError, type Template, type TemplateRules } from './messageTemplate';

/** templates/ two folders above this file: src/auth in the tree, dist/src/auth in the image */
export const SHIPPED_TEMPLATES_DIR = path.resolve(__dirname, '..', '..', 'templates');

/** The sentences of the HTML part, in the order the shipped layout shows them. */
export const HTML_STRINGS = [
  'preheader',
  'heading',
  'intro',
  'button',
  'link_hint',
  'expiry',
  'ignore',
  'help',
  'footer',
] as const;
export type HtmlString = (typeof HTML_STRINGS)[number];

/** Values every text part may use; the code and the link only where they belong. */
const COMMON = ['product', 'expires_in', 'minutes', 'support'] as const;
const PARTS: Record<string, TemplateRules> = {
  sms: { allowed: [...COMMON, 'code'], required: ['code'] },
  'email.subject': { allowed: COMMON },
  'email.text': { allowed: [...COMMON, 'link'], required: ['link'] },
  ...Object.fromEntries(HTML_STRINGS.map((s) => [`email.html.${s}`, { allowed: COMMON }])),
};
const LAYOUT: TemplateRules = {
  allowed: ['link', 'lang', 'dir', 'subject', 'product', 'support', ...HTML_STRINGS],
  required: ['link'],
};
const DIRECTIONS = ['ltr', 'rtl'] as const;

/** One locale's templates, checked and parsed. */
export interface LocaleMessages {
  locale: string;
  direction: (typeof DIRECTIONS)[number];
  sms: Template;
  subject: Template;
  text: Template;
  html: Readonly<Record<HtmlString, Template>>;
  layout: Template;
}

export interface MessageCatalog {
  /** by canonical language tag (`pt-BR`, not `pt-br`) */
  readonly locales: ReadonlyMap<string, LocaleMessages>;
}

/** A template file Warden cannot use: the message names the file, the key and what is wrong. */
export class TemplateError extends Error {
  override name = 'TemplateError';
  constructor(
    readonly file: string,
    readonly key: string | undefined,
    problem: string,
  ) {
    super(`${file}${key ? ` (key ${key})` : ''}: ${problem}`);
  }
}

const TAG_SHAPE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

/** The canonical form of a language tag (`pt-br` → `pt-BR`), or undefined when it is none. */
export function canonicalLocale(tag: string | null | undefined): string | undefined {
  if (!tag) return undefined;
  try {
    const [canonical] = Intl.getCanonicalLocales(tag);
    return canonical && TAG_SHAPE.test(canonical) ? canonical : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The locale a message is written in: for each preference in turn (the user's, then the app's),
 * the tag itself, then the tag without its last subtags (pt-BR → pt), then any available locale
 * of the same language (pt-PT → pt-BR); `fallback` (available by construction) when none fits.
 */
export function resolveLocale(
  available: ReadonlySet<string> | ReadonlyMap<string, unknown>,
  preferences: ReadonlyArray<string | null | undefined>,
  fallback: string,
): string {
  const sorted = [...available.keys()].sort();
  for (const preference of preferences) {
    const tag = canonicalLocale(preference);
    if (!tag) continue;
    const subtags = tag.split('-');
    for (let n = subtags.length; n > 0; n -= 1) {
      const candidate = subtags.slice(0, n).join('-');
      if (available.has(candidate)) return candidate;
    }
    const sameLanguage = sorted.find((l) => l.startsWith(`${subtags[0]}-`));
    if (sameLanguage) return sameLanguage;
  }
  return fallback;
}

// ---- reading the folders ------------------------------------------------------------------

interface Entry {
  value: string;
  file: string;
}

function listDir(dir: string, what: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (err) {
    throw new TemplateError(dir, undefined, `cannot read the ${what} folder (${(err as NodeJS.ErrnoException).code})`);
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new TemplateError(file, undefined, `cannot read it (${(err as NodeJS.ErrnoException).code})`);
  }
}

/** A locale file's keys, flattened to `sms`, `email.subject`, `email.html.heading`, … */
function readLocaleFile(file: string): Map<string, Entry> {
  let doc: unknown;
  try {
    doc = parseYaml(readText(file));
  } catch (err) {
    if (err instanceof TemplateError) throw err;
    throw new TemplateError(file, undefined, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const out = new Map<string, Entry>();
  const walk = (value: unknown, prefix: string) => {
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value))
      throw new TemplateError(file, prefix || undefined, 'expected a mapping of keys to texts');
    for (const [key, child] of Object.entries(value)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (name === 'direction' || name in PARTS) {
        if (typeof child !== 'string') throw new TemplateError(file, name, 'must be a text (quote it)');
        out.set(name, { value: child, file });
      } else if (name === 'email' || name === 'email.html') walk(child, name);
      else
        throw new TemplateError(file, name, `unknown key (the keys are direction, ${Object.keys(PARTS).join(', ')})`);
    }
  };
  walk(doc, '');
  return out;
}

const LOCALE_FILE = /^(.+)\.ya?ml$/;
const LAYOUT_FILE = /^email(?:\.(.+))?\.html$/;

interface Folder {
  locales: Map<string, string>;
  layouts: Map<string, string>;
}

/** The locale and layout files of a folder, by canonical tag ('' for the shared layout). */
function scan(dir: string, what: string): Folder {
  const folder: Folder = { locales: new Map(), layouts: new Map() };
  for (const name of listDir(dir, what)) {
    const localeMatch = LOCALE_FILE.exec(name);
    const layoutMatch = LAYOUT_FILE.exec(name);
    const raw = localeMatch?.[1] ?? layoutMatch?.[1];
    if (!localeMatch && !layoutMatch) continue;
    const file = path.join(dir, name);
    const tag = raw === undefined ? '' : canonicalLocale(raw);
    if (tag === undefined)
      throw new TemplateError(file, undefined, `"${raw}" is not a language tag such as en, pt-BR (rename the file)`);
    const into = localeMatch ? folder.locales : folder.layouts;
    if (into.has(tag)) throw new TemplateError(file, undefined, `${path.basename(into.get(tag)!)} is the same locale`);
    into.set(tag, file);
  }
  return folder;
}

function compile(entry: Entry, key: string | undefined, rules: TemplateRules): Template {
  try {
    return parseTemplate(entry.value, rules);
  } catch (err) {
    if (err instanceof TemplateSyntaxError) throw new TemplateError(entry.file, key, err.message);
    throw err;
  }
}

/**
 * Reads, merges and checks the templates. The operator's folder overrides the shipped one
 * key by key (its `en.yaml` may hold just `sms`), and may add locales, which must then be
 * complete. Throws TemplateError naming the first file and key at fault.
 */
export function loadCatalog(sources: { shippedDir?: string; overrideDir?: string } = {}): MessageCatalog {
  const shipped = scan(sources.shippedDir ?? SHIPPED_TEMPLATES_DIR, 'shipped templates');
  const override = sources.overrideDir ? scan(sources.overrideDir, 'WARDEN_TEMPLATES_DIR') : undefined;
  const layouts = new Map<string, Template>();
  const layoutFor = (tag: string): Template => {
    const file =
      override?.layouts.get(tag) ?? shipped.layouts.get(tag) ?? override?.layouts.get('') ?? shipped.layouts.get('');
    if (!file) throw new TemplateError(sources.shippedDir ?? SHIPPED_TEMPLATES_DIR, undefined, 'email.html is missing');
    if (!layouts.has(file)) {
      // comments are for whoever edits the layout, not for every inbox (Outlook's <!--[if mso]> stays)
      const source = readText(file).replace(/<!--(?!\[if)[\s\S]*?-->\s*/g, '');
      layouts.set(file, compile({ value: source, file }, undefined, LAYOUT));
    }
    return layouts.get(file)!;
  };

  const tags = new Set([...shipped.locales.keys(), ...(override?.locales.keys() ?? [])]);
  const locales = new Map<string, LocaleMessages>();
  for (const tag of [...tags].sort()) {
    const fromShipped = shipped.locales.get(tag);
    const fromOverride = override?.locales.get(tag);
    const entries = new Map([
      ...(fromShipped ? readLocaleFile(fromShipped) : []),
      ...(fromOverride ? readLocaleFile(fromOverride) : []),
    ]);
    // a key missing from a locale the operator added is theirs to fill; otherwise it is ours
    const owner = (fromShipped ?? fromOverride)!;
    const part = (key: string) => {
      const entry = entries.get(key);
      if (!entry) throw new TemplateError(owner, key, 'missing: every locale needs every key');
      return compile(entry, key, PARTS[key]!);
    };
    const direction = entries.get('direction');
    if (direction && !(DIRECTIONS as readonly string[]).includes(direction.value))
      throw new TemplateError(direction.file, 'direction', 'must be ltr or rtl');
    locales.set(
      tag,
      Object.freeze({
        locale: tag,
        direction: (direction?.value ?? 'ltr') as LocaleMessages['direction'],
        sms: part('sms'),
        subject: part('email.subject'),
        text: part('email.text'),
        html: Object.freeze(Object.fromEntries(HTML_STRINGS.map((s) => [s, part(`email.html.${s}`)]))) as Record<
          HtmlString,
          Template
        >,
        layout: layoutFor(tag),
      }),
    );
  }
  for (const [tag, file] of override?.layouts ?? [])
    if (tag && !locales.has(tag)) throw new TemplateError(file, undefined, `there is no ${tag}.yaml for this layout`);
  if (!locales.size) throw new TemplateError(sources.shippedDir ?? SHIPPED_TEMPLATES_DIR, undefined, 'no locale files');
  return Object.freeze({ locales });
}
