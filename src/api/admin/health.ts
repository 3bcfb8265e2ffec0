import type { FastifyPluginAsync } from 'fastify';

const CHECK_TIMEOUT_MS = 2000;

async function timed(check: () => Promise<unknown>): Promise<'ok' | string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch (err) {
    return err instanceof Error && err.message === 'timed out' ? 'timeout' : 'unavailable';
  } finally {
    clearTimeout(timer);
  }
}

const ProbeResponse = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string' },
    checks: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

/** /livez: the process answers. /readyz: Postgres and Temporal answer too. */
const health: FastifyPluginAsync = async (app) => {
  app.get('/livez', { schema: { response: { 200: ProbeResponse } } }, async () => ({ status: 'live' }));

  app.get('/readyz', { schema: { response: { 200: ProbeResponse, 503: ProbeResponse } } }, async (_request, reply) => {
    const { db, temporal } = app.warden;
    const [database, temporalCheck] = await Promise.all([
      timed(() => db.ping()),
      timed(() => temporal.connection.workflowService.getSystemInfo({})),
    ]);
    const checks = { database, temporal: temporalCheck, read_only: db.readOnly ? 'yes' : 'no' };
    const ready = database === 'ok' && temporalCheck === 'ok';
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
};

export default health;
