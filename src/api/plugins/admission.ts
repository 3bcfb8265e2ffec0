/**
 * Admission control on the public app (src/auth/admission.ts): one gate for initiates and one
 * for verifies, decorated as `app.admission`. The handler of a route whose options name
 * `config: { admission: { action } }` starts only once its gate lets it in, so a shed request
 * has cost nothing but this check: no database write, no hash, no workflow. A shed request is
 * answered 503 `overloaded` with Retry-After, counted, and audited as a refusal
 * (identity.admission.shed, aggregated per client and window like every refusal).
 */
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import {
  admissionLimits,
  AdmissionGate,
  cpuCores,
  measureBcryptMs,
  type AdmissionAction,
  type AdmissionLimits,
} from '../../auth/admission';
import { AuditEventType } from '../../auth/audit';
import { maskIp, normalizeIp } from '../../auth/clientIp';
import { BCRYPT_COST } from '../../auth/crypto';
import type { AuthMethod } from '../../shared/auth';
import { ApiError } from '../errors';

const ACTIONS: readonly AdmissionAction[] = ['initiate', 'verify'];

export interface AdmissionControl {
  /** the gates' limits; undefined while admission control is off */
  limits?: AdmissionLimits;
  gate(action: AdmissionAction): AdmissionGate | undefined;
}

/** What a route names in its `config.admission` to go through a gate. */
export interface AdmissionRoute {
  action: AdmissionAction;
  /** the audit's method of a shed request, when the route has one */
  method?: AuthMethod;
}

declare module 'fastify' {
  interface FastifyInstance {
    admission: AdmissionControl;
  }
  interface FastifyContextConfig {
    /** run this route's handler through admission control (src/api/plugins/admission.ts) */
    admission?: AdmissionRoute;
  }
}

/** The gates, with limits from the configuration or, where it says nothing, from the machine. */
async function gates(app: FastifyInstance): Promise<AdmissionControl> {
  const { config, logger, metrics } = app.warden;
  const settings = config.overload.admission;
  if (!settings.enabled) {
    logger.warn({ component: 'admission' }, 'admission control is off (WARDEN_ADMISSION_CONCURRENCY=off)');
    return { gate: () => undefined };
  }
  const cores = cpuCores();
  const fromMachine = settings.concurrency === undefined;
  const bcryptMs = settings.bcryptMs ?? (fromMachine ? await measureBcryptMs(BCRYPT_COST) : 0);
  const limits = admissionLimits(settings, { cores, bcryptMs });
  const byAction = new Map(
    ACTIONS.map((action) => {
      metrics.admissionLimit.set({ action }, limits.concurrency);
      const gate = new AdmissionGate(limits, {
        inFlight: (delta) => metrics.admissionInFlight.inc({ action }, delta),
        queued: (delta) => metrics.admissionQueued.inc({ action }, delta),
      });
      return [action, gate] as const;
    }),
  );
  logger.info(
    {
      component: 'admission',
      ...limits,
      ...(fromMachine ? { cores, bcryptMs, bcryptCost: BCRYPT_COST, sloMs: settings.sloMs } : {}),
    },
    `admission control: ${limits.concurrency} initiates and ${limits.concurrency} verifies in flight, ${limits.queue} more waiting up to ${limits.queueWaitMs} ms`,
  );
  return { limits, gate: (action) => byAction.get(action) };
}

export default fp(
  async (app) => {
    app.decorate('admission', await gates(app));
    // every route declared after this plugin with `config.admission` runs its handler through admit()
    app.addHook('onRoute', (route) => {
      const what = route.config?.admission;
      if (!what) return;
      const handler = route.handler as (this: FastifyInstance, ...args: unknown[]) => unknown;
      route.handler = function (this: FastifyInstance, request, reply) {
        return admit(app, request, what, async () => handler.call(this, request, reply));
      };
    });
  },
  { name: 'warden-admission', dependencies: ['warden-runtime', 'warden-refusals'] },
);

/**
 * `work` (a route handler), run once admission control lets it in; its slot is given back when
 * the work ends, even if the client went away meanwhile (the work went on until then). Shed:
 * 503 `overloaded` with Retry-After.
 */
export async function admit<R>(
  app: FastifyInstance,
  request: FastifyRequest,
  what: AdmissionRoute,
  work: () => Promise<R>,
): Promise<R> {
  const gate = app.admission.gate(what.action);
  if (!gate) return work();
  const { metrics } = app.warden;
  const admission = await gate.acquire();
  if (!admission.admitted) {
    metrics.admissionShed.inc({ action: what.action, reason: admission.reason });
    auditShed(app, request, what, admission.reason);
    // 1 or 2 s: shed clients do not all come back at the same instant
    const retryAfter = 1 + randomInt(2);
    throw new ApiError(
      503,
      'overloaded',
      `the service is at capacity; try again in ${retryAfter} s`,
      { retry_after_seconds: retryAfter },
      { 'Retry-After': String(retryAfter) },
    );
  }
  metrics.admissionAdmitted.inc({ action: what.action });
  metrics.admissionQueueWait.observe({ action: what.action }, admission.waitedMs / 1000);
  try {
    return await work();
  } finally {
    admission.release();
  }
}

/**
 * Written beside the answer, not before it: a shed request never waits on (or fails with) the
 * database. The window's row lands within milliseconds, and the app's close waits for it.
 */
function auditShed(app: FastifyInstance, request: FastifyRequest, what: AdmissionRoute, reason: string): void {
  const ip = normalizeIp(request.ip ?? '');
  app.refusals
    .record({
      type: AuditEventType.admissionShed,
      outcome: 'overloaded',
      ...(what.method ? { method: what.method } : {}),
      ...(isIP(ip) !== 0 ? { ipMasked: maskIp(ip) } : {}),
      details: { action: what.action, reason },
    })
    .catch((err: unknown) =>
      request.log.warn({ component: 'audit', err: (err as Error).message }, 'a shed request could not be audited'),
    );
}
