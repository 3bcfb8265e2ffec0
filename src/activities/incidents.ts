import { contactsSource } from '../incidents/contacts';
import type { Runtime } from '../runtime';
import { createAuthChecklistActivities } from './checklistAuth';
import { createMetricsChecklistActivities } from './checklistMetrics';
import { createSystemChecklistActivities } from './checklistSystem';
import { createIncidentStoreActivities } from './incidentStore';
import { createEmailNotifyActivities } from './notifyEmail';
import { createSlackNotifyActivities } from './notifySlack';

/**
 * Every activity of the incident workflow: the projection, Slack and email notifications,
 * and the recovery validation checks. The contacts file is read (and validated) here, at
 * worker start, so a broken file stops the worker instead of silencing a page later.
 */
export function createIncidentActivities(
  runtime: Pick<Runtime, 'db' | 'logger' | 'metrics' | 'config' | 'providers' | 'temporal' | 'registry'>,
) {
  const log = runtime.logger.child({ component: 'incidents' });
  const contacts = contactsSource(runtime.config.incidents.contactsFile, (message) =>
    log.error({ problem: message }, 'contacts file unreadable; keeping the last good contacts'),
  );
  return {
    ...createIncidentStoreActivities(runtime),
    ...createSlackNotifyActivities({ ...runtime, contacts }),
    ...createEmailNotifyActivities({ ...runtime, contacts }),
    ...createAuthChecklistActivities(runtime),
    ...createSystemChecklistActivities(runtime),
    ...createMetricsChecklistActivities(runtime),
  };
}
