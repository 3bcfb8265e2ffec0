/**
 * Custom search attributes responders filter on in the Temporal UI. Registered on the dev
 * server at start and by the deployment in production. They never carry a user's PII or a
 * secret: operators appear by their operator name (no addresses, docs/api.md) or Slack id.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import { SMS_PUMPING_ACTOR } from './smsPumping';

export const IncidentTypeKey = defineSearchAttributeKey('IncidentType', SearchAttributeType.KEYWORD);
export const SeverityKey = defineSearchAttributeKey('Severity', SearchAttributeType.KEYWORD);
export const IncidentStatusKey = defineSearchAttributeKey('IncidentStatus', SearchAttributeType.KEYWORD);
export const RunbookKey = defineSearchAttributeKey('Runbook', SearchAttributeType.KEYWORD);
/** the INC-... id on the incident's workflow and on every runbook run attached to it */
export const IncidentIdKey = defineSearchAttributeKey('IncidentId', SearchAttributeType.KEYWORD);
/** who acted: the opener or starter, and the people who acknowledged, escalated, decided... */
export const OperatorsKey = defineSearchAttributeKey('Operators', SearchAttributeType.KEYWORD_LIST);
/** where a runbook run stands, kept current by the run: "what waits for an admin" is a filter */
export const RunbookStatusKey = defineSearchAttributeKey('RunbookStatus', SearchAttributeType.KEYWORD);

export const RUNBOOK_RUN_STATUSES = [
  'running',
  'awaiting_approval',
  'compensating',
  'completed',
  'failed',
  'cancelled',
] as const;
export type RunbookRunStatus = (typeof RUNBOOK_RUN_STATUSES)[number];

export const SEARCH_ATTRIBUTES = [
  IncidentTypeKey,
  SeverityKey,
  IncidentStatusKey,
  RunbookKey,
  IncidentIdKey,
  OperatorsKey,
  RunbookStatusKey,
] as const;

/** at most this many operators per workflow: the UI filters on them, it does not list crowds */
const MAX_OPERATORS = 20;
const OPERATOR_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SLACK_MENTION = /^<@([UW][A-Z0-9]{1,20})(\|[^>]*)?>$/;
/** actors that are Warden itself, not a person */
const SYSTEM_ACTORS = new Set(['runbook', 'alertmanager', 'temporal', 'slack-user', 'starter', SMS_PUMPING_ACTOR]);

/**
 * The keyword an actor (an update's `by`) is filtered by: an operator's name as it is, a
 * Slack mention as `slack:<user id>`; undefined for Warden's own actors and free text.
 */
export function operatorKeyword(by: string | undefined): string | undefined {
  if (!by || SYSTEM_ACTORS.has(by)) return undefined;
  if (OPERATOR_NAME.test(by)) return by;
  const slack = SLACK_MENTION.exec(by);
  return slack ? `slack:${slack[1]}` : undefined;
}

/** The distinct operators among `actors`, first seen first, capped. */
export function operatorKeywords(actors: Iterable<string | undefined>): string[] {
  const out = new Set<string>();
  for (const actor of actors) {
    const keyword = operatorKeyword(actor);
    if (keyword) out.add(keyword);
    if (out.size >= MAX_OPERATORS) break;
  }
  return [...out];
}

/** What an incident's workflow is filtered by; `id` once the INC id is known. */
export function incidentSearchAttributes(s: {
  type: string;
  severity: string;
  status: string;
  id?: string;
  operators: string[];
}): SearchAttributePair[] {
  return [
    { key: IncidentTypeKey, value: s.type },
    { key: SeverityKey, value: s.severity },
    { key: IncidentStatusKey, value: s.status },
    ...(s.id ? [{ key: IncidentIdKey, value: s.id }] : []),
    ...(s.operators.length ? [{ key: OperatorsKey, value: s.operators }] : []),
  ];
}

/** `--search-attribute` values for `temporal server start-dev` and `temporal operator`. */
export function searchAttributeFlags(): string[] {
  const cliType: Record<string, string> = {
    [SearchAttributeType.KEYWORD]: 'Keyword',
    [SearchAttributeType.TEXT]: 'Text',
    [SearchAttributeType.INT]: 'Int',
    [SearchAttributeType.DOUBLE]: 'Double',
    [SearchAttributeType.BOOL]: 'Bool',
    [SearchAttributeType.DATETIME]: 'Datetime',
    [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
  };
  return SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${cliType[key.type]}`]);
}

/**
 * What a runbook run is filtered by in the Temporal UI (`Runbook = "compromised-token"`,
 * `Severity = "P0"`, `IncidentId = "INC-..."`, `Operators = "pat"`, `RunbookStatus =
 * "awaiting_approval"`...), set when it starts, whoever starts it; the run keeps its status
 * and operators current.
 */
export function runbookSearchAttributes(
  runbook: string,
  incidentType: string,
  severity: string,
  context: { incidentId?: string; startedBy?: string } = {},
): SearchAttributePair[] {
  const operators = operatorKeywords([context.startedBy]);
  return [
    { key: RunbookKey, value: runbook },
    { key: IncidentTypeKey, value: incidentType },
    { key: SeverityKey, value: severity },
    { key: RunbookStatusKey, value: 'running' },
    ...(context.incidentId ? [{ key: IncidentIdKey, value: context.incidentId }] : []),
    ...(operators.length ? [{ key: OperatorsKey, value: operators }] : []),
  ];
}
