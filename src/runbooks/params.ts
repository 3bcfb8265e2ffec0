/**
 * Checks the parameters of `POST /admin/api/v1/runbooks/<name>` against the runbook's schema
 * (src/shared/runbookRegistry.ts) and the rules a schema cannot say, so a bad value is a 400 at the
 * door, never a failed workflow.
 */
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { channelOfProvider, PROVIDERS } from '../shared/delivery';
import { RUNBOOKS, type RunbookName } from '../shared/runbookRegistry';

export type ParamsCheck = { ok: true; value: Record<string, unknown> } | { ok: false; message: string };

export function checkRunbookParams(name: RunbookName, params: Record<string, unknown>): ParamsCheck {
  const schema: TSchema = RUNBOOKS[name].params;
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
