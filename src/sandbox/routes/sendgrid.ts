import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { SandboxContext } from '../context';
import { sendgridEventCallback } from '../callbacks';
import { deliverInboundEmail } from '../inbound';
import {
  answerLate,
  applyFault,
  bearer,
  EMAIL,
  receiptTiming,
  record,
  sendFailure,
  undelivered,
  type FaultShapes,
  type ProviderFailure,
} from '../http';

/** SendGrid's v3 error body: `{errors: [{message, field, help}]}`. */
function sendgridError(status: number, message: string, field: string | null = null): ProviderFailure {
  return { status, body: { errors: [{ message, field, help: null }] } };
}

const shapes: FaultShapes = {
  error: (status) => sendgridError(status, status === 429 ? 'too many requests' : 'Service Unavailable'),
  permanent: () => sendgridError(400, 'Does not contain a valid address.', 'personalizations.0.to.0.email'),
};

interface Address {
  email?: unknown;
}
interface Personalization {
  to?: Address[];
  subject?: unknown;
  custom_args?: Record<string, unknown>;
}
interface MailBody {
  personalizations?: Personalization[];
  from?: Address;
  subject?: unknown;
  content?: { type?: unknown; value?: unknown }[];
  custom_args?: Record<string, unknown>;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function array<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

interface Parsed {
  recipients: { to: string; subject: string; key: string | null }[];
  from: string;
  text: string;
  html?: string;
}

/** SendGrid's own validation, in the order it reports problems. */
function parseMail(mail: MailBody): Parsed | { failure: ProviderFailure } {
  const personalizations = array<Personalization>(mail.personalizations);
  if (personalizations.length === 0) {
    return {
      failure: sendgridError(
        400,
        'The personalizations field is required and must have at least one personalization.',
        'personalizations',
      ),
    };
  }
  if (!str(mail.from?.email))
    return { failure: sendgridError(400, 'The from object must be provided for every email send.', 'from') };
  const content = array<{ type?: unknown; value?: unknown }>(mail.content);
  const text = str(content.find((c) => c.type === 'text/plain')?.value) ?? str(content[0]?.value);
  if (!text) {
    return {
      failure: sendgridError(
        400,
        'Unless a valid template_id is provided, the content parameter is required.',
        'content',
      ),
    };
  }
  const recipients: Parsed['recipients'] = [];
  for (const [i, p] of personalizations.entries()) {
    const subject = str(p.subject) ?? str(mail.subject);
    if (!subject) return { failure: sendgridError(400, 'The subject is required.', 'subject') };
    const to = array<Address>(p.to);
    if (to.length === 0)
      return {
        failure: sendgridError(
          400,
          'The to array is required for all personalization objects.',
          `personalizations.${i}.to`,
        ),
      };
    for (const [j, address] of to.entries()) {
      const email = str(address.email);
      if (!email || !EMAIL.test(email)) {
        return {
          failure: sendgridError(400, 'Does not contain a valid address.', `personalizations.${i}.to.${j}.email`),
        };
      }
      const key = str(p.custom_args?.idempotency_key) ?? str(mail.custom_args?.idempotency_key) ?? null;
      recipients.push({ to: email, subject, key });
    }
  }
  const html = str(content.find((c) => c.type === 'text/html')?.value);
  return { recipients, from: str(mail.from?.email)!, text, ...(html ? { html } : {}) };
}

/** X-Message-Id looks like 22 characters of URL-safe base64. */
function messageId(): string {
  return randomBytes(16).toString('base64url').slice(0, 22);
}

/**
 * POST /v3/mail/send as @sendgrid/mail sends it. Accepted mail is answered 202 with an empty
 * body and X-Message-Id. The idempotency key is `custom_args.idempotency_key`.
 */
export async function sendgridRoutes(app: FastifyInstance, { state, callbacks }: SandboxContext): Promise<void> {
  app.post<{ Body: MailBody }>('/v3/mail/send', async (request, reply) => {
    const mail: MailBody = typeof request.body === 'object' && request.body !== null ? request.body : {};
    const key =
      str(mail.custom_args?.idempotency_key) ??
      str(array<Personalization>(mail.personalizations)[0]?.custom_args?.idempotency_key) ??
      null;

    if (!bearer(request)) {
      record(state, 'sendgrid', request, 'rejected', 401, key);
      return sendFailure(reply, sendgridError(401, 'The provided authorization grant is invalid, expired, or revoked'));
    }

    if (await applyFault(state, 'sendgrid', request, reply, shapes, key)) return reply;

    const parsed = parseMail(mail);
    if ('failure' in parsed) {
      record(state, 'sendgrid', request, 'rejected', parsed.failure.status, key);
      return sendFailure(reply, parsed.failure);
    }

    const original = state.recall('sendgrid', key);
    if (original) {
      record(state, 'sendgrid', request, 'deduplicated', 202, key);
      await answerLate(state, request, reply);
      return reply
        .code(202)
        .header('X-Message-Id', original.ids[0] ?? '')
        .send();
    }

    const id = messageId();
    const lost = undelivered(request);
    const receipt = receiptTiming(request);
    const webhook = state.webhook('sendgrid');
    const origin = `${request.protocol}://${request.host}`;
    // One outbox entry per recipient; SendGrid gives each its own id derived from the request's.
    parsed.recipients.forEach((r, i) => {
      const entryId = i === 0 ? id : `${id}.${i}`;
      if (!lost) {
        state.addMessage({
          id: entryId,
          provider: 'sendgrid',
          channel: 'email',
          to: r.to,
          subject: r.subject,
          body: parsed.text,
          ...(parsed.html ? { html: parsed.html } : {}),
          idempotency_key: r.key,
        });
        deliverInboundEmail(state, callbacks, 'sendgrid', origin, {
          from: parsed.from,
          to: r.to,
          subject: r.subject,
          text: parsed.text,
          ...(parsed.html ? { html: parsed.html } : {}),
        });
      }
      if (webhook && state.callbacksEnabled && receipt.send) {
        callbacks.schedule(
          sendgridEventCallback(
            webhook.url,
            webhook.privateKey,
            { id: entryId, to: r.to, idempotencyKey: r.key },
            lost ? 'bounce' : 'delivered',
          ),
          receipt.delayMs,
        );
      }
    });
    state.remember('sendgrid', key, [id], null);
    record(state, 'sendgrid', request, 'accepted', 202, key);
    await answerLate(state, request, reply);
    return reply.code(202).header('X-Message-Id', id).send();
  });
}
