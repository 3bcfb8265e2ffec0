import type { FastifyInstance } from 'fastify';
import { twilioDeliveredCallback } from '../callbacks';
import {
  answerLate,
  applyFault,
  asForm,
  basicAuth,
  E164,
  field,
  receiptTiming,
  record,
  sendFailure,
  undelivered,
  urlParam,
  type FaultShapes,
  type FormBody,
  type ProviderFailure,
} from '../http';
import { hexId } from '../state';
import type { SandboxContext } from '../context';
import { deliverInbound } from '../inbound';

/** Twilio's error body: https://www.twilio.com/docs/usage/twilios-response */
function twilioError(status: number, code: number, message: string): ProviderFailure {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status } };
}

/** Twilio's codes for the HTTP-level failures a fault can simulate. */
function twilioHttpFailure(status: number): ProviderFailure {
  if (status === 429) return twilioError(429, 20429, 'Too Many Requests');
  if (status >= 500) return twilioError(status, 20500, 'An internal server error has occurred');
  if (status === 401 || status === 403) return twilioError(status, 20003, 'Authenticate');
  if (status === 404) return twilioError(status, 20404, 'The requested resource was not found');
  return twilioError(status, 20001, 'Bad request');
}

const shapes: FaultShapes = {
  error: twilioHttpFailure,
  permanent: () => twilioError(400, 21211, "The 'To' number is not a valid phone number."),
};

/** Twilio writes dates as RFC 2822 with a numeric zone. */
function twilioDate(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

/** GSM-7 fits 160 characters per segment (153 when concatenated); good enough for a sandbox. */
function segments(body: string): number {
  return body.length <= 160 ? 1 : Math.ceil(body.length / 153);
}

/** Twilio's own answers to a message it cannot send, in the order it checks. */
function parseMessage(form: FormBody): { to: string; from: string; body: string } | { failure: ProviderFailure } {
  const to = field(form, 'To');
  const from = field(form, 'From') ?? field(form, 'MessagingServiceSid');
  const body = field(form, 'Body');
  if (!to) return { failure: twilioError(400, 21604, "A 'To' phone number is required.") };
  if (!from) return { failure: twilioError(400, 21603, "A 'From' phone number is required.") };
  if (!body) return { failure: twilioError(400, 21602, 'Message body is required.') };
  if (!E164.test(to)) return { failure: twilioError(400, 21211, `The 'To' number ${to} is not a valid phone number.`) };
  return { to, from, body };
}

/**
 * POST /2010-04-01/Accounts/:sid/Messages.json as twilio-node sends it: form-encoded To,
 * From, Body, StatusCallback. The idempotency key is read from the I-Twilio-Idempotency-Token
 * header, else from the `idempotency_key` query parameter of StatusCallback.
 */
export async function twilioRoutes(app: FastifyInstance, { state, callbacks }: SandboxContext): Promise<void> {
  app.post<{ Params: { sid: string } }>('/2010-04-01/Accounts/:sid/Messages.json', async (request, reply) => {
    const form = asForm(request.body);
    const statusCallback = field(form, 'StatusCallback');
    const headerKey = request.headers['i-twilio-idempotency-token'];
    const key = (typeof headerKey === 'string' && headerKey) || urlParam(statusCallback, 'idempotency_key') || null;

    const auth = basicAuth(request);
    if (!auth || (auth.user !== request.params.sid && !auth.user.startsWith('SK'))) {
      record(state, 'twilio', request, 'rejected', 401, key);
      return sendFailure(reply, twilioError(401, 20003, 'Authenticate'));
    }

    if (await applyFault(state, 'twilio', request, reply, shapes, key)) return reply;

    const parsed = parseMessage(form);
    if ('failure' in parsed) {
      record(state, 'twilio', request, 'rejected', parsed.failure.status, key);
      return sendFailure(reply, parsed.failure);
    }
    const { to, from, body } = parsed;

    const original = state.recall('twilio', key);
    if (original) {
      record(state, 'twilio', request, 'deduplicated', 201, key);
      await answerLate(state, request, reply);
      return reply.code(201).send(original.response);
    }

    const sid = hexId('SM');
    const now = twilioDate(new Date());
    const accountSid = request.params.sid;
    const uri = `/2010-04-01/Accounts/${accountSid}/Messages/${sid}`;
    const response = {
      account_sid: accountSid,
      api_version: '2010-04-01',
      body,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from,
      messaging_service_sid: field(form, 'MessagingServiceSid') ?? null,
      num_media: '0',
      num_segments: String(segments(body)),
      price: null,
      price_unit: 'USD',
      sid,
      status: 'queued',
      subresource_uris: { media: `${uri}/Media.json` },
      to,
      uri: `${uri}.json`,
    };
    const lost = undelivered(request);
    if (!lost) {
      state.addMessage({ id: sid, provider: 'twilio', channel: 'sms', to, subject: null, body, idempotency_key: key });
      deliverInbound(state, callbacks, { from, to, body });
    }
    state.remember('twilio', key, [sid], response);
    record(state, 'twilio', request, 'accepted', 201, key);

    const receipt = receiptTiming(request);
    if (statusCallback && state.callbacksEnabled && receipt.send) {
      callbacks.schedule(
        twilioDeliveredCallback(
          statusCallback,
          auth.password,
          { sid, accountSid, from, to },
          lost ? 'undelivered' : 'delivered',
        ),
        receipt.delayMs,
      );
    }
    await answerLate(state, request, reply);
    return reply.code(201).send(response);
  });
}
