/**
 * Registered applications and their API keys (src/auth/apps.ts, docs/apps.md). Reading needs
 * a viewer, every change an admin. A key is in the answer of the request that creates it and
 * nowhere else, ever. Every 400 names the `field` at fault, whether the schema or the app's
 * rules refused it.
 */
import { Type, type FastifyPluginAsyncTypebox, type Static } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import {
  AppError,
  APP_BOUNDS,
  CLIENT_ID_PATTERN,
  createApp,
  LOCALE_PATTERN,
  createAppKey,
  getApp,
  listAppKeys,
  listApps,
  revokeAppKey,
  setAppDisabled,
  updateApp,
  type AppDeps,
  type AppLimit,
  type AppSettings,
} from '../../auth/apps';
import { AUTH_METHODS } from '../../shared/auth';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const Method = Type.Union([Type.Literal('sms_otp'), Type.Literal('magic_link')]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const Uuid = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
});
const ClientId = Type.String({ pattern: CLIENT_ID_PATTERN, maxLength: 64 });

const Limit = Type.Object(
  {
    window_seconds: Type.Integer({
      minimum: APP_BOUNDS.limitWindowSeconds.min,
      maximum: APP_BOUNDS.limitWindowSeconds.max,
    }),
    max_attempts: Type.Integer({ minimum: APP_BOUNDS.limitMaxAttempts.min, maximum: APP_BOUNDS.limitMaxAttempts.max }),
  },
  { additionalProperties: false },
);
const NullableLimit = Type.Union([Limit, Type.Null()], {
  description: 'a sliding window across all the app’s users and addresses; null: no limit of the app’s own',
});
const Urls = (description: string) =>
  Type.Array(Type.String({ minLength: 1, maxLength: APP_BOUNDS.urlLength }), {
    maxItems: APP_BOUNDS.urls,
    description,
  });

const SettingsFields = {
  name: Type.String({ minLength: 1, maxLength: APP_BOUNDS.nameLength }),
  redirect_uris: Urls(
    'where a sign-in may return to, matched exactly: https, or http on 127.0.0.1, [::1] or localhost; no fragment',
  ),
  web_origins: Urls('browser origins that may call Warden for the app: scheme://host[:port], same https rule'),
  methods: Type.Array(Method, { minItems: 1, maxItems: AUTH_METHODS.length }),
  token_ttl_seconds: Type.Integer({
    minimum: APP_BOUNDS.tokenTtlSeconds.min,
    maximum: APP_BOUNDS.tokenTtlSeconds.max,
    // no `default` keyword: Ajv would fill it into every PATCH body
    description: `lifetime of the tokens issued to the app; ${APP_BOUNDS.tokenTtlSeconds.default} when not given`,
  }),
  initiate_limit: NullableLimit,
  verify_limit: NullableLimit,
  locale: Type.Union([Type.String({ pattern: LOCALE_PATTERN, maxLength: APP_BOUNDS.localeLength }), Type.Null()], {
    description:
      'the language of its users’ messages (en, pt-BR) when they have none of their own or one without templates; null: none',
  }),
};

const CreateBody = Type.Object(
  {
    client_id: ClientId,
    name: SettingsFields.name,
    methods: SettingsFields.methods,
    redirect_uris: Type.Optional(SettingsFields.redirect_uris),
    web_origins: Type.Optional(SettingsFields.web_origins),
    token_ttl_seconds: Type.Optional(SettingsFields.token_ttl_seconds),
    initiate_limit: Type.Optional(SettingsFields.initiate_limit),
    verify_limit: Type.Optional(SettingsFields.verify_limit),
    locale: Type.Optional(SettingsFields.locale),
  },
  { additionalProperties: false },
);
const PatchBody = Type.Object(
  Object.fromEntries(Object.entries(SettingsFields).map(([k, v]) => [k, Type.Optional(v)])) as {
    [K in keyof typeof SettingsFields]: ReturnType<typeof Type.Optional<(typeof SettingsFields)[K]>>;
  },
  { additionalProperties: false, minProperties: 1 },
);
type SettingsBody = Partial<Static<typeof CreateBody>>;

const AppBody = Type.Object(
  {
    client_id: Type.String(),
    name: Type.String(),
    redirect_uris: Type.Array(Type.String()),
    web_origins: Type.Array(Type.String()),
    methods: Type.Array(Method),
    token_ttl_seconds: Type.Integer(),
    initiate_limit: Type.Union([Limit, Type.Null()]),
    verify_limit: Type.Union([Limit, Type.Null()]),
    locale: NullableString,
    disabled: Type.Boolean(),
    disabled_at: NullableString,
    created_by: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
const KeyBody = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    client_id: Type.String(),
    hint: Type.String({ description: 'the key’s first characters, to tell keys apart' }),
    label: NullableString,
    created_by: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    expires_at: NullableString,
    last_used_at: Type.Union([Type.String(), Type.Null()], {
      description: 'refreshed at most once a minute',
    }),
    revoked_at: NullableString,
    active: Type.Boolean(),
  },
  { additionalProperties: false },
);
/** A body that may be left out (Fastify validates a missing body as null), or `{}`. */
const NoBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()]);
const AppParams = Type.Object({ client_id: ClientId });
const KeyParams = Type.Object({ client_id: ClientId, key_id: Uuid });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

const STATUS = { invalid_request: 400, not_found: 404, app_exists: 409 } as const;

async function http<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof AppError)
      throw new ApiError(STATUS[err.code], err.code, err.message, err.field ? { field: err.field } : {});
    throw err;
  }
}

/**
 * The routes validate with `attachValidation`, and this turns a schema refusal into the same
 * 400 `invalid_request` the error handler would answer, plus the `field` it concerns: the first
 * segment of the refused path, or the property that is missing or not allowed.
 */
async function refuseInvalid(request: FastifyRequest): Promise<void> {
  const failed = request.validationError;
  if (!failed) return;
  const first = failed.validation[0];
  const params = (first?.params ?? {}) as { missingProperty?: string; additionalProperty?: string };
  const field = (first?.instancePath ?? '').split('/')[1] || params.missingProperty || params.additionalProperty;
  throw new ApiError(
    400,
    'invalid_request',
    // Fastify's own sentence names the path: `body/initiate_limit must be object`
    failed.message.replace(/\s+/g, ' '),
    field ? { field } : {},
  );
}

const limitOf = (limit: Static<typeof Limit> | null | undefined): AppLimit | null | undefined =>
  limit && { windowSeconds: limit.window_seconds, maxAttempts: limit.max_attempts };

/** A body's settings in the module's spelling; absent fields stay absent. */
function settingsOf(body: SettingsBody): Partial<AppSettings> {
  const out: Partial<AppSettings> = {
    name: body.name,
    redirectUris: body.redirect_uris,
    webOrigins: body.web_origins,
    methods: body.methods,
    tokenTtlSeconds: body.token_ttl_seconds,
    initiateLimit: limitOf(body.initiate_limit),
    verifyLimit: limitOf(body.verify_limit),
    locale: body.locale,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

const apps: FastifyPluginAsyncTypebox = async (app) => {
  const deps = (): AppDeps => ({ db: app.warden.db, logger: app.warden.logger });
  const actor = (request: FastifyRequest) => operatorOf(request).name;

  // this plugin is its own encapsulation context: the hook sees these routes only
  app.addHook('preHandler', refuseInvalid);

  app.post(
    '/apps',
    {
      attachValidation: true,
      schema: { body: CreateBody, response: { 201: AppBody, ...errors } },
    },
    async (request, reply) => {
      const body = request.body;
      const created = await http(
        createApp(
          deps(),
          {
            ...settingsOf(body),
            clientId: body.client_id,
            name: body.name,
            methods: body.methods,
          },
          actor(request),
        ),
      );
      return reply
        .status(201)
        .header('location', `/admin/api/v1/apps/${encodeURIComponent(created.client_id)}`)
        .send(created);
    },
  );

  app.get(
    '/apps',
    {
      attachValidation: true,
      schema: {
        querystring: Type.Object(
          {
            cursor: Type.Optional(ClientId),
            limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$', description: '1..500, default 100' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ apps: Type.Array(AppBody), next_cursor: NullableString }), ...errors },
      },
    },
    async (request) =>
      http(
        listApps(app.warden.db, {
          cursor: request.query.cursor,
          limit: Math.min(Number(request.query.limit ?? 100), 500),
        }),
      ),
  );

  app.get(
    '/apps/:client_id',
    { attachValidation: true, schema: { params: AppParams, response: { 200: AppBody, ...errors } } },
    async (request) => http(getApp(app.warden.db, request.params.client_id)),
  );

  app.patch(
    '/apps/:client_id',
    {
      attachValidation: true,
      schema: { params: AppParams, body: PatchBody, response: { 200: AppBody, ...errors } },
    },
    async (request) => http(updateApp(deps(), request.params.client_id, settingsOf(request.body), actor(request))),
  );

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(
      `/apps/:client_id/${action}`,
      {
        attachValidation: true,
        schema: { params: AppParams, body: NoBody, response: { 200: AppBody, ...errors } },
      },
      async (request) => http(setAppDisabled(deps(), request.params.client_id, disabled, actor(request))),
    );
  }

  app.post(
    '/apps/:client_id/keys',
    {
      attachValidation: true,
      schema: {
        params: AppParams,
        // may be left out: no label, no expiry
        body: Type.Union([
          Type.Object(
            {
              label: Type.Optional(
                Type.String({
                  minLength: 1,
                  maxLength: APP_BOUNDS.labelLength,
                  pattern: '^[^\\u0000-\\u001f\\u007f]+$',
                }),
              ),
              expires_in_seconds: Type.Optional(
                Type.Integer({
                  minimum: APP_BOUNDS.keyExpiresInSeconds.min,
                  maximum: APP_BOUNDS.keyExpiresInSeconds.max,
                }),
              ),
            },
            { additionalProperties: false },
          ),
          Type.Null(),
        ]),
        response: {
          201: Type.Object(
            {
              key: Type.String({ description: 'the key itself: shown here once, never again' }),
              info: KeyBody,
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const created = await http(
        createAppKey(
          deps(),
          request.params.client_id,
          { label: request.body?.label, expiresInSeconds: request.body?.expires_in_seconds },
          actor(request),
        ),
      );
      // the one answer that carries a credential: never cached anywhere
      return reply.status(201).header('Cache-Control', 'no-store').send(created);
    },
  );

  app.get(
    '/apps/:client_id/keys',
    {
      attachValidation: true,
      schema: { params: AppParams, response: { 200: Type.Object({ keys: Type.Array(KeyBody) }), ...errors } },
    },
    async (request) => ({ keys: await http(listAppKeys(app.warden.db, request.params.client_id)) }),
  );

  app.post(
    '/apps/:client_id/keys/:key_id/revoke',
    { attachValidation: true, schema: { params: KeyParams, body: NoBody, response: { 200: KeyBody, ...errors } } },
    async (request) => http(revokeAppKey(deps(), request.params.client_id, request.params.key_id, actor(request))),
  );
};

export default apps;
