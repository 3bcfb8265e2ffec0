/**
 * Number prefixes blocked for SMS pumping (docs/delivery.md#sms-pumping): the blocks in force
 * (`?all=true`: every prefix ever blocked, with its last block), and the lift of one. Admin only:
 * a lift sends SMS to a range of numbers again. A lift is audited
 * (`identity.sms_prefix.lifted`) and takes effect on the next provider call.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { liftPrefixBlock, listPrefixBlocks } from '../../delivery/prefixBlocks';
import { ApiError, ErrorBody } from '../errors';
import { operatorOf } from '../plugins/operatorAuth';

const Count = Type.Union([Type.Integer(), Type.Null()]);
const Text = Type.Union([Type.String(), Type.Null()]);
const Block = Type.Object({
  prefix: Type.String(),
  generation: Type.Integer(),
  reason: Type.String(),
  created_by: Type.String(),
  created_at: Type.String(),
  until: Type.String(),
  lifted_at: Text,
  lifted_by: Text,
  window_seconds: Count,
  messages: Count,
  challenges: Count,
  settled: Count,
  verified: Count,
  incident_id: Text,
  incident_workflow_id: Text,
  active: Type.Boolean(),
});
const PrefixParam = Type.Object({
  prefix: Type.String({ pattern: '^[1-9][0-9]{0,14}$', description: 'digits of the E.164 number after +' }),
});

const smsPrefixes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = { role: 'admin' as const };

  app.get(
    '/delivery/sms/prefix-blocks',
    {
      config: admin,
      schema: {
        querystring: Type.Object({ all: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) }),
        response: { 200: Type.Object({ blocks: Type.Array(Block) }), 400: ErrorBody },
      },
    },
    async (request) => ({ blocks: await listPrefixBlocks(app.warden.db, request.query.all === 'true') }),
  );

  app.delete(
    '/delivery/sms/prefix-blocks/:prefix',
    {
      config: admin,
      schema: {
        params: PrefixParam,
        response: { 200: Type.Object({ block: Block }), 400: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => {
      const { prefix } = request.params;
      const block = await liftPrefixBlock(app.warden, prefix, operatorOf(request).name);
      if (!block) throw new ApiError(404, 'not_found', `no block of +${prefix} is in force`);
      return { block };
    },
  );
};

export default smsPrefixes;
