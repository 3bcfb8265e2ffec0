/**
 * The gated runbook start on the admin API: an incident opened from Slack at or above
 * SLACK_APPROVAL_SEVERITY by someone who is not a responder starts its runbook only once a
 * responder approves (or never, once rejected). The same decision as the Approve / Reject
 * buttons in the incident's Slack thread, whose message is rewritten either way. The decider
 * is the calling operator, never a name in the body.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { decideRunbookStartUpdate, LIMITS } from '../../shared/incidents';
import { ApiError, ErrorBody } from '../errors';
import { sendUpdate } from '../integrations/incidentOps';
import { operatorOf } from '../plugins/operatorAuth';

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9-]+$' }) });
const Body = Type.Object(
  { note: Type.Optional(Type.String({ minLength: 1, maxLength: LIMITS.text })) },
  { additionalProperties: false },
);
const StateBody = Type.Object({}, { additionalProperties: true });
const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody };

const incidentGate: FastifyPluginAsyncTypebox = async (app) => {
  for (const [path, approve] of [
    ['approve', true],
    ['reject', false],
  ] as const) {
    app.post(
      `/incidents/:id/runbook-gate/${path}`,
      {
        config: { role: 'responder' },
        schema: { params: Id, body: Type.Optional(Body), response: { 200: StateBody, ...errors } },
      },
      async (request) => {
        const operator = operatorOf(request);
        const outcome = await sendUpdate(app, request.params.id, decideRunbookStartUpdate, {
          by: operator.name,
          role: operator.role,
          approve,
          ...(request.body?.note ? { note: request.body.note } : {}),
        });
        if (!outcome.done) throw new ApiError(503, 'unavailable', 'the incident did not answer in time; GET it to see');
        return outcome.state;
      },
    );
  }
};

export default incidentGate;
