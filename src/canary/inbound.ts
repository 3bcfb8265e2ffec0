/**
 * What an inbound SMS webhook does with a message (src/api/callbacks/twilio.ts, plivo.ts): a
 * message to the canary user's number that carries a code is the canary's message coming back.
 * The code is verified right here, through the public API's own verify path, and the waiting
 * canary workflow is told only the outcome and the latency. The code itself is never logged,
 * stored, signalled or put into an error; every other inbound message is acknowledged and
 * ignored (a provider retries anything but a 2xx).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceError } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { verifyChallenge } from '../api/public/authFlow';
import { ApiError } from '../api/errors';
import { CANARY_SIGNAL, type CanaryReport } from '../shared/canary';

export interface InboundSms {
  provider: 'twilio' | 'plivo';
  from: string;
  to: string;
  text: string;
}

export type InboundResult = 'ignored' | 'no_run' | CanaryReport['outcome'];

/** Plivo writes numbers without the leading +: compare digits only. */
const digits = (number: string) => number.replace(/\D/g, '');
const CODE = /(?<![0-9])([0-9]{6})(?![0-9])/;

export async function answerCanaryInbound(
  app: FastifyInstance,
  request: FastifyRequest,
  sms: InboundSms,
): Promise<InboundResult> {
  const { config, db } = app.warden;
  const canary = config.canary;
  if (!canary) return 'ignored';
  const user = await db.query<{ phone: string | null }>('SELECT phone FROM users WHERE sub = $1', [canary.user]);
  const phone = user.rows[0]?.phone;
  if (!phone || digits(phone) !== digits(sms.to)) return 'ignored';
  const code = CODE.exec(sms.text)?.[1];
  if (!code) return 'ignored';

  // the newest waiting run; its challenge id is written once initiate answers, which may be
  // a moment after the message went out: then the canary user's newest open code challenge
  const asked = Date.now();
  const { rows } = await db.writer.query<{
    workflow_id: string;
    waited_ms: number;
    challenge_id: string | null;
  }>(
    `SELECT r.workflow_id, (extract(epoch FROM clock_timestamp() - r.started_at) * 1000)::float8 AS waited_ms,
            coalesce(r.challenge_id, (SELECT c.id FROM auth_challenges c
                                       WHERE c.user_id = r.user_id AND c.method = 'sms_otp'
                                         AND c.status = 'open' AND c.created_at >= r.started_at
                                       ORDER BY c.created_at DESC LIMIT 1)) AS challenge_id
       FROM canary_runs r
      WHERE r.channel = 'sms' AND r.status = 'waiting'
      ORDER BY r.started_at DESC LIMIT 1`,
  );
  const run = rows[0];
  if (!run?.challenge_id) return 'no_run';

  const outcome = await verifyCode(app, request, run.challenge_id, code);
  // the database's clock started the run: its age then, plus the time the verify took here
  const latencyMs = Math.max(0, Math.round(run.waited_ms + Date.now() - asked));
  const report: CanaryReport = { outcome, latencyMs };
  try {
    await app.warden.temporal.client.workflow.getHandle(run.workflow_id).signal(CANARY_SIGNAL, report);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    // the run timed out and ended meanwhile: its outcome is recorded already
    request.log.warn({ provider: sms.provider, outcome }, 'canary message came back after its run ended');
  }
  return outcome;
}

/**
 * The public verify path. A message that comes back at once can meet its challenge workflow
 * while another event (the send's own receipt) lands; Temporal then fails the update's call
 * (its workflow task failed), so it is tried again; the update may have been applied after
 * all, and then the second try finds the challenge used by the first. A refusal (wrong, expired,
 * already used, rate limited) is the canary's verdict; a verify path that stays unavailable
 * is a 503 for the provider, never a 500.
 */
async function verifyCode(
  app: FastifyInstance,
  request: FastifyRequest,
  challengeId: string,
  code: string,
): Promise<CanaryReport['outcome']> {
  let unsure = false;
  for (let attempt = 1; ; attempt++) {
    try {
      await verifyChallenge(app, request, 'sms_otp', challengeId, code);
      return 'success';
    } catch (err) {
      // only the canary's phone knows this code: used already means our unanswered try went through
      if (unsure && err instanceof ApiError && err.code === 'already_used') return 'success';
      if (err instanceof ApiError && err.statusCode !== 503) return 'rejected';
      if ((err instanceof ServiceError || err instanceof ApiError) && attempt < 3) {
        unsure = true;
        await sleep(250 * attempt);
        continue;
      }
      if (err instanceof ApiError) throw err;
      throw new ApiError(503, 'unavailable', 'the code could not be checked now', {}, { 'Retry-After': '5' });
    }
  }
}
