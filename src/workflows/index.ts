// Every workflow the worker registers; an export's name is its workflow type (a runbook's is
// named in src/shared/runbookRegistry.ts, which the compiler checks against this list).
// Deterministic code only below this folder.
export { healthCheckWorkflow } from './ops/healthCheck';
export { canaryWorkflow } from './ops/canary';
export { retentionWorkflow } from './ops/retention';
export { smsPumpingWorkflow } from './ops/smsPumping';
export { userExportWorkflow } from './ops/userExport';
export { userErasureWorkflow } from './ops/userErasure';
export { challengeWorkflow } from './auth/challenge';
export { incidentWorkflow } from './incidents/incident';
export { databaseControlWorkflow } from './runbooks/dbFailoverControl';
export { compromisedTokenRunbook } from './runbooks/compromisedToken';
export { abuseMitigationRunbook } from './runbooks/abuseMitigation';
export { dbFailoverRunbook } from './runbooks/dbFailover';
export { providerOutageRunbook } from './runbooks/providerOutage';
