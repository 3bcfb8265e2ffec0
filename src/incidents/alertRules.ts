/**
 * "Prometheus alerts configured": every alert rule carries the labels the incident pipeline
 * maps (severity P0-P3, incident_type; the Watchdog, which never opens an incident, excepted)
 * and, in the rules file, only names metrics Warden exposes; through Prometheus' API, every
 * rule is loaded and healthy.
 */
import { parse } from 'yaml';
import { INCIDENT_TYPES, SEVERITIES } from '../shared/incidents';

export interface RulesVerdict {
  ok: boolean;
  detail: string;
}

interface Rule {
  alert?: string;
  name?: string;
  expr?: string;
  query?: string;
  labels?: Record<string, string>;
  health?: string;
  state?: string;
  lastError?: string;
}

/** The dead man's switch: always firing, routed to the fallback pager only, never an incident. */
const WATCHDOG = 'Watchdog';

function labelProblems(name: string, labels: Record<string, string> | undefined): string[] {
  const out: string[] = [];
  if (name === WATCHDOG) return out;
  if (!labels?.severity || !(SEVERITIES as readonly string[]).includes(labels.severity))
    out.push(`${name}: severity label not P0-P3`);
  if (!labels?.incident_type || !(INCIDENT_TYPES as readonly string[]).includes(labels.incident_type))
    out.push(`${name}: incident_type label missing or unknown`);
  return out;
}

/** Metric names an expression refers to, reduced to their family (histogram suffixes dropped). */
function metricsOf(expr: string): string[] {
  return [
    ...new Set([...expr.matchAll(/\b(warden_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, ''))),
  ];
}

export function checkRulesDocument(text: string, catalog: ReadonlySet<string>): RulesVerdict {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    return { ok: false, detail: `rules file is not valid YAML: ${(err as Error).message.split('\n')[0]}` };
  }
  const groups = (doc as { groups?: Array<{ rules?: Rule[] }> } | null)?.groups;
  if (!Array.isArray(groups)) return { ok: false, detail: 'rules file has no groups' };
  const alerts = groups.flatMap((g) => (g.rules ?? []).filter((r) => r.alert));
  if (!alerts.length) return { ok: false, detail: 'rules file defines no alerts' };
  const problems: string[] = [];
  for (const rule of alerts) {
    if (!rule.expr) problems.push(`${rule.alert}: no expr`);
    problems.push(...labelProblems(rule.alert!, rule.labels));
    const unknown = metricsOf(rule.expr ?? '').filter((m) => !catalog.has(m));
    if (unknown.length) problems.push(`${rule.alert}: unknown metrics ${unknown.join(', ')}`);
  }
  return problems.length
    ? { ok: false, detail: problems.slice(0, 5).join('; ') }
    : {
        ok: true,
        detail: `${alerts.length} alert rules, each with severity and incident_type labels and only catalog metrics`,
      };
}

export function checkRulesApi(body: unknown): RulesVerdict {
  const groups = (body as { data?: { groups?: Array<{ rules?: Rule[] }> } } | null)?.data?.groups;
  if (!Array.isArray(groups)) return { ok: false, detail: 'Prometheus rules API answered without data.groups' };
  const alerts = groups.flatMap((g) => g.rules ?? []).filter((r) => r.name && r.query !== undefined);
  if (!alerts.length) return { ok: false, detail: 'Prometheus has no alert rules loaded' };
  const problems: string[] = [];
  for (const rule of alerts) {
    if (rule.health && rule.health !== 'ok')
      problems.push(`${rule.name}: health ${rule.health}${rule.lastError ? ` (${rule.lastError})` : ''}`);
    problems.push(...labelProblems(rule.name!, rule.labels));
  }
  const firing = alerts.filter((r) => r.state === 'firing').length;
  return problems.length
    ? { ok: false, detail: problems.slice(0, 5).join('; ') }
    : { ok: true, detail: `${alerts.length} alert rules loaded and healthy in Prometheus, ${firing} firing` };
}
