/**
 * Incidents on the admin API (bearer token): open, list (Temporal visibility on the
 * IncidentType / Severity / IncidentStatus search attributes), read, steer, and the
 * post-incident documents (the report, the customer notification). Every change goes through
 * an update of the incident's workflow; its validators decide what makes sense.
 */
import { Type, type FastifyPluginAsyncTypebox, type Static, type TSchema } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { listIncidents, type UpdateOutcome } from '../../incidents/client';
import { contactsSource } from '../../incidents/contacts';
import { renderReport } from '../../incidents/report';
import { customerNotification } from '../../incidents/templates';
import {
  acknowledgeUpdate,
  addNoteUpdate,
  addPreventiveActionUpdate,
  changeSeverityUpdate,
  checkItemUpdate,
  completeTaskUpdate,
  escalateUpdate,
  flagDataBreachUpdate,
  INCIDENT_STATUSES,
  INCIDENT_TYPES,
  INTERNAL_ROLES,
  LIMITS,
  recordRootCauseUpdate,
  reportMitigationUpdate,
  resolveUpdate,
  runChecklistUpdate,
  SEVERITIES,
  type IncidentState,
} from '../../shared/incidents';
import { ApiError, ErrorBody } from '../errors';
import { deps, readState, sendUpdate, startIncident } from '../integrations/incidentOps';
import { operatorOf } from '../plugins/operatorAuth';

const lit = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const Name = Type.String({ minLength: 1, maxLength: 200 });
/** accepted for older clients and ignored: the operator's credential names who acted */
const By = Type.Optional(Name);
const Text = Type.String({ minLength: 1, maxLength: LIMITS.text });
const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9-]+$' }) });
const StateBody = Type.Object({}, { additionalProperties: true });
const Accepted = Type.Object({ id: Type.String(), status: Type.Literal('pending'), message: Type.String() });
const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody };
const Names = Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: LIMITS.affected });

const OpenBody = Type.Object(
  {
    type: lit(INCIDENT_TYPES),
    severity: lit(SEVERITIES),
    title: Type.String({ minLength: 1, maxLength: LIMITS.title }),
    impact: Type.Optional(Type.String({ maxLength: LIMITS.text })),
    opened_by: By,
    affected: Type.Optional(
      Type.Object(
        { users: Type.Optional(Names), ips: Type.Optional(Names), providers: Type.Optional(Names) },
        { additionalProperties: false },
      ),
    ),
    data_breach: Type.Optional(Type.Boolean()),
    ddos: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const Summary = Type.Object({
  id: Type.String(),
  workflow_id: Type.String(),
  run_id: Type.String(),
  type: Type.String(),
  severity: Type.String(),
  status: Type.String(),
  title: Type.Union([Type.String(), Type.Null()]),
  started_at: Type.Union([Type.String(), Type.Null()]),
  closed: Type.Boolean(),
});

const incidents: FastifyPluginAsyncTypebox = async (app) => {
  const contacts = contactsSource(app.warden.config.incidents.contactsFile, (problem) =>
    app.log.error({ problem }, 'contacts file unreadable'),
  );

  app.post(
    '/incidents',
    {
      config: { role: 'responder' },
      schema: {
        body: OpenBody,
        response: { 201: Type.Object({ id: Type.String(), run_id: Type.String() }), ...errors },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const operator = operatorOf(request);
      const { id, runId } = await startIncident(app, {
        type: b.type,
        severity: b.severity,
        title: b.title,
        impact: b.impact,
        source: 'api',
        openedBy: operator.name,
        // its runbook runs on this authority: a responder's P0 waits for an admin at destructive steps
        openedByRole: operator.role,
        affected: b.affected,
        dataBreach: b.data_breach,
        ddos: b.ddos,
      });
      return reply.status(201).header('location', `/admin/api/v1/incidents/${id}`).send({ id, run_id: runId });
    },
  );

  app.get(
    '/incidents',
    {
      schema: {
        querystring: Type.Object({
          type: Type.Optional(lit(INCIDENT_TYPES)),
          severity: Type.Optional(lit(SEVERITIES)),
          status: Type.Optional(lit(INCIDENT_STATUSES)),
          limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$' })),
        }),
        response: { 200: Type.Object({ incidents: Type.Array(Summary) }), ...errors },
      },
    },
    async (request) => {
      const { type, severity, status } = request.query;
      const limit = Math.min(Number(request.query.limit ?? 50), 200);
      return { incidents: await listIncidents(deps(app), { type, severity, status, limit }) };
    },
  );

  app.get('/incidents/:id', { schema: { params: Id, response: { 200: StateBody, ...errors } } }, async (request) =>
    readState(app, request.params.id),
  );

  /**
   * POST /incidents/:id/<path> (responders): body -> update input -> the new state (or 202
   * while it runs). The update's `by` is the calling operator, whatever the body says.
   */
  function action<S extends TSchema, Arg>(
    path: string,
    body: S,
    def: Parameters<typeof sendUpdate<Arg>>[2],
    toArg: (b: Static<S> & { by: string }, params: Record<string, string>) => Arg,
    waitMs?: number,
  ) {
    app.post(
      `/incidents/:id/${path}`,
      {
        config: { role: 'responder' },
        schema: {
          params: Type.Object({
            id: Id.properties.id,
            item: Type.Optional(Type.String({ maxLength: 100 })),
            task: Type.Optional(Type.String({ maxLength: 100 })),
          }),
          body,
          response: { 200: StateBody, 202: Accepted, ...errors },
        },
      },
      async (request, reply) =>
        answer(
          reply,
          request.params.id,
          await sendUpdate(
            app,
            request.params.id,
            def,
            toArg(
              { ...(request.body as Static<S>), by: operatorOf(request).name },
              request.params as Record<string, string>,
            ),
            waitMs,
          ),
        ),
    );
  }
  const answer = (reply: FastifyReply, id: string, outcome: UpdateOutcome) =>
    outcome.done
      ? reply.send(outcome.state)
      : reply.status(202).send({ id, status: 'pending', message: 'still running: GET the incident for the outcome' });
  const obj = <P extends Record<string, TSchema>>(props: P) => Type.Object(props, { additionalProperties: false });

  action('ack', obj({ by: By, note: Type.Optional(Text) }), acknowledgeUpdate, (b) => ({ by: b.by, note: b.note }));
  action('escalate', obj({ by: By, reason: Text, role: Type.Optional(lit(INTERNAL_ROLES)) }), escalateUpdate, (b) => b);
  action('notes', obj({ by: By, text: Text }), addNoteUpdate, (b) => b);
  action('severity', obj({ by: By, severity: lit(SEVERITIES), reason: Text }), changeSeverityUpdate, (b) => b);
  action('data-breach', obj({ by: By, reason: Text }), flagDataBreachUpdate, (b) => b);
  action('mitigations', obj({ by: By, description: Text }), reportMitigationUpdate, (b) => b);
  action('root-cause', obj({ by: By, text: Text }), recordRootCauseUpdate, (b) => b);
  action(
    'tasks/:task',
    obj({ by: By, outcome: lit(['done', 'not_needed'] as const), note: Type.Optional(Text) }),
    completeTaskUpdate,
    (b, p) => ({ ...b, taskId: p.task ?? '' }),
  );
  action('checklist/run', obj({ by: By }), runChecklistUpdate, (b) => b, 1_000);
  action(
    'checklist/:item',
    obj({ by: By, passed: Type.Boolean(), note: Type.Optional(Text) }),
    checkItemUpdate,
    (b, p) => ({ ...b, itemId: p.item ?? '' }),
  );
  action(
    'preventive-actions',
    obj({
      by: By,
      description: Text,
      category: lit(['code', 'monitoring', 'process', 'infrastructure'] as const),
      owner: Type.Optional(Name),
      due: Type.Optional(Type.String({ maxLength: 40 })),
    }),
    addPreventiveActionUpdate,
    (b) => b,
  );
  action(
    'resolve',
    obj({
      by: By,
      resolution: Text,
      root_cause: Type.Optional(Text),
      impact: Type.Optional(Text),
      went_well: Type.Optional(Text),
      to_improve: Type.Optional(Text),
      force: Type.Optional(Type.Boolean()),
      reason: Type.Optional(Text),
    }),
    resolveUpdate,
    (b) => ({
      by: b.by,
      resolution: b.resolution,
      rootCause: b.root_cause,
      impact: b.impact,
      wentWell: b.went_well,
      toImprove: b.to_improve,
      force: b.force,
      reason: b.reason,
    }),
  );

  app.get(
    '/incidents/:id/checklist',
    {
      schema: {
        params: Id,
        response: { 200: Type.Object({ checklist: Type.Array(StateBody), running: Type.Boolean() }), ...errors },
      },
    },
    async (request) => {
      const state = await readState(app, request.params.id);
      return { checklist: state.checklist, running: state.checklistRunning };
    },
  );

  app.get(
    '/incidents/:id/report',
    {
      schema: {
        params: Id,
        response: {
          200: { description: 'The post-incident report', content: { 'text/markdown': { schema: Type.String() } } },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const state = await readState(app, request.params.id);
      return reply.type('text/markdown; charset=utf-8').send(renderReport(state, new Date().toISOString()));
    },
  );

  app.get(
    '/incidents/:id/customer-notification',
    {
      schema: {
        params: Id,
        querystring: Type.Object({
          affected_percent: Type.Optional(Type.String({ pattern: '^(100|[0-9]{1,2})(\\.[0-9])?$' })),
        }),
        response: {
          200: {
            description: 'The notification to send to customers, once the incident is resolved',
            content: { 'text/plain': { schema: Type.String() } },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const state: IncidentState = await readState(app, request.params.id);
      if (state.status !== 'resolved')
        throw new ApiError(
          409,
          'not_resolved',
          'the customer notification names the restoration time: resolve the incident first',
        );
      const percent = request.query.affected_percent;
      const text = customerNotification({
        state,
        affectedPercent: percent === undefined ? undefined : Number(percent),
        supportEmail: contacts().support_email,
      });
      return reply.type('text/plain; charset=utf-8').send(text);
    },
  );
};

export default incidents;
