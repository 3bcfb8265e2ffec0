/**
 * What the flood reads from Warden's /metrics: the admission limit the stack chose, and where a
 * verify's time went while the flood ran (the mean of each stage the service times, and of the
 * wait in the admission queue), from two scrapes.
 */
import { request } from '../lib/http';
import { histogramDeltas, parsePrometheus, type Sample } from '../lib/prometheus';
import type { AttackTarget } from './types';

export async function scrape(target: AttackTarget): Promise<Sample[]> {
  const res = await request<string>(`${target.metricsUrl}/metrics`, { headers: { accept: 'text/plain' } });
  return res.status === 200 ? parsePrometheus(String(res.body)) : [];
}

/** Initiates (and, apart, verifies) one API process lets in at once: warden_admission_limit. */
export function admissionLimit(samples: readonly Sample[]): number | null {
  return samples.find((s) => s.name === 'warden_admission_limit' && s.labels.action === 'verify')?.value ?? null;
}

/** Mean ms of each verify stage between two scrapes, with the admission queue's wait as `queue`. */
export function verifyStagesMs(before: readonly Sample[], after: readonly Sample[]): Record<string, number> {
  const stages: Record<string, number> = {};
  for (const d of histogramDeltas(before, after)) {
    if (d.name === 'warden_auth_stage_duration_seconds' && d.labels.flow === 'verify' && d.labels.stage)
      stages[d.labels.stage] = d.meanMs;
    if (d.name === 'warden_admission_queue_wait_seconds' && d.labels.action === 'verify') stages.queue = d.meanMs;
  }
  return stages;
}
