import { CHECK_ORDER, CHECKLIST, type CheckName, type CheckOutcome } from '../../incidents/checklist';
import type { CheckInput } from '../../activities/checklistTypes';
import { checks } from './proxies';
import type { IncidentMachine } from './machine';

/** A passing run this recent is reused by resolve instead of running the synthetic flows again. */
const FRESH_MS = 15 * 60_000;

/**
 * Runs the automated items of the recovery validation checklist, one activity per check, in
 * an order where traffic comes first and the checks that inspect its traces after. A check
 * that throws (after its retry) fails its items with the error; it never aborts the run.
 */
export class ChecklistRunner {
  private lastPassingRun: number | undefined;

  constructor(private readonly machine: IncidentMachine) {}

  /** For resolve: a recent passing run of the automated items counts, anything else reruns. */
  needsRun(now: number): boolean {
    const automatedOk = this.machine.state.checklist.filter((i) => i.automated).every((i) => i.status === 'passed' || i.status === 'not_applicable');
    return !(automatedOk && this.lastPassingRun !== undefined && now - this.lastPassingRun < FRESH_MS);
  }

  async run(by: string): Promise<void> {
    const m = this.machine;
    const s = m.state;
    s.checklistRunning = true;
    m.record({ at: new Date().toISOString(), kind: 'checklist', message: 'Recovery validation checklist run started', by });
    try {
      const baseline = await checks.captureMetricsBaseline();
      const input: CheckInput = { incidentId: s.id || s.workflowId, type: s.type, detectedAt: s.detectedAt, affected: s.affected, baseline };
      for (const name of CHECK_ORDER) {
        m.applyCheckOutcome(await this.one(name, input), Date.now());
      }
      const automated = s.checklist.filter((i) => i.automated);
      const failed = automated.filter((i) => i.status === 'failed');
      if (failed.length === 0) this.lastPassingRun = Date.now();
      m.record({
        at: new Date().toISOString(),
        kind: 'checklist',
        message: failed.length
          ? `Automated checks: ${automated.length - failed.length}/${automated.length} passed; failed: ${failed.map((i) => i.id).join(', ')}`
          : `Automated checks: all ${automated.length} passed`,
      });
      m.checkPassed(Date.now());
    } finally {
      s.checklistRunning = false;
    }
  }

  private async one(name: CheckName, input: CheckInput): Promise<CheckOutcome> {
    try {
      return await checks[name](input);
    } catch (err) {
      const detail = `check could not run: ${(err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)).slice(0, 200)}`;
      return { items: CHECKLIST.filter((i) => i.check === name).map((i) => ({ id: i.id, status: 'failed' as const, detail })) };
    }
  }
}
