import { setHandler } from '@temporalio/workflow';
import {
  acknowledgeUpdate,
  addNoteUpdate,
  addPreventiveActionUpdate,
  alertNotificationSignal,
  changeSeverityUpdate,
  checkItemUpdate,
  completeTaskUpdate,
  decideRunbookStartUpdate,
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
import { IncidentValidators } from './validators';

/**
 * Wires the incident's messages to the machine. Synchronous updates change the state and
 * return it at once (Slack buttons need answers in seconds); the notifications they cause go
 * out from the workflow's main loop. runChecklist and resolve wait for the automated checks.
 */
export function registerHandlers(m: IncidentMachine, checklist: ChecklistRunner): void {
  const now = () => Date.now();
  const v = new IncidentValidators(m);
  setHandler(incidentStateQuery, () => m.state);
  setHandler(timelineQuery, () => m.state.timeline);

  setHandler(acknowledgeUpdate, (i) => (m.acknowledge(i, now()), m.state), {
    validator: (i) => v.validateAcknowledge(i),
  });
  setHandler(escalateUpdate, (i) => (m.escalate(i, now()), m.state), { validator: (i) => v.validateEscalate(i) });
  setHandler(addNoteUpdate, (i) => (m.addNote(i, now()), m.state), { validator: (i) => v.validateNote(i) });
  setHandler(changeSeverityUpdate, (i) => (m.changeSeverity(i, now()), m.state), {
    validator: (i) => v.validateSeverity(i),
  });
  setHandler(flagDataBreachUpdate, (i) => (m.flagDataBreach(i, now()), m.state), {
    validator: (i) => v.validateDataBreach(i),
  });
  setHandler(reportMitigationUpdate, (i) => (m.reportMitigation(i, now()), m.state), {
    validator: (i) => v.validateMitigation(i),
  });
  setHandler(recordRootCauseUpdate, (i) => (m.recordRootCause(i, now()), m.state), {
    validator: (i) => v.validateRootCause(i),
  });
  setHandler(completeTaskUpdate, (i) => (m.completeTask(i, now()), m.state), { validator: (i) => v.validateTask(i) });
  setHandler(checkItemUpdate, (i) => (m.checkItem(i, now()), m.state), { validator: (i) => v.validateCheckItem(i) });
  setHandler(addPreventiveActionUpdate, (i) => (m.addPreventiveAction(i, now()), m.state), {
    validator: (i) => v.validatePreventiveAction(i),
  });

  setHandler(decideRunbookStartUpdate, (i) => (m.decideRunbookStart(i, now()), m.state), {
    validator: (i) => v.validateRunbookStart(i),
  });

  setHandler(
    runChecklistUpdate,
    async (i) => {
      await checklist.run(i.by);
      return m.state;
    },
    { validator: (_i) => v.validateRunChecklist() },
  );

  setHandler(
    resolveUpdate,
    async (i) => {
      m.resolving = true;
      try {
        if (!i.force) {
          const stale = checklist.staleChecks(now());
          if (stale.length) await checklist.run(i.by, stale);
          const failed = m.state.checklist.filter(
            (item) => item.status !== 'passed' && item.status !== 'not_applicable',
          );
          if (failed.length) {
            throw fail(
              'ChecklistFailed',
              `recovery validation checklist not passed: ${failed.map((item) => `${item.id} (${item.status})`).join(', ')}`,
            );
          }
        }
        m.assertOpen();
        m.resolve(i, now());
        return m.state;
      } finally {
        m.resolving = false;
      }
    },
    { validator: (i) => v.validateResolve(i) },
  );

  setHandler(alertNotificationSignal, (i) => m.alert(i, now()));
  setHandler(runbookProgressSignal, (i) => m.runbookProgress(i, now()));
}
