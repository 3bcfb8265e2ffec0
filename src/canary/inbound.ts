/**
 * What the inbound webhooks do with a message: an SMS to the canary user's number that carries
 * a code (src/api/callbacks/twilio.ts, plivo.ts), or an email to the canary user's address
 * that carries a magic link to Warden's own confirm page (SendGrid Inbound Parse, SES receipts
 * through SNS: sendgrid.ts, ses.ts), is the canary's message coming back. The code is verified
 * right here through the public API's own verify path; the link is confirmed as the user's
 * browser would, by POSTing its confirm form to the public API. Whether it verified is read
 * from the challenge itself (`verified`), never from what the verify answered. The waiting
 * canary workflow is told only the channel, the outcome and the latency. The code and the link
 * are never logged, stored, signalled or put into an error; every other inbound message is
 * acknowledged and ignored (a provider retries anything but a 2xx).
 *
 * A run the recovery checklist started (`checks`) proves two more things while the webhook
 * holds the secret: a wrong code (the link's token with one character changed) is submitted
 * first and must be refused as invalid, and once the right one verified, the secret is looked
 * for in the histories, logs, audit rows and metrics (incidents/plaintextScan.ts). Only the
 * verdicts travel on: the answer to the wrong one (`401 invalid_otp`) and the names of places.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceError } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { verifyChallenge } from '../api/public/authFlow';
import { ApiError } from '../api/errors';
import { MAGIC_LINK_PATH } from '../auth/messages';
import { scanForPlaintext } from '../incidents/plaintextScan';
import { challengeWorkflowId } from '../shared/auth';
import {
  CANARY_SIGNAL,
  type CanaryChannel,
  type CanaryChecks,
  type CanaryPlaintextScan,
  type CanaryReport,
  type CanaryWrongSecret,
} from '../shared/canary';
import { addressesIn, findMagicLinks, type MailText } from './mail';
import { judgeWrongSecret, tamperedToken, wrongCode } from './verdict';

export interface InboundSms {
  provider: 'twilio' | 'plivo';
  from: string;
  to: string;
  text: string;
}

export interface InboundEmail {
  provider: 'sendgrid' | 'ses';
  /** the envelope recipients (else the To header), as the provider gave them */
  to: string[];
  /** the message's text/plain and text/html bodies */
  texts: MailText[];
}

export type InboundResult = 'ignored' | 'no_run' | CanaryReport['outcome'];

/** Plivo writes numbers without the leading +: compare digits only. */
const digits = (number: string) => number.replace(/\D/g, '');
const CODE = /(?<![0-9])([0-9]{6})(?![0-9])/;
const TRIES = 3;

interface WaitingRun {
  workflow_id: string;
  waited_ms: number;
  challenge_id: string | null;
  /** the recovery checklist's run: a wrong secret first, a plaintext scan after */
  checks: boolean;
  started_at: Date;
}

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
  const { rows } = await db.writer.query<WaitingRun>(
    `SELECT r.workflow_id, (extract(epoch FROM clock_timestamp() - r.started_at) * 1000)::float8 AS waited_ms,
            r.checks, r.started_at,
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
  const challengeId = run.challenge_id;
  const wrong = run.checks ? await timed(() => submitWrongCode(app, request, challengeId, code)) : undefined;
  const outcome = await verifyCode(app, request, challengeId, code);
  const latencyMs = latencySince(run, asked, wrong?.ms ?? 0);
  const checks = wrong && { wrongSecret: wrong.value, plaintext: await scanReceived(app, run, outcome, [code]) };
  return report(app, request, sms.provider, 'sms', run, latencyMs, outcome, checks);
}

/**
 * An email to the canary user's address: the magic link in it, if it points at Warden's own
 * confirm page and belongs to a waiting email run, is confirmed. The link names its challenge,
 * so the run is the one that asked for exactly that challenge.
 */
export async function answerCanaryEmail(
  app: FastifyInstance,
  request: FastifyRequest,
  mail: InboundEmail,
): Promise<InboundResult> {
  const { config, db } = app.warden;
  const canary = config.canary;
  if (!canary) return 'ignored';
  const user = await db.query<{ email: string | null }>('SELECT email FROM users WHERE sub = $1', [canary.user]);
  const email = user.rows[0]?.email?.toLowerCase();
  if (!email || !mail.to.some((to) => addressesIn(to).includes(email))) return 'ignored';
  const links = findMagicLinks(mail.texts, `${config.publicBaseUrl}${MAGIC_LINK_PATH}`);
  if (links.length === 0) return 'ignored';

  const asked = Date.now();
  for (const link of links) {
    // the run started before the challenge was made; its id is written once initiate answers
    const { rows } = await db.writer.query<WaitingRun>(
      `SELECT r.workflow_id, (extract(epoch FROM clock_timestamp() - r.started_at) * 1000)::float8 AS waited_ms,
              c.id AS challenge_id, r.checks, r.started_at
         FROM auth_challenges c
         JOIN canary_runs r ON r.user_id = c.user_id
        WHERE c.id = $1 AND c.user_id = $2 AND c.method = 'magic_link'
          AND r.channel = 'email' AND r.status = 'waiting'
          AND (r.challenge_id = c.id OR (r.challenge_id IS NULL AND c.created_at >= r.started_at))
        ORDER BY r.started_at DESC LIMIT 1`,
      [link.challenge, canary.user],
    );
    const run = rows[0];
    if (!run?.challenge_id) continue;
    const challengeId = run.challenge_id;
    const wrong = run.checks ? await timed(() => submitTamperedLink(app, challengeId, link.token)) : undefined;
    const outcome = await confirmLink(app, challengeId, link.token);
    const latencyMs = latencySince(run, asked, wrong?.ms ?? 0);
    const checks = wrong && {
      wrongSecret: wrong.value,
      // the tampered token is one character from the token: looked for too
      plaintext: await scanReceived(app, run, outcome, [link.token, tamperedToken(link.token)]),
    };
    return report(app, request, mail.provider, 'email', run, latencyMs, outcome, checks);
  }
  return 'no_run';
}

/**
 * The run's latency when its secret verified: the database's clock started the run, so its age
 * when read, plus the time the verify took here, less the checklist's wrong attempt.
 */
function latencySince(run: WaitingRun, asked: number, skippedMs: number): number {
  return Math.max(0, Math.round(run.waited_ms + Date.now() - asked - skippedMs));
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - started };
}

/** Tells the run's workflow the outcome, the latency and a checklist run's verdicts. */
async function report(
  app: FastifyInstance,
  request: FastifyRequest,
  provider: InboundSms['provider'] | InboundEmail['provider'],
  channel: CanaryChannel,
  run: WaitingRun,
  latencyMs: number,
  outcome: CanaryReport['outcome'],
  checks: CanaryChecks | undefined,
): Promise<CanaryReport['outcome']> {
  const message: CanaryReport = { channel, outcome, latencyMs, ...(checks ? { checks } : {}) };
  try {
    await app.warden.temporal.client.workflow.getHandle(run.workflow_id).signal(CANARY_SIGNAL, message);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    // the run timed out and ended meanwhile: its outcome is recorded already
    request.log.warn({ provider, channel, outcome }, 'canary message came back after its run ended');
  }
  return outcome;
}

async function challengeStatus(app: FastifyInstance, challengeId: string): Promise<string | undefined> {
  const { rows } = await app.warden.db.writer.query<{ status: string }>(
    'SELECT status FROM auth_challenges WHERE id = $1',
    [challengeId],
  );
  return rows[0]?.status;
}

/** The verdict is the challenge's own status: whatever the verify answered, only `verified` is a sign-in. */
async function challengeOutcome(app: FastifyInstance, challengeId: string): Promise<CanaryReport['outcome']> {
  return (await challengeStatus(app, challengeId)) === 'verified' ? 'success' : 'rejected';
}

/**
 * The checklist's wrong code, through the same verify path as the right one, before it. A
 * verify path that cannot answer is tried again as for the right code; the verdict is judged
 * from the answer and the challenge's status afterwards (verdict.ts).
 */
async function submitWrongCode(
  app: FastifyInstance,
  request: FastifyRequest,
  challengeId: string,
  code: string,
): Promise<CanaryWrongSecret> {
  let answer: { status: number; error?: string };
  for (let attempt = 1; ; attempt++) {
    try {
      await verifyChallenge(app, request, 'sms_otp', challengeId, wrongCode(code));
      answer = { status: 200, error: 'verified' };
      break;
    } catch (err) {
      const retry =
        (err instanceof ServiceError || (err instanceof ApiError && err.statusCode === 503)) && attempt < TRIES;
      if (retry) {
        await sleep(250 * attempt);
        continue;
      }
      answer =
        err instanceof ApiError ? { status: err.statusCode, error: err.code } : { status: 503, error: 'unavailable' };
      break;
    }
  }
  return judgeWrongSecret('sms', answer, await challengeStatus(app, challengeId));
}

/**
 * The checklist's tampered link: its token with one character changed, POSTed as JSON to the
 * confirm URL (a JSON answer names the refusal: 401 `invalid_token`), before the right link.
 */
async function submitTamperedLink(
  app: FastifyInstance,
  challengeId: string,
  token: string,
): Promise<CanaryWrongSecret> {
  const { config } = app.warden;
  let answer: { status: number; error?: string } = { status: 503, error: 'unavailable' };
  for (let attempt = 1; attempt <= TRIES; attempt++) {
    try {
      const res = await fetch(`${config.publicBaseUrl}${MAGIC_LINK_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'warden-canary' },
        body: JSON.stringify({ challenge: challengeId, token: tamperedToken(token) }),
        redirect: 'manual',
        signal: AbortSignal.timeout(config.providers.timeoutMs),
      });
      const body = (await res.json().catch(() => ({}))) as { error?: unknown; status?: unknown };
      const error =
        typeof body.error === 'string' ? body.error : typeof body.status === 'string' ? body.status : undefined;
      answer = { status: res.status, error };
      if (res.status < 500) break;
    } catch {
      // unreachable or timed out: tried again, the challenge's status tells what happened
    }
    if (attempt < TRIES) await sleep(250 * attempt);
  }
  return judgeWrongSecret('email', answer, await challengeStatus(app, challengeId));
}

/**
 * The checklist's plaintext scan, with the secret the webhook holds: only place names and
 * counts come out of it. A run whose secret did not verify is scanned without waiting for it to.
 */
async function scanReceived(
  app: FastifyInstance,
  run: WaitingRun,
  outcome: CanaryReport['outcome'],
  secrets: string[],
): Promise<CanaryPlaintextScan> {
  const challengeId = run.challenge_id!;
  try {
    const result = await scanForPlaintext(app.warden, {
      secrets,
      challengeIds: [challengeId],
      workflowIds: [challengeWorkflowId(challengeId), run.workflow_id],
      canaryWorkflowIds: [run.workflow_id],
      since: run.started_at.toISOString(),
      awaitVerified: outcome === 'success',
    });
    return {
      found: result.found,
      scanned: result.scanned,
      ...(result.problems.length ? { problem: result.problems.join('; ').slice(0, 500) } : {}),
    };
  } catch (err) {
    return { found: [], scanned: [], problem: `the scan failed: ${(err as Error).message.slice(0, 200)}` };
  }
}

const unavailable = () =>
  new ApiError(503, 'unavailable', 'the canary message could not be checked now', {}, { 'Retry-After': '5' });

/**
 * The public verify path. A message that comes back at once can meet its challenge workflow
 * while another event (the send's own receipt) lands; Temporal then fails the update's call
 * (its workflow task failed), so it is tried again (the update may have been applied after all:
 * the challenge's status tells). A refusal (wrong, expired, already used, rate limited) is the
 * canary's verdict; a verify path that stays unavailable is a 503 for the provider, never a 500.
 */
async function verifyCode(
  app: FastifyInstance,
  request: FastifyRequest,
  challengeId: string,
  code: string,
): Promise<CanaryReport['outcome']> {
  for (let attempt = 1; ; attempt++) {
    try {
      await verifyChallenge(app, request, 'sms_otp', challengeId, code);
      return challengeOutcome(app, challengeId);
    } catch (err) {
      if (err instanceof ApiError && err.statusCode !== 503) return challengeOutcome(app, challengeId);
      if ((err instanceof ServiceError || err instanceof ApiError) && attempt < TRIES) {
        await sleep(250 * attempt);
        continue;
      }
      if ((await challengeOutcome(app, challengeId)) === 'success') return 'success';
      if (err instanceof ApiError) throw err;
      throw unavailable();
    }
  }
}

/**
 * The magic link, used as the user's browser uses it: the confirm page's form, POSTed to the
 * public API (form-encoded challenge and token, redirects not followed). It verified when the
 * challenge is `verified` or the confirm answered 2xx/3xx, whatever its body says. A 4xx is
 * the canary's verdict; an API that stays unreachable or answers 5xx is a 503 for the provider.
 */
async function confirmLink(app: FastifyInstance, challengeId: string, token: string): Promise<CanaryReport['outcome']> {
  const { config } = app.warden;
  for (let attempt = 1; ; attempt++) {
    let status: number | undefined;
    try {
      const res = await fetch(`${config.publicBaseUrl}${MAGIC_LINK_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'warden-canary' },
        body: new URLSearchParams({ challenge: challengeId, token }).toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(config.providers.timeoutMs),
      });
      await res.arrayBuffer();
      status = res.status;
    } catch {
      // unreachable or timed out: the confirm may have gone through, the challenge tells
    }
    if (status !== undefined && status < 400) return 'success';
    if (status !== undefined && status < 500) return challengeOutcome(app, challengeId);
    if ((await challengeOutcome(app, challengeId)) === 'success') return 'success';
    if (attempt >= TRIES) throw unavailable();
    await sleep(250 * attempt);
  }
}
