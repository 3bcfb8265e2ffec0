import type { SmsPumpingResult } from '../../shared/smsPumping';
import { opsActivities } from '../opsActivities';

/**
 * One SMS pumping evaluation, started by its schedule (src/delivery/pumpingSchedule.ts; overlap
 * skip, so runs never overlap): conversion per number prefix over the configured windows, then
 * each prefix the rules judge is blocked and the block reported to the prefix's abuse incident.
 * A block is in force from the moment its row is written, whatever becomes of the report; a
 * report that failed for good is made by the next run. The
 * activities run on the ops task queue, so the counting never takes a slot a sign-in needs.
 */
export async function smsPumpingWorkflow(): Promise<SmsPumpingResult> {
  const { evaluateSmsPrefixes, blockSmsPrefix } = opsActivities({
    startToCloseTimeout: '1 minute',
    // a missed run costs one interval: few retries, the next run counts again
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
  });
  const { reportSmsPrefixBlock } = opsActivities({
    startToCloseTimeout: '30 seconds',
    // the incident is how responders hear of the block: worth a few minutes of retries
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
  });

  const evaluation = await evaluateSmsPrefixes();
  if (evaluation.status === 'read_only') return { status: 'read_only', prefixes: 0, blocked: [], incidents: [] };
  const blocked: string[] = [];
  // blocks in force that no incident has heard of yet: an earlier run's report that failed
  const unreported = [...evaluation.unreported];
  for (const candidate of evaluation.candidates) {
    const block = await blockSmsPrefix(candidate);
    if (block.created) blocked.push(block.prefix);
    if (!block.reported) unreported.push({ prefix: block.prefix, generation: block.generation });
  }
  const incidents = new Set<string>();
  for (const block of unreported) {
    const report = await reportSmsPrefixBlock(block);
    if (report.workflowId) incidents.add(report.workflowId);
  }
  return { status: 'done', prefixes: evaluation.prefixes, blocked, incidents: [...incidents] };
}
