/**
 * Delivery for responders (the provider-outage procedure's switch to
 * the backup, graceful degradation, primary re-enabled, failed notifications resent): routes per
 * channel with their circuits, the switch to the backup and back, the channel on/off switch
 * (`enabled` is auth.sms_otp.enabled / auth.magic_link.enabled), and the failures
 * of a window with their resend (each at most once). The runbooks call the same functions.
 */
import { Type, type FastifyPluginAsyncTypebox, type Static } from '@fastify/type-provider-typebox';
import type { FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { NoBackupError, routeStatus, switchRoute, updateRoute, type ActorContext } from '../../delivery/admin';
import {
  FailureNotFoundError,
  listDeliveryFailures,
  resendFailedDelivery,
  type ResendOutcome,
} from '../../delivery/resend';
import { RouteValidationError, type RouteChanges } from '../../delivery/routes';
import type { Channel, ProviderName } from '../../providers/types';
import { CHANNELS, PROVIDERS } from '../../shared/delivery';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const ChannelParam = Type.Object({ channel: Type.Union(CHANNELS.map((c) => Type.Literal(c))) });
const Provider = Type.Union(PROVIDERS.map((p) => Type.Literal(p)));
const Text = (max: number) => Type.Optional(Type.String({ minLength: 1, maxLength: max }));

const RouteUpdate = Type.Object(
  {
    primary_provider: Type.Optional(Provider),
    backup_provider: Type.Optional(Type.Union([Provider, Type.Null()])),
    failover_threshold: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    enabled: Type.Optional(Type.Boolean()),
    mode: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('backup')])),
    circuit_cooldown_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
    reason: Text(500),
    incident_id: Text(64),
  },
  { additionalProperties: false, minProperties: 1 },
);
const SwitchBody = Type.Object(
  { to: Type.Union([Type.Literal('backup'), Type.Literal('primary')]), reason: Text(500), incident_id: Text(64) },
  { additionalProperties: false },
);

const Nullable = (schema: ReturnType<typeof Type.String>) => Type.Union([schema, Type.Null()]);
const CircuitView = Type.Object({
  provider: Type.String(),
  state: Type.String(),
  consecutive_failures: Type.Integer(),
  opened_at: Nullable(Type.String()),
  probe_after: Nullable(Type.String()),
  throttled_until: Nullable(Type.String()),
});
const RouteView = Type.Object({
  channel: Type.String(),
  primary_provider: Type.String(),
  backup_provider: Nullable(Type.String()),
  failover_threshold: Type.Integer(),
  enabled: Type.Boolean(),
  mode: Type.String(),
  circuit_cooldown_seconds: Type.Integer(),
  updated_at: Type.String(),
  updated_by: Type.String(),
  change_reason: Nullable(Type.String()),
  incident_id: Nullable(Type.String()),
  circuits: Type.Array(CircuitView),
});

const FailureView = Type.Object({
  id: Type.String(),
  challenge_id: Nullable(Type.String()),
  user_id: Type.String(),
  channel: Type.String(),
  provider: Type.String(),
  phone_number: Nullable(Type.String()),
  email: Nullable(Type.String()),
  error_class: Type.String(),
  error_code: Nullable(Type.String()),
  failed_attempts: Type.Integer(),
  send_number: Type.Union([Type.Integer(), Type.Null()]),
  first_failed_at: Type.String(),
  last_attempt_at: Type.String(),
  resolved_at: Nullable(Type.String()),
  resent_at: Nullable(Type.String()),
  resend_outcome: Nullable(Type.String()),
  resend_send_number: Type.Union([Type.Integer(), Type.Null()]),
  challenge_status: Nullable(Type.String()),
  challenge_expires_at: Nullable(Type.String()),
  resendable: Type.Boolean(),
});
const ResendView = Type.Object({
  failure_id: Type.String(),
  outcome: Type.String(),
  send_number: Type.Union([Type.Integer(), Type.Null()]),
  challenge_status: Type.Optional(Type.String()),
});

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `24h`-style durations back from now, or ISO timestamps (like the audit export). */
function instant(name: string, value: string | undefined, fallback: Date): Date {
  if (value === undefined) return fallback;
  const duration = /^(\d{1,6})([smhd])$/.exec(value);
  if (duration) return new Date(Date.now() - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]);
  const at = /^\d{4}-\d{2}-\d{2}(T|$| )/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(at.getTime()))
    throw new ApiError(400, 'invalid_request', `\`${name}\` must be a duration like 2h or an ISO 8601 timestamp`);
  return at;
}

const Window = Type.Object(
  {
    since: Type.Optional(Type.String({ maxLength: 40 })),
    until: Type.Optional(Type.String({ maxLength: 40 })),
    channel: Type.Optional(Type.Union(CHANNELS.map((c) => Type.Literal(c)))),
    resendable: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,5}$' })),
  },
  { additionalProperties: false },
);
const ResendWindow = Type.Object(
  {
    since: Type.String({ maxLength: 40 }),
    until: Type.Optional(Type.String({ maxLength: 40 })),
    channel: Type.Optional(Type.Union(CHANNELS.map((c) => Type.Literal(c)))),
    incident_id: Text(64),
  },
  { additionalProperties: false },
);

function window(query: { since?: string; until?: string }) {
  const until = instant('until', query.until, new Date());
  const since = instant('since', query.since, new Date(until.getTime() - 24 * 3_600_000));
  if (since > until) throw new ApiError(400, 'invalid_request', '`since` must not be after `until`');
  return { since: since.toISOString(), until: until.toISOString() };
}

function changesOf(body: Static<typeof RouteUpdate>): RouteChanges {
  return {
    ...(body.primary_provider !== undefined ? { primary: body.primary_provider as ProviderName } : {}),
    ...(body.backup_provider !== undefined ? { backup: body.backup_provider as ProviderName | null } : {}),
    ...(body.failover_threshold !== undefined ? { failoverThreshold: body.failover_threshold } : {}),
    ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
    ...(body.mode !== undefined ? { mode: body.mode } : {}),
    ...(body.circuit_cooldown_seconds !== undefined ? { circuitCooldownSeconds: body.circuit_cooldown_seconds } : {}),
  };
}

/** A 400 that names the offending field and what it must be (the routes attach their validation). */
function rejectInvalid(request: FastifyRequest): void {
  const error = request.validationError as
    (Error & { validation?: FastifySchemaValidationError[]; validationContext?: string }) | undefined;
  if (!error) return;
  const errors = error.validation ?? [];
  const context = error.validationContext ?? 'request';
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown)
    throw new ApiError(
      400,
      'invalid_request',
      `${context} has an unknown field: ${String((unknown.params as { additionalProperty?: unknown }).additionalProperty)}`,
    );
  const first = errors[0];
  const field = first?.instancePath ? first.instancePath.slice(1).replace(/\//g, '.') : '';
  const allowed = errors
    .filter((e) => e.keyword === 'const' && e.instancePath === first?.instancePath)
    .map((e) => String((e.params as { allowedValue?: unknown }).allowedValue));
  const what = allowed.length > 0 ? `must be one of ${allowed.join(', ')}` : (first?.message ?? 'is invalid');
  throw new ApiError(400, 'invalid_request', `${field ? `${context}.${field}` : context} ${what}`);
}

function resendView(failureId: string, r: ResendOutcome) {
  return {
    failure_id: failureId,
    outcome: r.outcome,
    send_number: 'sendNumber' in r ? r.sendNumber : null,
    ...(r.outcome === 'challenge_ended' ? { challenge_status: r.status } : {}),
  };
}

const delivery: FastifyPluginAsyncTypebox = async (app) => {
  const ctx = (actor: string, body: { reason?: string; incident_id?: string }): ActorContext => ({
    actor,
    reason: body.reason,
    incidentId: body.incident_id,
  });
  const status = async (channel: Channel) => (await routeStatus(app.warden))[channel];

  app.get(
    '/delivery/routes',
    { schema: { response: { 200: Type.Object({ routes: Type.Array(RouteView) }) } } },
    async () => {
      const routes = await routeStatus(app.warden);
      return { routes: CHANNELS.map((c) => routes[c]) };
    },
  );

  app.get(
    '/delivery/routes/:channel',
    { schema: { params: ChannelParam, response: { 200: RouteView, 400: ErrorBody } } },
    async (request) => status(request.params.channel),
  );

  app.put(
    '/delivery/routes/:channel',
    {
      attachValidation: true,
      schema: { params: ChannelParam, body: RouteUpdate, response: { 200: RouteView, 400: ErrorBody } },
    },
    async (request) => {
      rejectInvalid(request);
      const { channel } = request.params;
      const changes = changesOf(request.body);
      if (Object.keys(changes).length === 0)
        throw new ApiError(400, 'invalid_request', 'the body changes nothing: name a route field');
      try {
        await updateRoute(app.warden, channel, changes, ctx(operatorOf(request).name, request.body));
      } catch (err) {
        if (err instanceof RouteValidationError) throw new ApiError(400, 'invalid_request', err.message);
        throw err;
      }
      return status(channel);
    },
  );

  app.post(
    '/delivery/routes/:channel/switch',
    {
      attachValidation: true,
      schema: { params: ChannelParam, body: SwitchBody, response: { 200: RouteView, 400: ErrorBody, 409: ErrorBody } },
    },
    async (request) => {
      rejectInvalid(request);
      const { channel } = request.params;
      try {
        await switchRoute(app.warden, channel, request.body.to, ctx(operatorOf(request).name, request.body));
      } catch (err) {
        if (err instanceof NoBackupError) throw new ApiError(409, 'no_backup', err.message);
        throw err;
      }
      return status(channel);
    },
  );

  app.get(
    '/delivery/failures',
    {
      schema: {
        querystring: Window,
        response: { 200: Type.Object({ failures: Type.Array(FailureView) }), 400: ErrorBody },
      },
    },
    async (request) => {
      const q = request.query;
      const failures = await listDeliveryFailures(app.warden.db, {
        ...window(q),
        channel: q.channel,
        resendableOnly: q.resendable === 'true',
        limit: q.limit ? Number(q.limit) : undefined,
      });
      return { failures };
    },
  );

  app.post(
    '/delivery/failures/:id/resend',
    {
      config: { role: 'responder' },
      schema: {
        params: Type.Object({ id: Type.String({ pattern: '^[0-9]{1,18}$' }) }),
        // optional: a bare POST (no body, so null here) resends too
        body: Type.Union([Type.Object({ incident_id: Text(64) }), Type.Null()]),
        response: { 200: ResendView, 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => {
      const incidentId = request.body?.incident_id;
      try {
        const result = await resendFailedDelivery(app.warden, request.params.id, {
          actor: operatorOf(request).name,
          incidentId,
        });
        return resendView(request.params.id, result);
      } catch (err) {
        if (err instanceof FailureNotFoundError) throw new ApiError(404, 'not_found', err.message);
        throw err;
      }
    },
  );

  app.post(
    '/delivery/failures/resend',
    {
      config: { role: 'responder' },
      schema: {
        body: ResendWindow,
        response: { 200: Type.Object({ resent: Type.Integer(), results: Type.Array(ResendView) }), 400: ErrorBody },
      },
    },
    async (request) => {
      const failures = await listDeliveryFailures(app.warden.db, {
        ...window(request.body),
        channel: request.body.channel,
        resendableOnly: true,
        limit: 1000,
      });
      const results = [];
      for (const f of failures) {
        results.push(
          resendView(
            f.id,
            await resendFailedDelivery(app.warden, f.id, {
              actor: operatorOf(request).name,
              incidentId: request.body.incident_id,
            }),
          ),
        );
      }
      return { resent: results.filter((r) => r.outcome === 'queued').length, results };
    },
  );
};

export default delivery;
