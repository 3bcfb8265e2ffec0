/**
 * The public app's refusal audit (src/auth/refusals.ts): decorated as `app.refusals`, its
 * counts flushed every WARDEN_REFUSAL_AUDIT_FLUSH_MS and once more when the app closes (after
 * its last request has answered), so a graceful close loses no count.
 */
import fp from 'fastify-plugin';
import { RefusalAudit } from '../../auth/refusals';

declare module 'fastify' {
  interface FastifyInstance {
    /** refused requests into the audit trail, one row per client, action, reason and window */
    refusals: RefusalAudit;
  }
}

/** windows one process keeps in memory before it forgets those already written */
const MAX_WINDOWS = 10_000;

export default fp(
  async (app) => {
    const { db, logger, metrics, config } = app.warden;
    const auditLog = logger.child({ component: 'audit' });
    const refusals = new RefusalAudit(
      {
        db,
        logger: auditLog,
        stats: {
          counted: (event) => metrics.auditRefusals.inc({ event }),
          opened: (event) => metrics.auditRefusalRows.inc({ event }),
        },
      },
      { windowSeconds: config.overload.refusalAudit.windowSeconds, maxWindows: MAX_WINDOWS },
    );
    app.decorate('refusals', refusals);

    const timer = setInterval(() => {
      refusals
        .flush()
        .catch((err: unknown) =>
          auditLog.warn({ err: (err as Error).message, pending: refusals.pending }, 'refusal counts not flushed yet'),
        );
    }, config.overload.refusalAudit.flushMs);
    timer.unref();
    app.addHook('onClose', async () => {
      clearInterval(timer);
      try {
        await refusals.flush();
      } catch (err) {
        auditLog.error(
          { err: (err as Error).message, lost: refusals.pending },
          'refusal counts could not be written at close',
        );
      }
    });
  },
  { name: 'warden-refusals', dependencies: ['warden-runtime'] },
);
