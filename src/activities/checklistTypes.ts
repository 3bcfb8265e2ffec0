/**
 * What every automated checklist check receives: the incident's shape (affected users, IPs,
 * providers) and a snapshot of the metrics taken before the run, so latency and "metrics
 * move" checks judge the traffic of this run rather than the process's lifetime.
 */
import type { Affected, IncidentType } from '../shared/incidents';

export interface CheckInput {
  incidentId: string;
  type: IncidentType;
  detectedAt: string;
  affected: Affected;
  baseline: MetricsBaseline;
}

/** Cumulative histogram buckets and counter totals by series key (metric name + labels). */
export interface MetricsBaseline {
  takenAt: string;
  values: Record<string, number>;
}
