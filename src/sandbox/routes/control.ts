import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { SandboxContext } from '../context';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { DELAYING_MODES, FAULT_MODES, FAULTABLE, INDICATORS, type WebhookProvider } from '../state';

const ProviderName = Type.Union(FAULTABLE.map((p) => Type.Literal(p)));
const IndicatorName = Type.Union(INDICATORS.map((i) => Type.Literal(i)));
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });

const OutboxMessage = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  channel: Type.Union([Type.Literal('sms'), Type.Literal('email')]),
  to: Type.String(),
  subject: Nullable(Type.String()),
  body: Type.String(),
  html: Type.Optional(Type.String()),
  idempotency_key: Nullable(Type.String()),
  created_at: Type.String(),
});

const SlackCall = Type.Object({
  method: Type.String(),
  channel: Nullable(Type.String()),
  text: Nullable(Type.String()),
  blocks: Type.Unknown(),
  thread_ts: Nullable(Type.String()),
  ts: Type.String(),
  view: Type.Optional(Type.Unknown()),
  trigger_id: Type.Optional(Nullable(Type.String())),
  view_id: Type.Optional(Nullable(Type.String())),
  user: Type.Optional(Nullable(Type.String())),
  created_at: Type.String(),
});

const SlackId = Type.String({ pattern: '^[A-Z0-9]{2,32}$' });
const UsergroupBody = Type.Object(
  { usergroup: Type.String({ pattern: '^S[A-Z0-9]{2,31}$' }), users: Type.Array(SlackId, { maxItems: 1000 }) },
  { additionalProperties: false },
);

const RequestRecord = Type.Object({
  seq: Type.Integer(),
  provider: Type.String(),
  method: Type.String(),
  path: Type.String(),
  outcome: Type.String(),
  status: Type.Integer(),
  fault: Nullable(Type.String()),
  idempotency_key: Nullable(Type.String()),
  created_at: Type.String(),
});

const FaultBody = Type.Object(
  {
    provider: ProviderName,
    mode: Type.Union(FAULT_MODES.map((m) => Type.Literal(m))),
    status: Type.Optional(Type.Integer({ minimum: 400, maximum: 599 })),
    count: Type.Optional(Type.Integer({ minimum: 1 })),
    retry_after: Type.Optional(Type.Integer({ minimum: 0 })),
    // `delay` mode: how late the accepted message is answered; `late_receipt`: how late it is reported
    delay_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  },
  { additionalProperties: false },
);

const FaultView = Type.Object({
  provider: Type.String(),
  mode: Type.String(),
  status: Type.Integer(),
  count: Nullable(Type.Integer()),
  retry_after: Nullable(Type.Integer()),
  delay_ms: Type.Optional(Type.Integer()),
});

const WebhookName = Type.Union([Type.Literal('sendgrid'), Type.Literal('ses')]);
const WebhookBody = Type.Object(
  {
    provider: WebhookName,
    url: Type.String({ pattern: '^https?://' }),
    // PEM private key to sign with (ECDSA P-256 for SendGrid, RSA for SNS); generated when absent
    private_key: Type.Optional(Type.String({ pattern: '^-----BEGIN (EC |RSA )?PRIVATE KEY-----' })),
  },
  { additionalProperties: false },
);
const WebhookView = Type.Object({ provider: Type.String(), url: Type.String(), public_key: Type.String() });

// a number with an incoming-message webhook (the canary's phone); the token is never shown back
const InboundBody = Type.Object(
  {
    number: Type.String({ pattern: '^\\+?[1-9][0-9]{6,14}$' }),
    provider: Type.Union([Type.Literal('twilio'), Type.Literal('plivo')]),
    url: Type.String({ pattern: '^https?://' }),
    auth_token: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);
const InboundView = Type.Object({ number: Type.String(), provider: Type.String(), url: Type.String() });

// a mailbox with inbound email (the canary's address): SendGrid Inbound Parse to `url` (its
// secret path token is in the URL), or SES receipts through SNS signed with `private_key`
// (generated when absent; the public half is shown, as SNS shows its signing certificate)
const MailboxBody = Type.Object(
  {
    address: Type.String({ pattern: '^[^\\s@<>]+@[^\\s@<>]+\\.[^\\s@<>]+$', maxLength: 320 }),
    provider: Type.Union([Type.Literal('sendgrid'), Type.Literal('ses')]),
    url: Type.String({ pattern: '^https?://' }),
    private_key: Type.Optional(Type.String({ pattern: '^-----BEGIN (RSA )?PRIVATE KEY-----' })),
  },
  { additionalProperties: false },
);
// the view never shows the URL: it carries the receiving side's secret path token
const MailboxView = Type.Object({
  address: Type.String(),
  provider: Type.String(),
  public_key: Type.Optional(Type.String()),
});

/** The public key as the provider shows it: base64 DER for SendGrid, PEM for SNS. */
function webhookKeys(
  provider: WebhookProvider,
  privatePem: string | undefined,
): { privateKey: string; publicKey: string } {
  let privateKey = privatePem;
  if (!privateKey) {
    const pair =
      provider === 'sendgrid'
        ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
    privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }
  const pub = createPublicKey(createPrivateKey(privateKey));
  const publicKey =
    provider === 'sendgrid'
      ? pub.export({ type: 'spki', format: 'der' }).toString('base64')
      : pub.export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicKey };
}

/**
 * The sandbox's control API, used by black-box tests. Its shape is a contract: the response
 * schemas below both document it and make sure nothing else leaks into it.
 */
export const controlRoutes: FastifyPluginAsyncTypebox<SandboxContext> = async (app, { state }) => {
  const faultsView = () =>
    state.listFaults().map((f) => ({
      provider: f.provider,
      mode: f.mode,
      status: f.status,
      count: f.remaining ?? null,
      retry_after: f.retryAfter ?? null,
      ...(f.delayMs !== undefined ? { delay_ms: f.delayMs } : {}),
    }));

  app.get(
    '/sandbox/messages',
    {
      schema: {
        querystring: Type.Object({ to: Type.Optional(Type.String({ minLength: 1 })) }),
        response: { 200: Type.Object({ messages: Type.Array(OutboxMessage) }) },
      },
    },
    async (request) => ({ messages: state.messages(request.query.to) }),
  );

  app.delete(
    '/sandbox/messages',
    { schema: { response: { 200: Type.Object({ messages: Type.Array(OutboxMessage) }) } } },
    async () => {
      state.clearMessages();
      return { messages: [] };
    },
  );

  app.post(
    '/sandbox/faults',
    { schema: { body: FaultBody, response: { 200: Type.Object({ faults: Type.Array(FaultView) }), 400: ErrorBody } } },
    async (request) => {
      const { provider, mode, status, count, retry_after: retryAfter, delay_ms: delayMs } = request.body;
      state.setFault({
        provider,
        mode,
        status: status ?? 503,
        remaining: count,
        retryAfter,
        ...(DELAYING_MODES.includes(mode) ? { delayMs: delayMs ?? 2000 } : {}),
      });
      return { faults: faultsView() };
    },
  );

  app.get(
    '/sandbox/faults',
    { schema: { response: { 200: Type.Object({ faults: Type.Array(FaultView) }) } } },
    async () => ({
      faults: faultsView(),
    }),
  );

  app.delete(
    '/sandbox/faults',
    {
      schema: {
        querystring: Type.Object({ provider: Type.Optional(ProviderName) }),
        response: { 200: Type.Object({ faults: Type.Array(FaultView) }), 400: ErrorBody },
      },
    },
    async (request) => {
      state.clearFaults(request.query.provider);
      return { faults: faultsView() };
    },
  );

  app.post(
    '/sandbox/status',
    {
      schema: {
        body: Type.Object({ provider: ProviderName, indicator: IndicatorName }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            provider: Type.String(),
            status: Type.Object({ indicator: Type.String(), description: Type.String() }),
          }),
          400: ErrorBody,
        },
      },
    },
    async (request) => {
      state.setIndicator(request.body.provider, request.body.indicator);
      return { provider: request.body.provider, status: state.status(request.body.provider) };
    },
  );

  app.get(
    '/sandbox/slack',
    { schema: { response: { 200: Type.Object({ messages: Type.Array(SlackCall) }) } } },
    async () => ({
      messages: state.slackCalls(),
    }),
  );

  // the members usergroups.users.list answers for a user group (a group never set is unknown)
  app.put(
    '/sandbox/slack/usergroups',
    { schema: { body: UsergroupBody, response: { 200: UsergroupBody, 400: ErrorBody } } },
    async (request) => {
      state.setSlackUsergroup(request.body.usergroup, request.body.users);
      return { usergroup: request.body.usergroup, users: state.slackUsergroup(request.body.usergroup) ?? [] };
    },
  );

  app.get(
    '/sandbox/requests',
    { schema: { response: { 200: Type.Object({ requests: Type.Array(RequestRecord) }) } } },
    async () => ({
      requests: state.requestLog(),
    }),
  );

  // A harmless default target for delivery callbacks when the caller configured none (see
  // providers/plivo.ts): the key still travels on the URL and nobody has to listen for it.
  app.post('/sandbox/callbacks/:provider', async (_request, reply) => reply.code(204).send());

  // Account-level event webhooks: SendGrid's Event Webhook (signed with ECDSA) and SES events
  // published to an SNS topic with an HTTP(S) subscription (signed with RSA, SignatureVersion 2).
  const webhooksView = () =>
    state.listWebhooks().map((w) => ({ provider: w.provider, url: w.url, public_key: w.publicKey }));

  app.post(
    '/sandbox/webhooks',
    { schema: { body: WebhookBody, response: { 200: WebhookView, 400: ErrorBody } } },
    async (request, reply) => {
      const { provider, url, private_key: privatePem } = request.body;
      let keys;
      try {
        keys = webhookKeys(provider, privatePem);
      } catch {
        return reply
          .code(400)
          .send({ error: 'invalid_request', message: 'private_key is not a usable PEM private key' });
      }
      state.setWebhook({ provider, url, ...keys });
      return { provider, url, public_key: keys.publicKey };
    },
  );

  app.get(
    '/sandbox/webhooks',
    { schema: { response: { 200: Type.Object({ webhooks: Type.Array(WebhookView) }) } } },
    async () => ({ webhooks: webhooksView() }),
  );

  app.delete(
    '/sandbox/webhooks',
    {
      schema: {
        querystring: Type.Object({ provider: Type.Optional(WebhookName) }),
        response: { 200: Type.Object({ webhooks: Type.Array(WebhookView) }), 400: ErrorBody },
      },
    },
    async (request) => {
      state.clearWebhooks(request.query.provider);
      return { webhooks: webhooksView() };
    },
  );

  const inboundView = () => state.listInbound().map(({ number, provider, url }) => ({ number, provider, url }));

  app.post(
    '/sandbox/inbound',
    { schema: { body: InboundBody, response: { 200: Type.Object({ numbers: Type.Array(InboundView) }) } } },
    async (request) => {
      const { number, provider, url, auth_token: authToken } = request.body;
      state.setInbound({ number, provider, url, authToken });
      return { numbers: inboundView() };
    },
  );

  app.get(
    '/sandbox/inbound',
    { schema: { response: { 200: Type.Object({ numbers: Type.Array(InboundView) }) } } },
    async () => ({ numbers: inboundView() }),
  );

  app.delete(
    '/sandbox/inbound',
    { schema: { response: { 200: Type.Object({ numbers: Type.Array(InboundView) }) } } },
    async () => {
      state.clearInbound();
      return { numbers: [] };
    },
  );

  const mailboxView = () =>
    state.listMailboxes().map(({ address, provider, publicKey }) => ({
      address,
      provider,
      ...(publicKey ? { public_key: publicKey } : {}),
    }));

  app.post(
    '/sandbox/mailboxes',
    {
      schema: {
        body: MailboxBody,
        response: { 200: Type.Object({ mailboxes: Type.Array(MailboxView) }), 400: ErrorBody },
      },
    },
    async (request, reply) => {
      const { address, provider, url, private_key: privatePem } = request.body;
      if (provider === 'sendgrid' && privatePem)
        return reply
          .code(400)
          .send({ error: 'invalid_request', message: 'SendGrid Inbound Parse signs nothing: no private_key' });
      let keys: { privateKey?: string; publicKey?: string } = {};
      if (provider === 'ses') {
        try {
          keys = webhookKeys('ses', privatePem);
        } catch {
          return reply
            .code(400)
            .send({ error: 'invalid_request', message: 'private_key is not a usable PEM private key' });
        }
      }
      state.setMailbox({ address, provider, url, ...keys });
      return { mailboxes: mailboxView() };
    },
  );

  app.get(
    '/sandbox/mailboxes',
    { schema: { response: { 200: Type.Object({ mailboxes: Type.Array(MailboxView) }) } } },
    async () => ({ mailboxes: mailboxView() }),
  );

  app.delete(
    '/sandbox/mailboxes',
    { schema: { response: { 200: Type.Object({ mailboxes: Type.Array(MailboxView) }) } } },
    async () => {
      state.clearMailboxes();
      return { mailboxes: [] };
    },
  );

  app.get('/sandbox/health', async () => ({ ok: true }));
};
