import { CHECK_ORDER, CHECKLIST, checksToRerun, type CheckName, type CheckOutcome } from '../../shared/checklist';
import type { CheckInput } from '../../activities/checklistTypes';
import { checks } from './proxies';
import type { IncidentMachine } from './machine';

/** A pass this recent still counts at resolution; older ones are checked again. */
const FRESH_MS = 15 * 60_000;

type ItemResult = CheckOutcome['items'][number];

/**
 * Runs the automated items of the recovery validation checklist, one activity per check, in
 * an order where traffic comes first and the checks that inspect its traces after. A check
 * that throws (after its retry) fails its items with the error; it never aborts the run.
 */
export class ChecklistRunner {
  constructor(private readonly machine: IncidentMachine) {}

  /**
   * For resolve: the checks whose items are not passed, or passed more than 15 minutes ago.
   * Re-running only those keeps the synthetic flows inside the test users' rate limits.
   */
  staleChecks(now: number): CheckName[] {
    return checksToRerun(this.machine.state.checklist, now, FRESH_MS);
  }

  async run(by: string, only: readonly CheckName[] = CHECK_ORDER): Promise<void> {
    const m = this.machine;
    const s = m.state;
    s.checklistRunning = true;
    m.record({
      at: new Date().toISOString(),
      kind: 'checklist',
      message: `Recovery validation checklist run started (${only.length} of ${CHECK_ORDER.length} checks)`,
      by,
    });
    try {
      const baseline = await checks().captureMetricsBaseline();
      const input: CheckInput = {
        incidentId: s.id || s.workflowId,
        type: s.type,
        detectedAt: s.detectedAt,
        affected: s.affected,
        baseline,
      };
      // an item several checks speak to (valid tokens: SMS and links) takes the worst verdict
      const merged = new Map<string, ItemResult>();
      for (const name of CHECK_ORDER.filter((c) => only.includes(c))) {
        for (const result of (await this.one(name, input)).items) {
          const before = merged.get(result.id);
          merged.set(
            result.id,
            before
              ? {
                  id: result.id,
                  status: before.status === 'failed' ? 'failed' : result.status,
                  detail: `${before.detail}; ${result.detail}`,
                }
              : result,
          );
        }
        m.applyCheckOutcome({ items: [...merged.values()] }, Date.now());
      }
      const automated = s.checklist.filter((i) => i.automated);
      const failed = automated.filter((i) => i.status === 'failed');
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
      return await checks()[name](input);
    } catch (err) {
      const detail = `check could not run: ${(err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)).slice(0, 200)}`;
      return {
        items: CHECKLIST.filter((i) => i.check === name).map((i) => ({ id: i.id, status: 'failed' as const, detail })),
      };
    }
  }
}
