/**
 * The overload settings (docs/scaling.md#load-shedding, docs/operations.md), read from the
 * validated environment: admission control in front of the bcrypt work (what is unset is
 * derived at start from the machine, src/auth/admission.ts) and how refusals are aggregated in
 * the audit trail (src/auth/refusals.ts).
 */
import type { Env } from './schema';

export interface AdmissionConfig {
  /** false: no limit (`WARDEN_ADMISSION_CONCURRENCY=off`) */
  enabled: boolean;
  /** initiates (and, separately, verifies) in flight per process; undefined = derived */
  concurrency?: number;
  /** requests that may wait for a slot; undefined = as many as the concurrency */
  queue?: number;
  /** how long one may wait; undefined = a quarter of the SLO */
  queueWaitMs?: number;
  /** the latency admitted requests are held to */
  sloMs: number;
  /** one bcrypt hash at the service's cost; undefined = measured at start */
  bcryptMs?: number;
}

export interface OverloadConfig {
  admission: AdmissionConfig;
  refusalAudit: { windowSeconds: number; flushMs: number };
}

export function overloadConfig(env: Env): OverloadConfig {
  const concurrency = env.WARDEN_ADMISSION_CONCURRENCY;
  return {
    admission: {
      enabled: concurrency !== 'off',
      ...(concurrency !== undefined && concurrency !== 'off' ? { concurrency: Number(concurrency) } : {}),
      ...(env.WARDEN_ADMISSION_QUEUE !== undefined ? { queue: env.WARDEN_ADMISSION_QUEUE } : {}),
      ...(env.WARDEN_ADMISSION_QUEUE_WAIT_MS !== undefined ? { queueWaitMs: env.WARDEN_ADMISSION_QUEUE_WAIT_MS } : {}),
      sloMs: env.WARDEN_ADMISSION_SLO_MS,
      ...(env.WARDEN_ADMISSION_BCRYPT_MS !== undefined ? { bcryptMs: env.WARDEN_ADMISSION_BCRYPT_MS } : {}),
    },
    refusalAudit: { windowSeconds: env.WARDEN_REFUSAL_AUDIT_WINDOW_S, flushMs: env.WARDEN_REFUSAL_AUDIT_FLUSH_MS },
  };
}
