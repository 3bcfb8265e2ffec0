/**
 * The magic-link email as a mail client shows it: rendered in Chromium (playwright-core), in a
 * light and a dark colour scheme, into PNGs. It makes the screenshots of docs/messages.md, and
 * previews an operator's own templates before they go live:
 *
 *   node --import tsx scripts/email-screenshot.ts [--locale de] [--out docs/img]
 *
 * The templates, product name and support address come from WARDEN_TEMPLATES_DIR,
 * WARDEN_PRODUCT_NAME and WARDEN_SUPPORT_EMAIL as Warden reads them; Chromium from
 * CHROMIUM_PATH (default /usr/bin/chromium, Debian's package).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { loadCatalog } from '../src/auth/messageCatalog';
import { magicLinkUrl, renderMagicLinkEmail, type MessageSettings } from '../src/auth/messages';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A sample email: a made-up challenge and token on an example host, expiring in 15 minutes. */
export function sampleEmail(settings: MessageSettings, locale: string) {
  const link = magicLinkUrl(
    'https://login.example.com',
    '0b6f3a52-6c1e-4f7e-9a51-2c4d8e0f1a23',
    'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx',
  );
  const now = new Date();
  return {
    link,
    ...renderMagicLinkEmail(link, new Date(now.getTime() + 15 * 60_000), { settings, locales: [locale], now }),
  };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** Writes `<name>.png` (light) and `<name>-dark.png` of `html` at a phone-to-desktop width. */
export async function screenshotEmail(browser: Browser, html: string, outDir: string, name: string): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    // full-page: the height is the email's own
    const page = await browser.newPage({ colorScheme: scheme, viewport: { width: 640, height: 200 } });
    await page.setContent(html, { waitUntil: 'load' });
    const file = path.join(outDir, scheme === 'light' ? `${name}.png` : `${name}-dark.png`);
    await page.screenshot({ path: file, fullPage: true });
    await page.close();
    written.push(file);
  }
  return written;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { locale: { type: 'string', default: 'en' }, out: { type: 'string', default: 'docs/img' } },
  });
  const settings: MessageSettings = {
    catalog: loadCatalog({ overrideDir: process.env.WARDEN_TEMPLATES_DIR }),
    defaultLocale: 'en',
    productName: process.env.WARDEN_PRODUCT_NAME ?? 'Warden',
    supportEmail: process.env.WARDEN_SUPPORT_EMAIL ?? 'support@example.com',
  };
  const email = sampleEmail(settings, values.locale!);
  const browser = await launchChromium();
  try {
    const name = values.locale === 'en' ? 'magic-link-email' : `magic-link-email.${values.locale}`;
    for (const file of await screenshotEmail(browser, email.html, path.resolve(values.out!), name))
      process.stdout.write(`${file}\n`);
  } finally {
    await browser.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
