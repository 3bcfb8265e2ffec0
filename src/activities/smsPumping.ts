/**
 * The SMS pumping evaluation's side effects (docs/delivery.md#sms-pumping), one each: count and
 * record conversion (per prefix for the decision, per country for the metrics), block a prefix,
 * report a block to its abuse incident. Run on the ops task queue by
 * src/workflows/ops/smsPumping.ts.
 */
import { DatabaseReadOnlyError } from '../db/database';
import { countConversion, recordEvaluation } from '../delivery/conversion';
import { addPrefixBlock, findPrefixBlock, notePrefixIncident, unreportedBlocks } from '../delivery/prefixBlocks';
import { prefixesToBlock, type BlockCandidate } from '../delivery/smsPumping';
import { notifyAlertGroup } from '../incidents/client';
import { pumpingNotification } from '../incidents/smsPumping';
import type { Runtime } from '../runtime';

export type PumpingEvaluation =
  | { status: 'read_only' }
  | {
      status: 'ready';
      prefixes: number;
      candidates: BlockCandidate[];
      /** blocks in force the evaluation added whose incident was never told */
      unreported: Array<{ prefix: string; generation: number }>;
    };

export function createSmsPumpingActivities(runtime: Pick<Runtime, 'db' | 'config' | 'logger' | 'temporal'>) {
  const { db, config } = runtime;
  const { rules } = config.smsPumping;
  const log = runtime.logger.child({ component: 'sms-pumping' });

  return {
    /**
     * Counts every prefix's messages and verified challenges over the windows, records the
     * per-country totals, and answers the prefixes the rules would block (none is blocked here)
     * and the blocks still to be reported.
     */
    async evaluateSmsPrefixes(): Promise<PumpingEvaluation> {
      if (db.readOnly) return { status: 'read_only' };
      const counted = await countConversion(db, rules);
      const candidates = prefixesToBlock(counted.judged, rules);
      const prefixes = new Set(counted.judged.map((c) => c.prefix)).size;
      try {
        await recordEvaluation(db, { countries: counted.countries, prefixes, candidates: candidates.length });
      } catch (err) {
        // read-only degradation began while this run counted: nothing can be blocked either
        if (err instanceof DatabaseReadOnlyError) return { status: 'read_only' };
        throw err;
      }
      return { status: 'ready', prefixes, candidates, unreported: await unreportedBlocks(db) };
    },

    /** Blocks one prefix for the configured time; a prefix blocked already keeps its block. */
    async blockSmsPrefix(candidate: BlockCandidate) {
      const { block, created } = await addPrefixBlock(runtime, candidate, rules.blockSeconds);
      if (created)
        log.warn(
          {
            prefix: block.prefix,
            until: block.until,
            messages: candidate.messages,
            settled: candidate.settled,
            verified: candidate.verified,
          },
          'SMS prefix blocked: low conversion (SMS pumping)',
        );
      return {
        prefix: block.prefix,
        generation: block.generation,
        created,
        reported: block.incident_workflow_id !== null,
      };
    },

    /**
     * Reports a block to its prefix's abuse incident: opens it, or adds the block to the one that
     * is open (signal-with-start under the prefix's alert group). Idempotent.
     */
    async reportSmsPrefixBlock(input: { prefix: string; generation: number }) {
      const block = await findPrefixBlock(db, input.prefix);
      if (!block || block.generation !== input.generation) return { workflowId: null, incidentId: null };
      const n = pumpingNotification(block);
      const deps = { client: runtime.temporal.client, db, taskQueue: config.temporal.taskQueue };
      const { runId, incidentId } = await notifyAlertGroup(deps, n.workflowId, n.signal, () => n.input);
      if (runId) await notePrefixIncident(db, { ...input, workflowId: n.workflowId, runId, incidentId });
      return { workflowId: n.workflowId, incidentId };
    },
  };
}
