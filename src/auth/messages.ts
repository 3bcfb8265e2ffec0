/**
 * What the user receives. The only place a secret is put into text, and that text goes
 * straight to the provider adapter: it is never logged, returned or stored.
 */
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

export function renderOtpSms(code: string, expiresAt: Date, now = new Date()): string {
  const minutes = minutesLeft(expiresAt, now);
  return `Your Warden sign-in code is ${code}. It expires in ${minutes} minute${minutes === 1 ? '' : 's'}. Never share it with anyone.`;
}

export function renderMagicLinkEmail(
  link: string,
  expiresAt: Date,
  now = new Date(),
): { subject: string; text: string; html: string } {
  const minutes = minutesLeft(expiresAt, now);
  const lifetime = `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const text = [
    'Sign in to Warden by opening this link:',
    '',
    link,
    '',
    `The link works once and expires in ${lifetime}.`,
    'If you did not ask to sign in, ignore this email: nothing happens until the link is used.',
  ].join('\n');
  const href = escapeHtml(link);
  const html = [
    '<!doctype html><html><body style="font-family: sans-serif">',
    '<p>Sign in to Warden:</p>',
    `<p><a href="${href}">Sign in</a></p>`,
    `<p>The link works once and expires in ${lifetime}.</p>`,
    '<p>If you did not ask to sign in, ignore this email: nothing happens until the link is used.</p>',
    '</body></html>',
  ].join('\n');
  return { subject: 'Your Warden sign-in link', text, html };
}
