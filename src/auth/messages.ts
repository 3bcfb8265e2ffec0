/**
 * What the user receives. The only place a secret is put into text, and that text goes
 * straight to the provider adapter: it is never logged, returned or stored. The words are the
 * templates' (src/auth/messageCatalog.ts, docs/messages.md), in the user's language.
 */
import { HTML_STRINGS, loadCatalog, resolveLocale, type MessageCatalog } from './messageCatalog';
import { renderTemplate } from './messageTemplate';

export const MAGIC_LINK_PATH = '/browser/api/v1/identity/auth/magic-link/verify';

export function magicLinkUrl(publicBaseUrl: string, challengeId: string, token: string): string {
  const query = new URLSearchParams({ challenge: challengeId, token });
  return `${publicBaseUrl}${MAGIC_LINK_PATH}?${query.toString()}`;
}

function minutesLeft(expiresAt: Date, now: Date): number {
  return Math.max(1, Math.ceil((expiresAt.getTime() - now.getTime()) / 60_000));
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`=/]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** The templates and the names they carry, as the configuration gives them. */
export interface MessageSettings {
  catalog: MessageCatalog;
  /** the locale when neither the user's nor the app's has templates; always in the catalog */
  defaultLocale: string;
  productName: string;
  supportEmail?: string;
}

let shipped: MessageSettings | undefined;

/** The shipped templates, as Warden, in English by default: for callers without a configuration. */
export function shippedMessageSettings(): MessageSettings {
  shipped ??= { catalog: loadCatalog(), defaultLocale: 'en', productName: 'Warden' };
  return shipped;
}

export interface RenderOptions {
  /** default: shippedMessageSettings() */
  settings?: MessageSettings;
  /** the locales to try, in order: the user's, then the app's (null: none) */
  locales?: ReadonlyArray<string | null | undefined>;
  now?: Date;
}

function prepare(expiresAt: Date, options: RenderOptions) {
  const settings = options.settings ?? shippedMessageSettings();
  const locale = resolveLocale(settings.catalog.locales, options.locales ?? [], settings.defaultLocale);
  const minutes = minutesLeft(expiresAt, options.now ?? new Date());
  const values = {
    product: settings.productName,
    support: settings.supportEmail,
    minutes: String(minutes),
    // "5 minutes", "1 minute", "5 Minuten": the plural rules are the locale's, not the template's
    expires_in: new Intl.NumberFormat(locale, { style: 'unit', unit: 'minute', unitDisplay: 'long' }).format(minutes),
  };
  return { templates: settings.catalog.locales.get(locale)!, locale, values };
}

/** Plain text as sent: no trailing spaces, no run of blank lines an empty section left behind. */
function tidy(text: string): string {
  return text
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** One line (a subject, a sentence of the HTML part): a template's line breaks never reach a header. */
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/** What the last line of an origin-bound code can carry as its host (Chrome reads `@[a-zA-Z0-9.-]+`). */
const WEBOTP_HOST = /^[a-z0-9.-]+$/i;

/**
 * The host an SMS code is bound to (`@host #code`, the WebOTP / origin-bound one-time code
 * format): for a challenge of an app with web origins, the host of its first one, the site
 * where its users type the code; otherwise the host of Warden's public URL. Browsers and
 * Android offer the code only on that site. Undefined when the host cannot be written in the
 * format (an IPv6 literal): the SMS then goes without the line, never with another site's.
 */
export function webOtpHost(
  appWebOrigins: readonly string[] | null | undefined,
  publicBaseUrl: string,
): string | undefined {
  const origin = appWebOrigins?.length ? appWebOrigins[0]! : publicBaseUrl;
  let host: string;
  try {
    host = new URL(origin).hostname;
  } catch {
    return undefined;
  }
  return WEBOTP_HOST.test(host) ? host : undefined;
}

/**
 * The SMS: the template's text, then, when there is a host, a blank line and `@host #code` as
 * the last line, which is where browsers look for it.
 */
export function renderOtpSms(
  code: string,
  expiresAt: Date,
  options: RenderOptions & { webOtpHost?: string } = {},
): string {
  const { templates, values } = prepare(expiresAt, options);
  const body = tidy(renderTemplate(templates.sms, { ...values, code }));
  return options.webOtpHost ? `${body}\n\n@${options.webOtpHost} #${code}` : body;
}

/**
 * The magic-link email: a subject, a plain-text part, and an HTML part in which every value
 * (the link, the product name, the sentences of the locale) is HTML-escaped; only the layout's
 * own markup is output as written.
 */
export function renderMagicLinkEmail(
  link: string,
  expiresAt: Date,
  options: RenderOptions = {},
): { subject: string; text: string; html: string } {
  const { templates, locale, values } = prepare(expiresAt, options);
  const subject = oneLine(renderTemplate(templates.subject, values));
  const text = tidy(renderTemplate(templates.text, { ...values, link }));
  const sentences = Object.fromEntries(
    HTML_STRINGS.map((s) => [s, oneLine(renderTemplate(templates.html[s], values))]),
  );
  const html = renderTemplate(
    templates.layout,
    { ...values, ...sentences, link, subject, lang: locale, dir: templates.direction },
    escapeHtml,
  );
  return { subject, text, html };
}
