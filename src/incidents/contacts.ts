/**
 * Who gets paged: the default escalation contacts (docs/incident-response.md), overridable by a JSON file
 * (WARDEN_CONTACTS_FILE, see deploy/contacts.example.json). Read by activities only, so
 * addresses never enter workflow history.
 */
import { readFileSync, statSync } from 'node:fs';
import type { NotifiedRole } from '../shared/incidents';
import { ROLE_TITLES } from '../shared/escalation';

export interface Contact {
  name: string;
  email?: string;
  /** Slack member id (U...), mentioned in the channel */
  slack_user_id?: string;
  /** a phone or web form for external contacts (provider support, ISP/CDN) */
  url?: string;
}

export interface Contacts {
  roles: Record<NotifiedRole, Contact>;
  /** provider support desks by provider name, plus `default` */
  provider_support: Record<string, Contact>;
  isp_cdn: Contact;
  /** the address the customer notification names */
  support_email: string;
  /** the incident channel's war room (Zoom/Teams link) */
  war_room?: string;
}

export const DEFAULT_CONTACTS: Contacts = {
  roles: {
    oncall: { name: ROLE_TITLES.oncall, email: 'oncall@example.com' },
    security_lead: { name: ROLE_TITLES.security_lead, email: 'security-lead@example.com' },
    dba: { name: ROLE_TITLES.dba, email: 'dba@example.com' },
    engineering_manager: { name: ROLE_TITLES.engineering_manager, email: 'eng-manager@example.com' },
    vp_engineering: { name: ROLE_TITLES.vp_engineering, email: 'vp-eng@example.com' },
    legal: { name: ROLE_TITLES.legal, email: 'legal@example.com' },
    ciso: { name: ROLE_TITLES.ciso, email: 'ciso@example.com' },
  },
  provider_support: {
    default: { name: 'Provider support' },
    twilio: { name: 'Twilio support', url: 'https://help.twilio.com' },
    plivo: { name: 'Plivo support', url: 'https://support.plivo.com' },
    sendgrid: { name: 'SendGrid support', url: 'https://support.sendgrid.com' },
    ses: { name: 'AWS support (SES)', url: 'https://console.aws.amazon.com/support' },
  },
  isp_cdn: { name: 'ISP / CDN provider' },
  support_email: 'support@example.com',
};

export class ContactsError extends Error {
  override name = 'ContactsError';
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;
const SLACK_ID = /^[UW][A-Z0-9]{2,20}$/;

function contact(value: unknown, where: string, fallback?: Contact): Contact {
  if (typeof value !== 'object' || value === null) throw new ContactsError(`${where} must be an object`);
  const v = value as Record<string, unknown>;
  const out: Contact = {
    name: typeof v.name === 'string' && v.name.trim() ? v.name.trim() : (fallback?.name ?? where),
  };
  if (v.email !== undefined) {
    if (typeof v.email !== 'string' || !EMAIL.test(v.email))
      throw new ContactsError(`${where}.email is not an email address`);
    out.email = v.email;
  } else if (fallback?.email) out.email = fallback.email;
  if (v.slack_user_id !== undefined) {
    if (typeof v.slack_user_id !== 'string' || !SLACK_ID.test(v.slack_user_id))
      throw new ContactsError(`${where}.slack_user_id must be a Slack member id (U...)`);
    out.slack_user_id = v.slack_user_id;
  }
  if (v.url !== undefined) {
    if (typeof v.url !== 'string') throw new ContactsError(`${where}.url must be a string`);
    out.url = v.url;
  }
  return out;
}

/** Validates a contacts document; every key is optional and falls back to the defaults. */
export function parseContacts(doc: unknown): Contacts {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new ContactsError('the contacts file must hold a JSON object');
  const d = doc as Record<string, unknown>;
  const roles = { ...DEFAULT_CONTACTS.roles };
  for (const role of Object.keys(roles) as NotifiedRole[]) {
    if (d[role] !== undefined) roles[role] = contact(d[role], role, DEFAULT_CONTACTS.roles[role]);
  }
  const providerSupport = { ...DEFAULT_CONTACTS.provider_support };
  if (d.provider_support !== undefined) {
    if (typeof d.provider_support !== 'object' || d.provider_support === null)
      throw new ContactsError('provider_support must be an object');
    for (const [name, value] of Object.entries(d.provider_support))
      providerSupport[name] = contact(value, `provider_support.${name}`);
  }
  const supportEmail = d.support_email ?? DEFAULT_CONTACTS.support_email;
  if (typeof supportEmail !== 'string' || !EMAIL.test(supportEmail))
    throw new ContactsError('support_email is not an email address');
  if (d.war_room !== undefined && typeof d.war_room !== 'string') throw new ContactsError('war_room must be a string');
  return {
    roles,
    provider_support: providerSupport,
    isp_cdn: d.isp_cdn !== undefined ? contact(d.isp_cdn, 'isp_cdn') : DEFAULT_CONTACTS.isp_cdn,
    support_email: supportEmail,
    war_room: typeof d.war_room === 'string' ? d.war_room : undefined,
  };
}

/**
 * Reads the contacts file, re-reading it when it changes so an updated rota needs no restart.
 * A broken file at start is an error; a broken edit later keeps the last good contacts.
 */
export function contactsSource(file: string | undefined, onError: (message: string) => void): () => Contacts {
  if (!file) return () => DEFAULT_CONTACTS;
  const read = (): Contacts => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ContactsError(
        `cannot read WARDEN_CONTACTS_FILE (${file}): ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    try {
      return parseContacts(JSON.parse(text));
    } catch (err) {
      if (err instanceof ContactsError) throw new ContactsError(`WARDEN_CONTACTS_FILE (${file}): ${err.message}`);
      throw new ContactsError(`WARDEN_CONTACTS_FILE (${file}) is not valid JSON`);
    }
  };
  let current = read();
  let mtime = statSync(file).mtimeMs;
  return () => {
    try {
      const now = statSync(file).mtimeMs;
      if (now !== mtime) {
        mtime = now;
        current = read();
      }
    } catch (err) {
      onError((err as Error).message);
    }
    return current;
  };
}

export function providerSupportContact(contacts: Contacts, providers: readonly string[]): Contact[] {
  const named = providers.map((p) => contacts.provider_support[p]).filter((c): c is Contact => Boolean(c));
  return named.length ? named : [contacts.provider_support.default ?? DEFAULT_CONTACTS.provider_support.default!];
}

/** How a contact reads in Slack: a mention when the member id is known. */
export function slackMention(c: Contact): string {
  return c.slack_user_id ? `<@${c.slack_user_id}>` : c.name;
}
