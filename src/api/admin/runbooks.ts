import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Type, type FastifyPluginAsyncTypebox, type TSchema } from '@fastify/type-provider-typebox';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import { DatabaseReadOnlyError } from '../../db/database';
import { classifyUpdateError, findIncident, snakeCase } from '../../incidents/client';
import { checkRunbookParams } from '../../runbooks/params';
import { incidentStateQuery, SEVERITIES, type IncidentState, type Severity } from '../../shared/incidents';
import {
  approveStepUpdate,
  cancelRunbookUpdate,
  markFalsePositivesUpdate,
  RUNBOOK_INCIDENT_TYPES,
  RUNBOOK_NAMES,
  runbookStateQuery,
  type RunbookName,
  type RunbookStartInput,
  type RunbookState,
} from '../../shared/runbooks';
import { RUNBOOK_WORKFLOWS } from '../../workflows/incidents/runbooks';
import { ApiError, ErrorBody } from '../errors';

/**
 * Runbooks on the admin API. `POST /runbooks/<name>` starts one directly: standalone (the run
 * is its own record: state, log, artifacts) or, with `incident_id`, attached to an open
 * incident whose timeline then gets every step. To open an incident *and* run its runbook,
 * open the incident (`POST /incidents`): it starts its runbook as a child. Steering goes
 * through the workflow's updates (approve, reject, cancel, false positives); artifacts
 * (forensic export, anomaly results, leak scan report) are served from Postgres.
 */
const lit = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const By = Type.String({ minLength: 1, maxLength: 200 });
const Text = Type.String({ minLength: 1, maxLength: 2000 });
const RunId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._-]+$' }) });
// no control characters (Postgres cannot store U+0000; the activities would fail on it later)
const Names = (max: number) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }), { maxItems: max });
const StateBody = Type.Object({}, { additionalProperties: true });
const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 501: ErrorBody, 503: ErrorBody };
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

const RUNBOOK_ERROR_STATUS: Record<string, number> = {
  UnknownStep: 404,
  NotAwaitingApproval: 409,
  RunbookFinished: 409,
  AlreadyCancelling: 409,
  InvalidInput: 400,
};

function apiError(err: unknown, id: string): ApiError | undefined {
  const c = classifyUpdateError(err);
  if (c?.kind === 'not_found' || c?.kind === 'closed')
    return new ApiError(409, 'runbook_finished', `runbook ${id} has finished`);
  const failure = (err as { cause?: { type?: string; message?: string } }).cause;
  const type = failure?.type ?? (err as { type?: string }).type;
  if (type && type in RUNBOOK_ERROR_STATUS)
    return new ApiError(
      RUNBOOK_ERROR_STATUS[type]!,
      type === 'InvalidInput' ? 'invalid_request' : snakeCase(type),
      failure?.message ?? String(type),
    );
  return undefined;
}

async function runHandle(app: FastifyInstance, id: string): Promise<{ handle: WorkflowHandle; runbook: string }> {
  const { rows } = await app.warden.db.query<{ runbook: string }>(
    'SELECT runbook FROM runbook_runs WHERE workflow_id = $1',
    [id],
  );
  const handle = app.warden.temporal.client.workflow.getHandle(id);
  if (rows[0]) return { handle, runbook: rows[0].runbook };
  // no projection row: a run started while Postgres refused writes (the db-failover runbook's
  // own situation) is still found in Temporal, by its workflow type
  const type = await handle.describe().then(
    (d) => d.type,
    (err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    },
  );
  // a runbook not built yet has no workflow type: it must not match a run that does not exist
  const runbook =
    type === undefined ? undefined : RUNBOOK_NAMES.find((n) => RUNBOOK_WORKFLOWS[RUNBOOK_INCIDENT_TYPES[n]] === type);
  if (!runbook) throw new ApiError(404, 'runbook_not_found', `no runbook run ${id}`);
  return { handle, runbook };
}

async function readRun(app: FastifyInstance, id: string): Promise<RunbookState | Record<string, unknown>> {
  const { handle } = await runHandle(app, id);
  try {
    return await handle.query(runbookStateQuery);
  } catch (err) {
    if (classifyUpdateError(err)?.kind !== 'not_found') throw err;
    // the history is gone (retention): answer from the projection
    const run = await app.warden.db.query('SELECT * FROM runbook_runs WHERE workflow_id = $1', [id]);
    if (!run.rows[0]) throw new ApiError(404, 'runbook_not_found', `no runbook run ${id}`);
    const steps = await app.warden.db.query(
      'SELECT step, status, summary, updated_at FROM runbook_steps WHERE workflow_id = $1 ORDER BY updated_at',
      [id],
    );
    return { ...run.rows[0], steps: steps.rows, from: 'projection' };
  }
}

async function update<Arg>(
  app: FastifyInstance,
  id: string,
  def: UpdateDefinition<RunbookState, [Arg]>,
  arg: Arg,
): Promise<RunbookState> {
  const { handle } = await runHandle(app, id);
  try {
    return await handle.executeUpdate(def, { args: [arg] });
  } catch (err) {
    throw apiError(err, id) ?? err;
  }
}

const runbooks: FastifyPluginAsyncTypebox = async (app) => {
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
      const { rows } = await app.warden.db.query(
        `SELECT workflow_id, runbook, incident_id, severity, status, started_by, started_at, ended_at, summary FROM runbook_runs
          WHERE ($1::text IS NULL OR runbook = $1) AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR incident_id = $3)
          ORDER BY started_at DESC LIMIT $4`,
        [q.runbook ?? null, q.status ?? null, q.incident_id ?? null, Math.min(Number(q.limit ?? 50), 200)],
      );
      return { available: RUNBOOK_NAMES.filter((n) => RUNBOOK_WORKFLOWS[RUNBOOK_INCIDENT_TYPES[n]]), runs: rows };
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
    },
    async (request, reply) => {
      const name = request.params.name as RunbookName;
      if (!RUNBOOK_NAMES.includes(name))
        throw new ApiError(
          404,
          'unknown_runbook',
          `no runbook ${request.params.name}; runbooks: ${RUNBOOK_NAMES.join(', ')}`,
        );
      const type = RUNBOOK_INCIDENT_TYPES[name];
      const workflowType = RUNBOOK_WORKFLOWS[type];
      if (!workflowType)
        throw new ApiError(501, 'runbook_not_available', `runbook ${name} is not available in this version`);
      const b = request.body;
      const checked = checkRunbookParams(name, (b.params ?? {}) as Record<string, unknown>);
      if (!checked.ok) throw new ApiError(400, 'invalid_request', checked.message);
      const params = checked.value;

      let incidentId = '';
      let incidentWorkflowId = '';
      let incident: IncidentState | undefined;
      if (b.incident_id) {
        const ref = await findIncident(app.warden.db, b.incident_id);
        if (!ref) throw new ApiError(404, 'incident_not_found', `no incident ${b.incident_id}`);
        let state: IncidentState;
        try {
          state = await app.warden.temporal.client.workflow
            .getHandle(ref.workflowId, ref.runId)
            .query(incidentStateQuery);
        } catch (err) {
          if (classifyUpdateError(err)?.kind === 'not_found')
            throw new ApiError(404, 'incident_not_found', `no incident ${b.incident_id}`);
          throw err;
        }
        if (state.status === 'resolved') throw new ApiError(409, 'incident_closed', `${b.incident_id} is resolved`);
        if (state.runbook?.workflowType === workflowType && state.runbook.status === 'running') {
          throw new ApiError(
            409,
            'runbook_already_running',
            `${b.incident_id} already runs ${name} as ${state.runbook.workflowId}`,
          );
        }
        incidentId = state.id || ref.id;
        incidentWorkflowId = ref.workflowId;
        incident = state;
      }
      const input: RunbookStartInput = {
        incidentId,
        incidentWorkflowId,
        type,
        severity: b.severity as Severity,
        // what the request names, else what the incident it attaches to says is affected
        affected: {
          users: b.users ?? incident?.affected.users ?? [],
          ips: b.ips ?? incident?.affected.ips ?? [],
          providers: incident?.affected.providers ?? [],
        },
        dataBreach: incident?.dataBreach ?? false,
        ddos: incident?.ddos ?? false,
        startedBy: b.by,
        params,
        preApproved: b.approve,
        ...(b.approval_severities ? { approvalSeverities: b.approval_severities as Severity[] } : {}),
      };
      const workflowId = `runbook-${name}-${b.request_id ?? randomUUID()}`;
      // the row exists before the first workflow task runs, so the run can be read at once
      await app.warden.db
        .write(
          `INSERT INTO runbook_runs (workflow_id, runbook, incident_id, severity, status, started_by)
         VALUES ($1, $2, NULLIF($3, ''), $4, 'running', $5) ON CONFLICT (workflow_id) DO NOTHING`,
          [workflowId, name, incidentId, b.severity, b.by],
        )
        .catch((err: unknown) => {
          // the row is a projection: while Postgres refuses writes the run still starts (the
          // db-failover runbook has to) and is found through Temporal until its row exists
          if (!(err instanceof DatabaseReadOnlyError)) throw err;
        });
      try {
        await app.warden.temporal.client.workflow.start(workflowType, {
          workflowId,
          taskQueue: app.warden.config.temporal.taskQueue,
          args: [input],
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError) || !b.request_id) throw err;
        return reply
          .status(200)
          .send({ workflow_id: workflowId, runbook: name, incident_id: incidentId || null, existing: true });
      }
      return reply
        .status(201)
        .header('location', `/admin/api/v1/runbooks/runs/${workflowId}`)
        .send({ workflow_id: workflowId, runbook: name, incident_id: incidentId || null });
    },
  );

  app.get(
    '/runbooks/runs/:id',
    { schema: { params: RunId, response: { 200: StateBody, ...errors } } },
    async (request) => readRun(app, request.params.id),
  );

  const decide =
    (approve: boolean) =>
    async (request: { params: { id: string }; body: { step: string; by: string; note?: string } }) =>
      update(app, request.params.id, approveStepUpdate, {
        step: request.body.step,
        by: request.body.by,
        approve,
        note: request.body.note,
      });
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
    },
    async (request, reply) =>
      reply.status(202).send(await update(app, request.params.id, cancelRunbookUpdate, request.body)),
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
    },
    async (request) => {
      const { runbook } = await runHandle(app, request.params.id);
      if (runbook !== 'abuse-mitigation')
        throw new ApiError(409, 'not_supported', `runbook ${runbook} takes no false positives`);
      return update(app, request.params.id, markFalsePositivesUpdate, request.body);
    },
  );

  app.get(
    '/runbooks/runs/:id/artifacts',
    { schema: { params: RunId, response: { 200: Type.Object({ artifacts: Type.Array(StateBody) }), ...errors } } },
    async (request) => {
      await runHandle(app, request.params.id);
      const { rows } = await app.warden.db.query(
        'SELECT name, content_type, rows, bytes::text AS bytes, sha256, window_start, window_end, created_at FROM runbook_artifacts WHERE workflow_id = $1 ORDER BY id',
        [request.params.id],
      );
      return { artifacts: rows };
    },
  );

  app.get(
    '/runbooks/runs/:id/artifacts/:name',
    {
      schema: {
        params: Type.Object({
          id: RunId.properties.id,
          name: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._-]+$' }),
        }),
      },
    },
    async (request, reply) => {
      const { rows } = await app.warden.db.query<{ id: string; content_type: string; sha256: string }>(
        'SELECT id, content_type, sha256 FROM runbook_artifacts WHERE workflow_id = $1 AND name = $2',
        [request.params.id, request.params.name],
      );
      const artifact = rows[0];
      if (!artifact)
        throw new ApiError(404, 'artifact_not_found', `no artifact ${request.params.name} for ${request.params.id}`);
      const db = app.warden.db;
      async function* body() {
        for (let seq = 0; ; seq++) {
          const chunk = await db.query<{ body: string }>(
            'SELECT body FROM runbook_artifact_chunks WHERE artifact_id = $1 AND seq = $2',
            [artifact!.id, seq],
          );
          if (!chunk.rows[0]) return;
          yield chunk.rows[0].body;
        }
      }
      return reply
        .type(artifact.content_type)
        .header('Cache-Control', 'no-store')
        .header('X-Content-SHA256', artifact.sha256)
        .header('Content-Disposition', `attachment; filename="${request.params.name}"`)
        .send(Readable.from(body()));
    },
  );
};

export default runbooks;
