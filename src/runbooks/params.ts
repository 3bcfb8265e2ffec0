import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ENDPOINT_PATTERN, POOL_LIMITS } from '../shared/database';
import { channelOfProvider, PROVIDERS } from '../shared/delivery';
import type { RunbookName } from '../shared/runbooks';

/**
 * The parameters each runbook takes when started by `POST /admin/api/v1/runbooks/<name>`
 * (every one has a default; an incident's child runs on the defaults). Checked here so a
 * bad value is a 400 at the door, never a failed workflow.
 */
const Iso = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$' });
const Ids = (max: number) => Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: max });
const strict = <P extends Record<string, TSchema>>(props: P) => Type.Object(props, { additionalProperties: false });

const SCHEMAS: Partial<Record<RunbookName, TSchema>> = {
  'compromised-token': strict({
    blockMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 43_200 })),
    since: Type.Optional(Iso),
    until: Type.Optional(Iso),
    leakScanMaxComparisons: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  }),
  'provider-outage': strict({
    provider: Type.Optional(Type.Union(PROVIDERS.map((p) => Type.Literal(p)))),
    channel: Type.Optional(Type.Union([Type.Literal('sms'), Type.Literal('email')])),
    pollSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 3600 })),
    healthyChecks: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    maxWatchHours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 168 })),
    since: Type.Optional(Iso),
    until: Type.Optional(Iso),
    confirmFailures: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    resendLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    validationUser: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    retryRelief: Type.Optional(Type.Boolean()),
    retryReliefUsers: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    retryReliefFactor: Type.Optional(Type.Number({ exclusiveMinimum: 1, maximum: 100 })),
  }),
  'abuse-mitigation': strict({
    blockThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    blockTtlMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_080 })),
    top: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    tightened: Type.Optional(
      strict({
        perUser: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        perIp: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        windowSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
      }),
    ),
    captchaThreshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    captchaWindowSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400 })),
    quietRatePerMinute: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000 })),
    quietMinutes: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1440 })),
    pollSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 3600 })),
    maxWatchHours: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 168 })),
    falsePositives: Type.Optional(Ids(500)),
    neverBlock: Type.Optional(Ids(100)),
  }),
  'db-failover': strict({
    replica: Type.Optional(Type.String({ pattern: ENDPOINT_PATTERN.source, maxLength: 300 })),
    pool: Type.Optional(
      strict({
        max: Type.Integer({ minimum: 1, maximum: POOL_LIMITS.max }),
        maxIdle: Type.Integer({ minimum: 0, maximum: POOL_LIMITS.max }),
      }),
    ),
    readOnly: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('always'), Type.Literal('never')])),
    failover: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('never')])),
  }),
};

export type ParamsCheck = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

export function checkRunbookParams(name: RunbookName, params: Record<string, unknown>): ParamsCheck {
  const schema = SCHEMAS[name];
  if (!schema) return { ok: true, value: params };
  if (!Value.Check(schema, params)) {
    const first = Value.Errors(schema, params).First();
    return { ok: false, message: `params${first?.path ?? ''} ${first?.message ?? 'is invalid'}` };
  }
  for (const key of ['since', 'until'] as const) {
    const v = params[key];
    if (typeof v === 'string' && Number.isNaN(new Date(v).getTime()))
      return { ok: false, message: `params/${key} is not a valid time` };
  }
  const pool = params.pool as { max?: number; maxIdle?: number } | undefined;
  if (name === 'db-failover' && pool?.max !== undefined && pool.maxIdle !== undefined && pool.maxIdle > pool.max) {
    return { ok: false, message: 'params/pool/maxIdle cannot exceed params/pool/max' };
  }
  const provider = params.provider as (typeof PROVIDERS)[number] | undefined;
  if (name === 'provider-outage' && provider && params.channel && channelOfProvider(provider) !== params.channel) {
    return { ok: false, message: `params/provider ${provider} does not serve the ${String(params.channel)} channel` };
  }
  if (
    typeof params.since === 'string' &&
    typeof params.until === 'string' &&
    new Date(params.since) >= new Date(params.until)
  ) {
    return { ok: false, message: 'params/since must be before params/until' };
  }
  return { ok: true, value: params };
}
