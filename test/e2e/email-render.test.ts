/**
 * The magic-link email's HTML part as a mail client renders it, in Chromium (playwright-core):
 * in every shipped locale a visible button and the link written out, a hidden preheader, and
 * dark-mode colours that keep the text readable. WARDEN_SCREENSHOTS=1 also rewrites the docs'
 * screenshots (docs/img/magic-link-email.png, magic-link-email-dark.png), as
 * scripts/email-screenshot.ts does.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shippedMessageSettings } from '../../src/auth/messages';
import { CHROMIUM, launchChromium, sampleEmail, screenshotEmail } from '../../scripts/email-screenshot';

const SETTINGS = { ...shippedMessageSettings(), supportEmail: 'support@example.com' };
// the browser's globals, for the functions evaluated in the page (the project compiles without the DOM lib)
declare const getComputedStyle: (el: unknown) => Record<'color' | 'backgroundColor', string>;
declare const document: { documentElement: { scrollWidth: number } };

/** WCAG relative luminance contrast of two `rgb(r, g, b)` colours. */
function contrast(a: string, b: string): number {
  const luminance = (rgb: string) => {
    const [r, g, bl] = rgb
      .match(/\d+/g)!
      .slice(0, 3)
      .map((c) => {
        const v = Number(c) / 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

describe('the magic-link email in a browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `Chromium is not installed at ${CHROMIUM}: install the Debian package (apt-get install -y chromium) or set CHROMIUM_PATH`,
      );
    browser = await launchChromium();
  });
  afterAll(async () => browser?.close());

  async function open(html: string, scheme: 'light' | 'dark'): Promise<Page> {
    const page = await browser.newPage({ colorScheme: scheme, viewport: { width: 375, height: 800 } });
    await page.setContent(html, { waitUntil: 'load' });
    return page;
  }
  const style = (page: Page, selector: string, property: 'color' | 'backgroundColor') =>
    page
      .locator(selector)
      .first()
      .evaluate((el, p) => getComputedStyle(el)[p], property);

  it('shows a button and the link, and hides the preheader, in every shipped locale on a phone', async () => {
    for (const locale of SETTINGS.catalog.locales.keys()) {
      const email = sampleEmail(SETTINGS, locale);
      const page = await open(email.html, 'light');
      const button = page.locator('a', { hasText: /\S/ }).first();
      expect(await button.isVisible(), locale).toBe(true);
      expect(await button.getAttribute('href'), locale).toBe(email.link);
      const box = (await button.boundingBox())!;
      expect(box.height, locale).toBeGreaterThanOrEqual(40);
      expect(await page.locator('a.link', { hasText: email.link }).isVisible(), locale).toBe(true);
      const preheader = page.locator('body > div').first();
      expect(await preheader.textContent(), locale).toMatch(/\S/);
      expect(await preheader.isVisible(), locale).toBe(false);
      expect(await page.locator('html').getAttribute('lang'), locale).toBe(locale);
      // nothing wider than the phone: no sideways scrolling
      expect(await page.evaluate(() => document.documentElement.scrollWidth), locale).toBeLessThanOrEqual(375);
      await page.close();
    }
  });

  it('keeps text and button readable in light and dark colour schemes', async () => {
    const { html } = sampleEmail(SETTINGS, 'en');
    const backgrounds: string[] = [];
    for (const scheme of ['light', 'dark'] as const) {
      const page = await open(html, scheme);
      const card = await style(page, '.card', 'backgroundColor');
      backgrounds.push(card);
      expect(contrast(await style(page, 'h1', 'color'), card), scheme).toBeGreaterThanOrEqual(7);
      expect(contrast(await style(page, 'p.muted', 'color'), card), scheme).toBeGreaterThanOrEqual(4.5);
      expect(contrast(await style(page, 'a.link', 'color'), card), scheme).toBeGreaterThanOrEqual(4.5);
      const button = page.locator('td[bgcolor] > a');
      expect(
        contrast(await style(page, 'td[bgcolor] > a', 'color'), await style(page, 'td[bgcolor]', 'backgroundColor')),
        scheme,
      ).toBeGreaterThanOrEqual(4.5);
      expect(await button.isVisible(), scheme).toBe(true);
      await page.close();
    }
    // the dark scheme does change the colours, where the client honours it
    expect(backgrounds[0]).not.toBe(backgrounds[1]);

    if (process.env.WARDEN_SCREENSHOTS === '1')
      await screenshotEmail(browser, html, path.resolve('docs/img'), 'magic-link-email');
  });
});
