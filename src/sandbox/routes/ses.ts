import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { decodeTagValue, SES_TAG_NAME } from '../../providers/idempotency';
import type { SandboxContext } from '../context';
import { sesEventCallback } from '../callbacks';
import { deliverInboundEmail } from '../inbound';
import {
  answerLate,
  applyFault,
  asForm,
  EMAIL,
  field,
  receiptTiming,
  record,
  sendFailure,
  undelivered,
  type FaultShapes,
  type FormBody,
  type ProviderFailure,
} from '../http';

const XMLNS = 'http://ses.amazonaws.com/doc/2010-12-01/';

function xml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The query protocol's error document, which the SDK turns into a typed exception by Code. */
function sesError(
  status: number,
  code: string,
  message: string,
  type: 'Sender' | 'Receiver' = 'Sender',
): ProviderFailure {
  const body =
    `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${type}</Type><Code>${code}</Code>` +
    `<Message>${xml(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
  return { status, body, contentType: 'text/xml' };
}

// Real SES throttles with HTTP 400 + Code Throttling; the sandbox uses 429 so that the
// status code alone tells transient from permanent, and the code still says Throttling.
const shapes: FaultShapes = {
  error: (status) =>
    status === 429
      ? sesError(429, 'Throttling', 'Maximum sending rate exceeded.')
      : sesError(
          status,
          status === 500 ? 'InternalFailure' : 'ServiceUnavailable',
          'Service is unavailable.',
          'Receiver',
        ),
  permanent: () => sesError(400, 'InvalidParameterValue', "Missing final '@domain'"),
};

/** Query-protocol lists: `Prefix.member.1`, `Prefix.member.2`, ... */
function members(form: FormBody, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; ; i += 1) {
    const value = field(form, `${prefix}.member.${i}`);
    if (value === undefined) return out;
    out.push(value);
  }
}

/** The raw (tag-encoded) value of the idempotency tag, as SES echoes it in events. */
function tagValue(form: FormBody): string | null {
  for (let i = 1; ; i += 1) {
    const name = field(form, `Tags.member.${i}.Name`);
    if (name === undefined) return null;
    const value = field(form, `Tags.member.${i}.Value`);
    if (name === SES_TAG_NAME && value) return value;
  }
}

function tagKey(form: FormBody): string | null {
  const value = tagValue(form);
  return value === null ? null : decodeTagValue(value);
}

/** SES message ids: a hex timestamp-ish prefix, a UUID and a suffix. */
function messageId(): string {
  return `010001${randomBytes(5).toString('hex')}-${randomUUID()}-000000`;
}

function sendEmailResponse(reply: FastifyReply, id: string): FastifyReply {
  const requestId = randomUUID();
  return reply
    .code(200)
    .type('text/xml')
    .header('x-amzn-RequestId', requestId)
    .send(
      `<SendEmailResponse xmlns="${XMLNS}"><SendEmailResult><MessageId>${id}</MessageId></SendEmailResult>` +
        `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></SendEmailResponse>`,
    );
}

/**
 * What @aws-sdk/client-ses sends with `endpoint: <sandbox>/ses`: a form-encoded POST with
 * Action=SendEmail (AWS query protocol). The idempotency key is the message tag
 * `idempotency_key`, decoded from its tag-safe form.
 */
export async function sesRoutes(app: FastifyInstance, { state, callbacks }: SandboxContext): Promise<void> {
  app.post('/ses/', async (request, reply) => {
    const form = asForm(request.body);
    const key = tagKey(form);

    // Signature verification would need the secret; presence of a SigV4 header is the contract.
    if (!request.headers.authorization?.startsWith('AWS4-HMAC-SHA256 Credential=')) {
      record(state, 'ses', request, 'rejected', 403, key);
      return sendFailure(reply, sesError(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token'));
    }
    const action = field(form, 'Action');
    if (action !== 'SendEmail') {
      record(state, 'ses', request, 'rejected', 400, key);
      return sendFailure(
        reply,
        sesError(400, 'InvalidAction', `The action ${action ?? '(none)'} is not valid for this web service.`),
      );
    }

    if (await applyFault(state, 'ses', request, reply, shapes, key)) return reply;

    const source = field(form, 'Source');
    const to = members(form, 'Destination.ToAddresses');
    const subject = field(form, 'Message.Subject.Data');
    const html = field(form, 'Message.Body.Html.Data');
    const text = field(form, 'Message.Body.Text.Data') ?? html;
    if (!source || !subject || !text) {
      const missing = !source ? 'source' : !subject ? 'message.subject' : 'message.body';
      record(state, 'ses', request, 'rejected', 400, key);
      return sendFailure(
        reply,
        sesError(
          400,
          'ValidationError',
          `1 validation error detected: Value null at '${missing}' failed to satisfy constraint: Member must not be null`,
        ),
      );
    }
    if (to.length === 0 || !to.every((address) => EMAIL.test(address))) {
      record(state, 'ses', request, 'rejected', 400, key);
      return sendFailure(reply, shapes.permanent());
    }

    const original = state.recall('ses', key);
    if (original) {
      record(state, 'ses', request, 'deduplicated', 200, key);
      await answerLate(state, request, reply);
      return sendEmailResponse(reply, original.ids[0] ?? '');
    }

    const id = messageId();
    const lost = undelivered(request);
    const receipt = receiptTiming(request);
    const webhook = state.webhook('ses');
    const origin = `${request.protocol}://${request.host}`;
    to.forEach((address, i) => {
      const entryId = i === 0 ? id : `${id}.${i}`;
      if (!lost) {
        state.addMessage({
          id: entryId,
          provider: 'ses',
          channel: 'email',
          to: address,
          subject,
          body: text,
          ...(html ? { html } : {}),
          idempotency_key: key,
        });
        deliverInboundEmail(state, callbacks, 'ses', origin, {
          from: source,
          to: address,
          subject,
          text,
          ...(html ? { html } : {}),
        });
      }
      if (webhook && state.callbacksEnabled && receipt.send) {
        const event = sesEventCallback(
          webhook.url,
          webhook.privateKey,
          origin,
          { id: entryId, to: address, from: source, tagValue: tagValue(form) },
          lost ? 'Bounce' : 'Delivery',
        );
        callbacks.schedule(event, receipt.delayMs);
      }
    });
    state.remember('ses', key, [id], null);
    record(state, 'ses', request, 'accepted', 200, key);
    await answerLate(state, request, reply);
    return sendEmailResponse(reply, id);
  });
}
