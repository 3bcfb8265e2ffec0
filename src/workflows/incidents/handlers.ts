import { setHandler } from '@temporalio/workflow';
import {
  acknowledgeUpdate,
  addNoteUpdate,
  addPreventiveActionUpdate,
  alertNotificationSignal,
  changeSeverityUpdate,
  checkItemUpdate,
  completeTaskUpdate,
  escalateUpdate,
  flagDataBreachUpdate,
  incidentStateQuery,
  recordRootCauseUpdate,
  reportMitigationUpdate,
  resolveUpdate,
  runbookProgressSignal,
  runChecklistUpdate,
  timelineQuery,
} from '../../shared/incidents';
import type { ChecklistRunner } from './checklistRunner';
import { fail, type IncidentMachine } from './machine';

/**
 * Wires the incident's messages to the machine. Synchronous updates change the state and
 * return it at once (Slack buttons need answers in seconds); the notifications they cause go
 * out from the workflow's main loop. runChecklist and resolve wait for the automated checks.
 */
export function registerHandlers(m: IncidentMachine, checklist: ChecklistRunner): void {
  const now = () => Date.now();
  setHandler(incidentStateQuery, () => m.state);
  setHandler(timelineQuery, () => m.state.timeline);

  setHandler(acknowledgeUpdate, (i) => (m.acknowledge(i, now()), m.state), { validator: (i) => m.validateAcknowledge(i) });
  setHandler(escalateUpdate, (i) => (m.escalate(i, now()), m.state), { validator: (i) => m.validateEscalate(i) });
  setHandler(addNoteUpdate, (i) => (m.addNote(i, now()), m.state), { validator: (i) => m.validateNote(i) });
  setHandler(changeSeverityUpdate, (i) => (m.changeSeverity(i, now()), m.state), { validator: (i) => m.validateSeverity(i) });
  setHandler(flagDataBreachUpdate, (i) => (m.flagDataBreach(i, now()), m.state), { validator: (i) => m.validateDataBreach(i) });
  setHandler(reportMitigationUpdate, (i) => (m.reportMitigation(i, now()), m.state), { validator: (i) => m.validateMitigation(i) });
  setHandler(recordRootCauseUpdate, (i) => (m.recordRootCause(i, now()), m.state), { validator: (i) => m.validateRootCause(i) });
  setHandler(completeTaskUpdate, (i) => (m.completeTask(i, now()), m.state), { validator: (i) => m.validateTask(i) });
  setHandler(checkItemUpdate, (i) => (m.checkItem(i, now()), m.state), { validator: (i) => m.validateCheckItem(i) });
  setHandler(addPreventiveActionUpdate, (i) => (m.addPreventiveAction(i, now()), m.state), { validator: (i) => m.validatePreventiveAction(i) });

  setHandler(
    runChecklistUpdate,
    async (i) => {
      await checklist.run(i.by);
      return m.state;
    },
    { validator: (_i) => m.validateRunChecklist() },
  );

  setHandler(
    resolveUpdate,
    async (i) => {
      m.resolving = true;
      try {
        if (!i.force) {
          if (checklist.needsRun(now())) await checklist.run(i.by);
          const failed = m.state.checklist.filter((item) => item.status !== 'passed' && item.status !== 'not_applicable');
          if (failed.length) {
            throw fail('ChecklistFailed', `recovery validation checklist not passed: ${failed.map((item) => `${item.id} (${item.status})`).join(', ')}`);
          }
        }
        m.assertOpen();
        m.resolve(i, now());
        return m.state;
      } finally {
        m.resolving = false;
      }
    },
    { validator: (i) => m.validateResolve(i) },
  );

  setHandler(alertNotificationSignal, (i) => m.alert(i, now()));
  setHandler(runbookProgressSignal, (i) => m.runbookProgress(i, now()));
}
