/**
 * Runtime settings of the auth flows, changed without a restart: rate limits (the
 * `rate_limiting` setting) and challenge lifetimes/budgets. Every process sees a change within
 * 5 s; this one at once. Partial bodies change only what they name.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Value } from '@sinclair/typebox/value';
import { AuditEventType, recordAudit } from '../../auth/audit';
import {
  ChallengeSettings,
  CHALLENGE_SETTINGS_KEY,
  RateLimitSettings,
  RATE_LIMITING_KEY,
  type ChallengeSettings as ChallengeSettingsValue,
  type RateLimitSettings as RateLimitSettingsValue,
} from '../../auth/settings';
import { durationMs } from '../../shared/format';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const RuleUpdate = Type.Object(
  {
    window_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
    // the configuration's spelling: `window: 5m`
    window: Type.Optional(Type.String({ pattern: '^[0-9]{1,5}[smh]$' })),
    max_attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);
const RateLimitsUpdate = Type.Object(
  { per_user: Type.Optional(RuleUpdate), per_ip: Type.Optional(RuleUpdate) },
  { additionalProperties: false, minProperties: 1 },
);
const ChallengeSettingsUpdate = Type.Object(
  Object.fromEntries(
    Object.entries(ChallengeSettings.properties).map(([name, schema]) => [
      name,
      Type.Optional(Type.Integer({ minimum: schema.minimum, maximum: schema.maximum })),
    ]),
  ),
  { additionalProperties: false, minProperties: 1 },
);

function windowSeconds(rule: { window_seconds?: number; window?: string }): number | undefined {
  if (rule.window_seconds !== undefined && rule.window !== undefined) {
    throw new ApiError(400, 'invalid_request', 'give either window_seconds or window, not both');
  }
  if (rule.window === undefined) return rule.window_seconds;
  // the schema's pattern admits only what durationMs reads
  return durationMs(rule.window)! / 1000;
}

const ratelimits: FastifyPluginAsyncTypebox = async (app) => {
  const settings = () => app.warden.settings;

  async function change<T>(
    actor: string,
    key: string,
    previous: T,
    next: T,
    schema: typeof RateLimitSettings | typeof ChallengeSettings,
  ): Promise<T> {
    if (!Value.Check(schema, next)) {
      const first = [...Value.Errors(schema, next)][0];
      throw new ApiError(400, 'invalid_request', `${first?.path || 'body'} ${first?.message ?? 'is invalid'}`);
    }
    await settings().put(key, next, actor);
    await recordAudit(app.warden.db, app.warden.logger.child({ component: 'audit' }), {
      type: AuditEventType.settingsChanged,
      outcome: 'updated',
      reason: key,
      details: { key, previous, value: next, actor },
    });
    return next;
  }

  app.get('/ratelimits', { schema: { response: { 200: RateLimitSettings } } }, async () => settings().rateLimits());

  app.put(
    '/ratelimits',
    { schema: { body: RateLimitsUpdate, response: { 200: RateLimitSettings, 400: ErrorBody } } },
    async (request) => {
      const previous = await settings().rateLimits();
      const merge = (current: RateLimitSettingsValue['per_user'], update: typeof request.body.per_user) => {
        if (!update) return current;
        const seconds = windowSeconds(update);
        return {
          window_seconds: seconds ?? current.window_seconds,
          max_attempts: update.max_attempts ?? current.max_attempts,
        };
      };
      const next: RateLimitSettingsValue = {
        per_user: merge(previous.per_user, request.body.per_user),
        per_ip: merge(previous.per_ip, request.body.per_ip),
      };
      return change(operatorOf(request).name, RATE_LIMITING_KEY, previous, next, RateLimitSettings);
    },
  );

  app.get('/auth/settings', { schema: { response: { 200: ChallengeSettings } } }, async () => settings().challenge());

  app.put(
    '/auth/settings',
    { schema: { body: ChallengeSettingsUpdate, response: { 200: ChallengeSettings, 400: ErrorBody } } },
    async (request) => {
      const previous = await settings().challenge();
      const next: ChallengeSettingsValue = { ...previous, ...request.body };
      return change(operatorOf(request).name, CHALLENGE_SETTINGS_KEY, previous, next, ChallengeSettings);
    },
  );
};

export default ratelimits;
