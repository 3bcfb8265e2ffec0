/** Small pure helpers for runbook workflows. */

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The forensic window: explicit ISO times, else the 24 hours before `startedAt` up to the export. */
export function windowOf(
  since: string | undefined,
  until: string | undefined,
  startedAt: number,
): { since: string; until?: string } {
  return { since: since ?? new Date(startedAt - 24 * 3_600_000).toISOString(), ...(until ? { until } : {}) };
}
