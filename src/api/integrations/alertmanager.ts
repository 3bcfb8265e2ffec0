/**
 * `POST /alertmanager/webhook` (Alertmanager's webhook_config, payload version 4), with the
 * bearer token WARDEN_ALERTMANAGER_TOKEN. One incident per notification group: the workflow id
 * is `alert-<sha256(groupKey)>` and the notification is a signal-with-start, so repeats and
 * the duplicates of an Alertmanager HA pair land on the incident that is already open (the
 * workflow ignores notifications that change nothing). The incident claims its
 * INC-YYYY-MM-DD-NN id in the `incidents` table when it starts; responders use that id.
 * A `resolved` notification goes onto the open incident's timeline and never opens one.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  alertWorkflowId,
  fingerprintOf,
  incidentFromAlerts,
  alertGroupHash,
  type AlertmanagerPayload,
} from '../../incidents/alertmanager';
import { notifyAlertGroup } from '../../incidents/client';
import type { AlertNotificationInput } from '../../shared/incidents';
import { ApiError, ErrorBody } from '../errors';
import { requireBearer } from '../plugins/bearerAuth';
import { deps } from './incidentOps';

const Labels = Type.Record(Type.String({ maxLength: 200 }), Type.String({ maxLength: 2000 }));
const Alert = Type.Object({
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
  labels: Labels,
  annotations: Type.Optional(Labels),
  startsAt: Type.Optional(Type.String({ maxLength: 64 })),
  endsAt: Type.Optional(Type.String({ maxLength: 64 })),
  fingerprint: Type.Optional(Type.String({ maxLength: 128 })),
  generatorURL: Type.Optional(Type.String({ maxLength: 4000 })),
});
const Payload = Type.Object({
  version: Type.Optional(Type.String({ maxLength: 10 })),
  groupKey: Type.String({ minLength: 1, maxLength: 10_000 }),
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
  receiver: Type.Optional(Type.String({ maxLength: 500 })),
  groupLabels: Type.Optional(Labels),
  commonLabels: Type.Optional(Labels),
  commonAnnotations: Type.Optional(Labels),
  externalURL: Type.Optional(Type.String({ maxLength: 4000 })),
  truncatedAlerts: Type.Optional(Type.Integer({ minimum: 0 })),
  alerts: Type.Array(Alert, { minItems: 1, maxItems: 1000 }),
});
const Answer = Type.Object({
  workflow_id: Type.String(),
  run_id: Type.Union([Type.String(), Type.Null()]),
  incident_id: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.Union([Type.Literal('delivered'), Type.Literal('ignored')]),
});

const alertmanager: FastifyPluginAsyncTypebox = async (app) => {
  const { config, metrics } = app.warden;
  const bearer = requireBearer(() => config.incidents.alertmanagerToken, 'warden-alertmanager');

  app.post(
    '/alertmanager/webhook',
    {
      // an unset token means "not wired up", not "open to anyone"
      onRequest: async (request, reply) => {
        if (!config.incidents.alertmanagerToken)
          throw new ApiError(503, 'not_configured', 'WARDEN_ALERTMANAGER_TOKEN is not set');
        await bearer(request, reply);
      },
      bodyLimit: 1024 * 1024,
      schema: { body: Payload, response: { 200: Answer, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody } },
    },
    async (request) => {
      const payload = request.body as AlertmanagerPayload;
      const workflowId = alertWorkflowId(payload.groupKey);
      const signal: AlertNotificationInput = {
        status: payload.status,
        firing: payload.alerts.filter((a) => a.status === 'firing').map(fingerprintOf),
        resolved: payload.alerts.filter((a) => a.status === 'resolved').map(fingerprintOf),
        alertnames: [...new Set(payload.alerts.map((a) => a.labels.alertname).filter((n): n is string => Boolean(n)))],
      };
      const { runId, incidentId } = await notifyAlertGroup(deps(app), workflowId, signal, () =>
        incidentFromAlerts(payload, alertGroupHash(payload.groupKey)),
      );
      // an all-clear for a group with no open incident is ignored
      const outcome = runId ? ('delivered' as const) : ('ignored' as const);
      metrics.alertmanagerNotifications.inc({ status: payload.status, outcome });
      return { workflow_id: workflowId, run_id: runId, incident_id: incidentId, outcome };
    },
  );
};

export default alertmanager;
