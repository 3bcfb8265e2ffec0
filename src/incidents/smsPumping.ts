/**
 * The abuse incident a prefix block opens, the way an Alertmanager alert opens one
 * (src/api/integrations/alertmanager.ts): a notification to the alert group's workflow by
 * signal-with-start, under a key that depends only on the prefix. While that incident is open,
 * every later block of the prefix lands on it (a line on its timeline), never a new incident;
 * once it is resolved, the next block opens a fresh one. The abuse runbook and the incident's
 * Slack thread take it from there.
 */
import type { PrefixBlock } from '../delivery/prefixBlocks';
import { LIMITS, type AlertNotificationInput, type IncidentInput } from '../shared/incidents';
import { SMS_PUMPING_ACTOR } from '../shared/smsPumping';
import { alertGroupHash, alertWorkflowId } from './alertmanager';

/** Not an Alertmanager alert name, but read like one on the incident's timeline. */
export const PUMPING_ALERT_NAME = 'SmsPumpingPrefixBlocked';

/**
 * The block has contained the cost already: a responder looks within hours, and the abuse
 * runbook's destructive steps wait for an approval (WARDEN_RUNBOOK_APPROVAL_SEVERITIES).
 */
const SEVERITY = 'P2';

const groupKey = (prefix: string) => `warden/sms-pumping/${prefix}`;

export interface PumpingNotification {
  workflowId: string;
  signal: AlertNotificationInput;
  input: IncidentInput;
}

export function pumpingNotification(block: PrefixBlock): PumpingNotification {
  const key = groupKey(block.prefix);
  const verified = block.verified ?? 0;
  const settled = block.settled ?? 0;
  const share = settled > 0 ? `${Math.round((verified / settled) * 1000) / 10}%` : 'none';
  const impact =
    `${block.messages ?? '?'} SMS went to numbers starting +${block.prefix} in ${block.window_seconds ?? '?'} s and ` +
    `${verified} of ${settled} challenges with a known outcome were verified (${share}): the pattern of SMS pumping. ` +
    `Warden refuses SMS to the prefix until ${block.until}, through whichever provider the route uses; ` +
    `lift it early with DELETE /admin/api/v1/delivery/sms/prefix-blocks/${block.prefix}.`;
  return {
    workflowId: alertWorkflowId(key),
    signal: {
      status: 'firing',
      // one alert per block: a later block of the prefix is news on the open incident, a retry is not
      firing: [`${block.prefix}/${block.generation}`],
      resolved: [],
      alertnames: [PUMPING_ALERT_NAME],
    },
    input: {
      type: 'abuse',
      severity: SEVERITY,
      title: `SMS pumping suspected: SMS to +${block.prefix}… blocked`.slice(0, LIMITS.title),
      impact: impact.slice(0, LIMITS.text),
      // opened by monitoring, like an alert: a report calls it one, and no person's authority applies
      source: 'alertmanager',
      openedBy: SMS_PUMPING_ACTOR,
      openedByRole: 'automation',
      detectedAt: block.created_at,
      alertGroup: alertGroupHash(key),
    },
  };
}
