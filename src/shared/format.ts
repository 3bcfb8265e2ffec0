/** Small formatting helpers shared by the Slack, email and report templates, and the duration syntax. */

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * `90s`, `5m`, `24h`, `7d` in milliseconds; undefined for anything else. The one spelling of a
 * duration everywhere one is typed: API parameters, settings, configuration, the CLI.
 */
export function durationMs(text: string): number | undefined {
  const match = /^(\d{1,6})([smhd])$/.exec(text.trim());
  return match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : undefined;
}

const STATUS_LABEL = { investigating: 'Investigating', mitigating: 'Mitigating', resolved: 'Resolved' } as const;

export function statusLabel(status: keyof typeof STATUS_LABEL): string {
  return STATUS_LABEL[status];
}

/** `2025-01-15 10:04 UTC` */
export function utc(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} UTC`;
}

/** `HH:MM` on the detection day, `YYYY-MM-DD HH:MM` after it (incidents can last days). */
export function clock(iso: string, dayOf: string): string {
  const d = new Date(iso).toISOString();
  const day = new Date(dayOf).toISOString().slice(0, 10);
  return d.slice(0, 10) === day ? d.slice(11, 16) : `${d.slice(0, 10)} ${d.slice(11, 16)}`;
}

/**
 * Responders are named either plainly (`alice`, from the REST API) or as a Slack mention
 * (`<@U123|alice>`, from a button). Slack renders the mention; elsewhere it reads `@alice`.
 */
export function plainName(by: string): string {
  return by.replace(/<@([A-Z0-9]+)(?:\|([^>]+))?>/g, (_m, id: string, name?: string) => `@${name ?? id}`);
}

/** Slack mrkdwn control characters in user-provided text must not become links or mentions. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Keeps Slack mentions of responders (`<@U123|name>`) but escapes everything else. */
export function slackName(by: string): string {
  return /^<@[A-Z0-9]+(\|[^<>]+)?>$/.test(by) ? by : slackEscape(by);
}
