/**
 * Every scenario, in the order a run executes them. The sweep comes first (the peer compares
 * against its rows); the peer comes after Warden's own runs so its traffic never shares the
 * outbox with theirs. A new scenario is one module added here.
 */
import { abuseMitigationScenario } from './abuseMitigation';
import { breakdownScenario } from './breakdown';
import { containmentScenario } from './containment';
import { dbFailoverScenario } from './dbFailover';
import { openLoopScenario } from './openLoop';
import { peerScenario } from './peer';
import { providerOutageScenario } from './providerOutage';
import { retentionSoakScenario } from './retentionSoak';
import { sweepScenario } from './sweep';
import { timingOracleScenario } from './timingOracle';
import type { Scenario } from './types';

export const SCENARIOS: readonly Scenario[] = [
  sweepScenario,
  openLoopScenario,
  breakdownScenario,
  peerScenario,
  containmentScenario,
  providerOutageScenario,
  abuseMitigationScenario,
  dbFailoverScenario,
  retentionSoakScenario,
  timingOracleScenario,
];
