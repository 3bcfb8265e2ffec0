/**
 * Reading the canary's magic link out of an email as the inbound endpoints hand it over:
 * SendGrid Inbound Parse's `text` / `html` fields (or its raw `email`), or the raw MIME message
 * an SES receipt rule puts into its SNS notification. Only what a sign-in email needs is read:
 * the text/plain and text/html parts of a (nested) multipart message, in base64,
 * quoted-printable or 7/8-bit, in any charset the runtime knows. Pure functions; whatever the
 * input, they return what they found or nothing, and never throw.
 */
import { MAGIC_TOKEN_PATTERN } from '../auth/crypto';

export interface MailText {
  type: 'text/plain' | 'text/html';
  text: string;
}

export interface MagicLink {
  challenge: string;
  token: string;
}

const MAX_DEPTH = 8;
const MAX_PARTS = 64;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Header names lower-cased, folded lines unfolded; the first of a repeated header wins. */
export function parseHeaders(head: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!(name in out)) out[name] = line.slice(colon + 1).trim();
  }
  return out;
}

/** `text/plain; charset="utf-8"` -> the type, lower-cased, and its parameters. */
function contentType(value: string | undefined): { type: string; params: Record<string, string> } {
  const [type = 'text/plain', ...rest] = (value ?? 'text/plain').split(';');
  const params: Record<string, string> = {};
  for (const m of rest.join(';').matchAll(/([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g)) {
    const raw = m[2]!.trim();
    params[m[1]!.toLowerCase()] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
  }
  return { type: type.trim().toLowerCase(), params };
}

/** The body parts between `--boundary` lines, the preamble and epilogue left out. */
function splitMultipart(body: string, boundary: string): string[] {
  const parts: string[] = [];
  let current: string[] | undefined;
  for (const line of body.split(/\r?\n/)) {
    const bare = line.trimEnd();
    if (bare === `--${boundary}--`) break;
    if (bare === `--${boundary}`) {
      if (current) parts.push(current.join('\r\n'));
      if (parts.length >= MAX_PARTS) return parts;
      current = [];
      continue;
    }
    current?.push(line);
  }
  if (current) parts.push(current.join('\r\n'));
  return parts;
}

function decodeQuotedPrintable(body: string): Buffer {
  const joined = body.replace(/=\r?\n/g, '');
  return Buffer.from(
    joined.replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    'latin1',
  );
}

function decodeCharset(bytes: Buffer, charset: string | undefined): string {
  try {
    return new TextDecoder(charset || 'utf-8').decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/**
 * The text/plain and text/html parts of a raw MIME message, decoded. The message is read as
 * bytes (latin1), so a part's charset is applied only once its transfer encoding is undone.
 */
export function mimeTexts(raw: Buffer | string, depth = 0): MailText[] {
  const message = typeof raw === 'string' ? raw : raw.toString('latin1');
  const separator = /\r?\n\r?\n/.exec(message);
  const head = separator ? message.slice(0, separator.index) : message;
  const body = separator ? message.slice(separator.index + separator[0].length) : '';
  const headers = parseHeaders(head);
  const { type, params } = contentType(headers['content-type']);
  if (type.startsWith('multipart/')) {
    if (!params.boundary || depth >= MAX_DEPTH) return [];
    return splitMultipart(body, params.boundary).flatMap((part) => mimeTexts(part, depth + 1));
  }
  if (type !== 'text/plain' && type !== 'text/html') return [];
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').trim().toLowerCase();
  const bytes =
    encoding === 'base64'
      ? Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64')
      : encoding === 'quoted-printable'
        ? decodeQuotedPrintable(body)
        : Buffer.from(body, 'latin1');
  return [{ type, text: decodeCharset(bytes, params.charset) }];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** HTML character references as an href carries them (`&amp;`, `&#61;`, `&#x3D;`). */
export function decodeHtmlEntities(html: string): string {
  return html.replace(/&(#[0-9]{1,7}|#x[0-9a-f]{1,6}|[a-z]+);/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[ref.toLowerCase()] ?? whole;
  });
}

/**
 * The magic links in these texts that point at `confirmUrl` (Warden's own confirm page:
 * scheme, host, port and path must match), each with a well-formed challenge id and token.
 * Links anywhere else are never followed, whatever they carry.
 */
export function findMagicLinks(texts: readonly MailText[], confirmUrl: string): MagicLink[] {
  const target = new URL(confirmUrl);
  const found = new Map<string, MagicLink>();
  for (const part of texts) {
    const text = part.type === 'text/html' ? decodeHtmlEntities(part.text) : part.text;
    for (const [candidate] of text.matchAll(/https?:\/\/[^\s"'<>()[\]{}]+/gi)) {
      let url: URL;
      try {
        url = new URL(candidate.replace(/[.,;:!?]+$/, ''));
      } catch {
        continue;
      }
      if (url.origin !== target.origin || url.pathname !== target.pathname) continue;
      const challenge = url.searchParams.get('challenge');
      const token = url.searchParams.get('token');
      if (!challenge || !UUID.test(challenge) || !token || !MAGIC_TOKEN_PATTERN.test(token)) continue;
      const link = { challenge: challenge.toLowerCase(), token };
      found.set(`${link.challenge} ${link.token}`, link);
    }
  }
  return [...found.values()];
}

/** The addresses in a To / Cc header or an envelope list, lower-cased. */
export function addressesIn(value: string): string[] {
  return [...value.matchAll(/[^\s<>",;:()]+@[^\s<>",;:()]+/g)].map((m) => m[0].toLowerCase());
}
