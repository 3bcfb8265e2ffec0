/**
 * Custom search attributes responders filter on in the Temporal UI. Registered on the dev
 * server at start and by the deployment in production. They never carry PII or secrets.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

export const IncidentTypeKey = defineSearchAttributeKey('IncidentType', SearchAttributeType.KEYWORD);
export const SeverityKey = defineSearchAttributeKey('Severity', SearchAttributeType.KEYWORD);
export const IncidentStatusKey = defineSearchAttributeKey('IncidentStatus', SearchAttributeType.KEYWORD);
export const RunbookKey = defineSearchAttributeKey('Runbook', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [IncidentTypeKey, SeverityKey, IncidentStatusKey, RunbookKey] as const;

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
 * `Severity = "P0"`...), set when it starts, whoever starts it.
 */
export function runbookSearchAttributes(
  runbook: string,
  incidentType: string,
  severity: string,
): SearchAttributePair[] {
  return [
    { key: RunbookKey, value: runbook },
    { key: IncidentTypeKey, value: incidentType },
    { key: SeverityKey, value: severity },
  ];
}
