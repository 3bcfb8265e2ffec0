import type { Contacts } from '../incidents/contacts';
import { escalationEmail } from '../incidents/templates';
import { ProviderTransientError, type EmailProviderName } from '../providers';
import type { Runtime } from '../runtime';
import type { NotifyRoleInput } from './notifySlack';

export interface NotifyRoleEmailInput extends Omit<NotifyRoleInput, 'thread'> {
  /** from the workflow id and the escalation: a retried activity is deduplicated by the provider */
  idempotencyKey: string;
}

export type EmailNotice = { sent: true; provider: EmailProviderName } | { sent: false; reason: 'no_email' };

type Deps = Pick<Runtime, 'providers' | 'db'> & { contacts: () => Contacts };

const EMAIL_PROVIDERS: readonly string[] = ['sendgrid', 'ses'];

/**
 * The email half of every escalation, through the email route's primary provider and, when
 * that one fails transiently (an email provider outage may be the very incident), its backup.
 */
export function createEmailNotifyActivities({ providers, db, contacts }: Deps) {
  async function route(): Promise<EmailProviderName[]> {
    const { rows } = await db.query<{ primary_provider: string; backup_provider: string | null }>(
      "SELECT primary_provider, backup_provider FROM delivery_routes WHERE channel = 'email'",
    );
    const row = rows[0];
    const order = row ? [row.primary_provider, row.backup_provider] : ['sendgrid', 'ses'];
    const known = order.filter((p): p is EmailProviderName => typeof p === 'string' && EMAIL_PROVIDERS.includes(p));
    return known.length ? known : ['sendgrid'];
  }

  return {
    async notifyRoleEmail(input: NotifyRoleEmailInput): Promise<EmailNotice> {
      const c = contacts();
      const contact = c.roles[input.role];
      if (!contact.email) return { sent: false, reason: 'no_email' };
      const message = escalationEmail({
        incident: input.incident,
        role: input.role,
        contactName: contact.name,
        reason: input.reason,
        warRoom: c.war_room,
      });
      const [primary, backup] = await route();
      try {
        await providers.email[primary!].send({ to: contact.email, ...message, idempotencyKey: input.idempotencyKey });
        return { sent: true, provider: primary! };
      } catch (err) {
        if (!(err instanceof ProviderTransientError) || !backup || backup === primary) throw err;
        await providers.email[backup].send({ to: contact.email, ...message, idempotencyKey: input.idempotencyKey });
        return { sent: true, provider: backup };
      }
    },
  };
}
