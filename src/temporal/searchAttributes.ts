import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../shared/searchAttributes';

/** gRPC status codes of a call this credential may not make (PERMISSION_DENIED, UNIMPLEMENTED) */
const NOT_ALLOWED = new Set([7, 12]);

/**
 * Registers Warden's search attributes on a cluster that lacks them (production clusters; the
 * dev server gets them as start flags). Idempotent: only missing ones are added. Returns
 * `undefined` when the cluster does not let this credential use its operator service (Temporal
 * Cloud with an API key): there the namespace's administrator registers them.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[] | undefined> {
  let existing;
  try {
    existing = await connection.operatorService.listSearchAttributes({ namespace });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number' && NOT_ALLOWED.has(code)) return undefined;
    throw err;
  }
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map((key) => [key.name, temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`]]),
    ),
  });
  return missing.map((key) => key.name);
}
