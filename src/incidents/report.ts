/**
 * The incident report template (docs/incident-response.md), filled from the workflow's own timeline. The template's
 * seven milestones are listed in time order with the other timeline entries (escalations,
 * notes, severity changes...) between them; a milestone that never happened is listed at the
 * end as "not recorded", so the report shows its gaps instead of hiding them.
 */
import type { IncidentState, TimelineEntry } from '../shared/incidents';
import { ROLE_TITLES } from '../shared/escalation';
import { clock, plainName, utc } from '../shared/format';
import { formatDuration } from '../shared/severity';

type Milestone = 'detected' | 'oncall' | 'confirmed' | 'root_cause' | 'mitigation' | 'restored' | 'resolved';

const MILESTONE_TEXT: Record<Milestone, string> = {
  detected: 'Incident detected',
  oncall: 'On-call engineer notified',
  confirmed: 'Incident confirmed, response initiated',
  root_cause: 'Root cause identified',
  mitigation: 'Mitigation applied',
  restored: 'Service restored, monitoring validation',
  resolved: 'Incident resolved',
};

function milestoneOf(entry: TimelineEntry): Milestone | undefined {
  switch (entry.kind) {
    case 'detected':
      return 'detected';
    case 'notified':
      return entry.role === 'oncall' ? 'oncall' : undefined;
    case 'acknowledged':
      return 'confirmed';
    case 'root_cause':
      return 'root_cause';
    case 'mitigation':
      return 'mitigation';
    case 'checklist_passed':
      return 'restored';
    case 'resolved':
      return 'resolved';
    default:
      return undefined;
  }
}

/** Free text from responders and alerts: rendered Markdown must not turn it into HTML. */
function md(text: string): string {
  return plainName(text).replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function line(entry: TimelineEntry, state: IncidentState, milestone: Milestone | undefined): string {
  const by = entry.by ? ` (${md(entry.by)})` : '';
  const detail = md(entry.message);
  if (milestone === 'detected') {
    const how = state.source === 'alertmanager' ? 'monitoring alert' : 'user report';
    return `${MILESTONE_TEXT.detected} (${how})${detail ? `: ${detail}` : ''}`;
  }
  if (milestone === 'oncall') return MILESTONE_TEXT.oncall;
  if (milestone) return `${MILESTONE_TEXT[milestone]}${detail ? `: ${detail}` : ''}${by}`;
  // escalation entries read "<Role title>: <reason>"
  if (entry.kind === 'notified' || entry.kind === 'escalated') return `Escalated to ${detail}${by}`;
  return `${detail}${by}`;
}

export function timelineLines(state: IncidentState): string[] {
  const seen = new Set<Milestone>();
  const lines = state.timeline.map((entry) => {
    // only the first of a milestone is the milestone; later mitigations are plain entries
    let milestone = milestoneOf(entry);
    if (milestone && seen.has(milestone) && milestone !== 'mitigation') milestone = undefined;
    if (milestone) seen.add(milestone);
    return `- ${clock(entry.at, state.detectedAt)} - ${line(entry, state, milestone)}`;
  });
  for (const milestone of Object.keys(MILESTONE_TEXT) as Milestone[]) {
    if (!seen.has(milestone)) lines.push(`- --:-- - ${MILESTONE_TEXT[milestone]} (not recorded)`);
  }
  return lines;
}

export function incidentDuration(state: Pick<IncidentState, 'detectedAt' | 'resolvedAt'>, now?: string): string {
  const end = state.resolvedAt ?? now;
  if (!end) return 'ongoing';
  const text = formatDuration(new Date(end).getTime() - new Date(state.detectedAt).getTime());
  return state.resolvedAt ? text : `${text} so far (ongoing)`;
}

export function renderReport(state: IncidentState, now?: string): string {
  const preventive = state.preventiveActions.length
    ? state.preventiveActions.map((a, i) => `${i + 1}. ${md(a.description)} (${a.category})`)
    : ['1. _None recorded yet: at least one is required to close the incident._'];
  const actionItems = state.preventiveActions.length
    ? state.preventiveActions
        .map((a) => `${md(a.description)} — owner: ${md(a.owner ?? a.by)}${a.due ? `, due ${md(a.due)}` : ''}`)
        .join('; ')
    : '_none recorded_';
  const mitigations = state.timeline.filter((e) => e.kind === 'mitigation').map((e) => `- ${md(e.message)}`);
  const escalations = state.escalations.map(
    (e) => `- ${clock(e.at, state.detectedAt)} - ${ROLE_TITLES[e.role]}: ${md(e.reason)}`,
  );
  const checklist = state.checklist.map(
    (item) =>
      `| ${item.group} | ${item.label} | ${item.automated ? 'automated' : 'manual'} | ${item.status}${item.detail ? `: ${md(item.detail).replace(/\|/g, '/')}` : ''} |`,
  );
  const tasks = state.tasks.map(
    (t) =>
      `- ${t.title} (${t.contact}): due ${utc(t.dueAt)}, ${t.status}${t.completedAt ? ` at ${utc(t.completedAt)}` : ''}`,
  );

  return [
    `# Incident Report: ${md(state.title)}`,
    '',
    '## Summary',
    `- **Incident ID**: ${state.id}`,
    `- **Severity**: ${state.severity}`,
    `- **Detected**: ${utc(state.detectedAt)}`,
    `- **Resolved**: ${state.resolvedAt ? utc(state.resolvedAt) : 'not yet'}`,
    `- **Duration**: ${incidentDuration(state, now)}`,
    `- **Impact**: ${state.impact ? md(state.impact) : 'not recorded'}${affectedSummary(state)}`,
    '',
    '## Timeline',
    ...timelineLines(state),
    '',
    '## Root Cause',
    state.rootCause ? md(state.rootCause) : '_Not recorded._',
    '',
    '## Resolution',
    state.resolution ? md(state.resolution) : '_Not resolved yet._',
    ...(mitigations.length ? ['', 'Mitigations applied:', ...mitigations] : []),
    ...(state.forcedResolution
      ? [
          '',
          `Resolved without a passed recovery validation checklist by ${plainName(state.forcedResolution.by)}: ${md(state.forcedResolution.reason)}`,
        ]
      : []),
    '',
    '## Preventive Measures',
    ...preventive,
    '',
    '## Lessons Learned',
    `- **What went well**: ${state.lessons?.wentWell ? md(state.lessons.wentWell) : '_not recorded_'}`,
    `- **What could be improved**: ${state.lessons?.toImprove ? md(state.lessons.toImprove) : '_not recorded_'}`,
    `- **Action items**: ${actionItems}`,
    '',
    '## Escalations',
    ...(escalations.length ? escalations : ['- none']),
    ...(tasks.length ? ['', '## External escalation tasks', ...tasks] : []),
    '',
    '## Recovery Validation Checklist',
    '| group | item | kind | status |',
    '|---|---|---|---|',
    ...checklist,
    '',
  ].join('\n');
}

function affectedSummary(state: IncidentState): string {
  const parts: string[] = [];
  if (state.affected.users.length) parts.push(`${state.affected.users.length} user(s)`);
  if (state.affected.ips.length) parts.push(`${state.affected.ips.length} IP(s)`);
  if (state.affected.providers.length) parts.push(`providers: ${state.affected.providers.join(', ')}`);
  if (state.dataBreach) parts.push('data breach');
  return parts.length ? ` (${parts.join('; ')})` : '';
}
