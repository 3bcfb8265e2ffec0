import type { IncidentType } from '../../shared/incidents';

/**
 * The runbook workflow (by workflow type name) that each incident type starts as a child.
 * Runbooks register here; an incident whose type has none simply runs without a
 * child. The child receives a RunbookInput and reports back with runbookProgressSignal.
 */
export const RUNBOOK_WORKFLOWS: Partial<Record<IncidentType, string>> = {
  compromised_token: 'compromisedTokenRunbook',
  provider_outage: 'providerOutageRunbook',
  abuse: 'abuseMitigationRunbook',
  db_connectivity: 'dbFailoverRunbook',
};
