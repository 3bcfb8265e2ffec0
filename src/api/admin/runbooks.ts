/**
 * Runbooks on the admin API. `POST /runbooks/<name>` starts one directly: standalone (the run
 * is its own record: state, log, artifacts) or, with `incident_id`, attached to an open
 * incident whose timeline then gets every step. To open an incident *and* run its runbook,
 * open the incident (`POST /incidents`): it starts its runbook as a child. Steering goes
 * through the workflow's updates (approve, reject, cancel, false positives); artifacts
 * (forensic export, anomaly results, leak scan report) are served from Postgres. The work is
 * src/runbooks/client.ts; this file is HTTP: schemas, and each client error's status.
 */
import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { Type, type FastifyPluginAsyncTypebox, type TSchema } from '@fastify/type-provider-typebox';
import {
  cancelRun,
  decideStep,
  markFalsePositives,
  readRun,
  runArtifacts,
  RunbookError,
  startRunbook,
  type RunbookDeps,
  type RunbookErrorCode,
} from '../../runbooks/client';
import { listRuns, openArtifact } from '../../runbooks/projection';
import { RUNBOOK_NAMES } from '../../shared/runbookRegistry';
import { SEVERITIES, type Severity } from '../../shared/incidents';
import { roleAtLeast } from '../../shared/roles';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const lit = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
/** accepted for older clients and ignored: the operator's credential names who acted */
const By = Type.Optional(Type.String({ minLength: 1, maxLength: 200 }));
const Text = Type.String({ minLength: 1, maxLength: 2000 });
const RunId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._-]+$' }) });
// no control characters (Postgres cannot store U+0000; the activities would fail on it later)
const Names = (max: number) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }), { maxItems: max });
const StateBody = Type.Object({}, { additionalProperties: true });
const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody };
const obj = <P extends Record<string, TSchema>>(props: P) => Type.Object(props, { additionalProperties: false });

const StartBody = obj({
  severity: lit(SEVERITIES),
  by: By,
  incident_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9-]+$' })),
  users: Type.Optional(Names(10_000)),
  ips: Type.Optional(Names(10_000)),
  params: Type.Optional(Type.Object({}, { additionalProperties: true })),
  approve: Type.Optional(Names(50)),
  approval_severities: Type.Optional(Type.Array(lit(SEVERITIES), { maxItems: 4 })),
  /** makes the start idempotent: the same request id names the same run */
  request_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
});

const STATUS: Record<RunbookErrorCode, number> = {
  unknown_runbook: 404,
  runbook_not_found: 404,
  incident_not_found: 404,
  unknown_step: 404,
  invalid_request: 400,
  incident_closed: 409,
  runbook_already_running: 409,
  runbook_finished: 409,
  not_supported: 409,
  not_awaiting_approval: 409,
  already_cancelling: 409,
  block_too_broad: 400,
};

/** The client's refusals as API errors; anything else goes to the app's error handler as it is. */
async function http<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof RunbookError) throw new ApiError(STATUS[err.code], err.code, err.message);
    throw err;
  }
}

const runbooks: FastifyPluginAsyncTypebox = async (app) => {
  const deps: RunbookDeps = {
    client: app.warden.temporal.client,
    db: app.warden.db,
    taskQueue: app.warden.config.temporal.taskQueue,
    blockLimits: app.warden.config.blockLimits,
  };

  app.get(
    '/runbooks',
    {
      schema: {
        querystring: Type.Object({
          runbook: Type.Optional(lit(RUNBOOK_NAMES)),
          status: Type.Optional(lit(['running', 'completed', 'failed', 'cancelled'] as const)),
          incident_id: Type.Optional(Type.String({ maxLength: 100 })),
          limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$' })),
        }),
        response: {
          200: Type.Object({ available: Type.Array(Type.String()), runs: Type.Array(StateBody) }),
          ...errors,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const runs = await listRuns(app.warden.db, {
        runbook: q.runbook,
        status: q.status,
        incidentId: q.incident_id,
        limit: Math.min(Number(q.limit ?? 50), 200),
      });
      return { available: RUNBOOK_NAMES, runs };
    },
  );

  app.post(
    '/runbooks/:name',
    // up to 10,000 affected users and IPs (a compromised-token response at scale): well over
    // the admin app's default 64 KB, still far under Temporal's payload limit
    {
      bodyLimit: 1024 * 1024,
      schema: {
        params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
        body: StartBody,
        response: { 200: StateBody, 201: StateBody, ...errors },
      },
      config: { role: 'responder' },
    },
    async (request, reply) => {
      const b = request.body;
      const operator = operatorOf(request);
      // a responder starts the runbook as its policy stands; deciding its destructive steps
      // in advance (pre-approvals, other approval severities) is an admin's call
      if ((b.approve?.length || b.approval_severities) && !roleAtLeast(operator.role, 'admin'))
        throw new ApiError(
          403,
          'forbidden',
          `pre-approving steps or changing approval severities needs the admin role`,
          {
            needed_role: 'admin',
          },
        );
      const run = await http(
        startRunbook(deps, {
          name: request.params.name,
          severity: b.severity as Severity,
          by: operator.name,
          role: operator.role,
          incidentId: b.incident_id,
          users: b.users,
          ips: b.ips,
          params: b.params as Record<string, unknown> | undefined,
          approve: b.approve,
          approvalSeverities: b.approval_severities as Severity[] | undefined,
          requestId: b.request_id,
        }),
      );
      const body = { workflow_id: run.workflowId, runbook: run.runbook, incident_id: run.incidentId };
      if (run.existing) return reply.status(200).send({ ...body, existing: true });
      return reply.status(201).header('location', `/admin/api/v1/runbooks/runs/${run.workflowId}`).send(body);
    },
  );

  app.get(
    '/runbooks/runs/:id',
    { schema: { params: RunId, response: { 200: StateBody, ...errors } } },
    async (request) => http(readRun(deps, request.params.id)),
  );

  const decide =
    (approve: boolean) =>
    async (request: FastifyRequest<{ Params: { id: string }; Body: { step: string; note?: string } }>) =>
      http(
        decideStep(deps, request.params.id, {
          step: request.body.step,
          by: operatorOf(request).name,
          approve,
          note: request.body.note,
        }),
      );
  const DecideBody = obj({ step: Type.String({ minLength: 1, maxLength: 100 }), by: By, note: Type.Optional(Text) });
  app.post(
    '/runbooks/runs/:id/approve',
    { schema: { params: RunId, body: DecideBody, response: { 200: StateBody, ...errors } } },
    decide(true),
  );
  app.post(
    '/runbooks/runs/:id/reject',
    { schema: { params: RunId, body: DecideBody, response: { 200: StateBody, ...errors } } },
    decide(false),
  );

  app.post(
    '/runbooks/runs/:id/cancel',
    {
      schema: {
        params: RunId,
        body: obj({ by: By, reason: Text, compensate: Type.Optional(Type.Boolean()) }),
        response: { 202: StateBody, ...errors },
      },
      config: { role: 'responder' },
    },
    async (request, reply) =>
      reply
        .status(202)
        .send(await http(cancelRun(deps, request.params.id, { ...request.body, by: operatorOf(request).name }))),
  );

  app.post(
    '/runbooks/runs/:id/false-positives',
    {
      schema: {
        params: RunId,
        body: obj({
          by: By,
          users: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 500 }),
        }),
        response: { 200: StateBody, ...errors },
      },
      config: { role: 'responder' },
    },
    async (request) =>
      http(markFalsePositives(deps, request.params.id, { ...request.body, by: operatorOf(request).name })),
  );

  app.get(
    '/runbooks/runs/:id/artifacts',
    { schema: { params: RunId, response: { 200: Type.Object({ artifacts: Type.Array(StateBody) }), ...errors } } },
    async (request) => ({ artifacts: await http(runArtifacts(deps, request.params.id)) }),
  );

  app.get(
    '/runbooks/runs/:id/artifacts/:name',
    {
      schema: {
        params: Type.Object({
          id: RunId.properties.id,
          name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._-]+$' }),
        }),
        response: {
          200: {
            description: 'The artifact as stored (X-Content-SHA256 is its digest): NDJSON or JSON',
            content: {
              'application/x-ndjson': { schema: Type.String() },
              'application/json': { schema: Type.Unknown() },
            },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const artifact = await openArtifact(app.warden.db, request.params.id, request.params.name);
      if (!artifact)
        throw new ApiError(404, 'artifact_not_found', `no artifact ${request.params.name} for ${request.params.id}`);
      return reply
        .type(artifact.contentType)
        .header('Cache-Control', 'no-store')
        .header('X-Content-SHA256', artifact.sha256)
        .header('Content-Disposition', `attachment; filename="${request.params.name}"`)
        .send(Readable.from(artifact.body));
    },
  );
};

export default runbooks;
