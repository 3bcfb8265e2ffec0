/**
 * Every Slack request is checked before it is read: the signing secret's v0 signature over
 * the raw body, a timestamp within five minutes, and a signature never seen before. Without a
 * signing secret or a workspace (SLACK_TEAM_ID) the endpoints are not configured (503); the
 * workspace and the sender's role are checked per action (slackAccess.ts). Seen
 * signatures live in Postgres (not in memory) so that every API replica refuses a replay,
 * for the window in which the timestamp check would still accept it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signatureLedger, verifySlackRequest } from '../../incidents/slackSignature';
import { ApiError } from '../errors';

declare module 'fastify' {
  interface FastifyRequest {
    slackRawBody?: string;
  }
}

export function slackVerifier(app: FastifyInstance) {
  const { db, metrics, config } = app.warden;
  const remember = signatureLedger(db);

  return async function verify(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const endpoint = request.routeOptions.url ?? 'slack';
    const refuse = (status: number, code: string, message: string) => {
      metrics.slackRequests.inc({ endpoint, outcome: code });
      return new ApiError(status, code, message);
    };
    const secret = config.providers.slack.signingSecret;
    if (!secret) throw refuse(503, 'not_configured', 'SLACK_SIGNING_SECRET is not set');
    if (!config.providers.slack.teamId) throw refuse(503, 'not_configured', 'SLACK_TEAM_ID is not set');
    const timestamp = request.headers['x-slack-request-timestamp'];
    const signature = request.headers['x-slack-signature'];
    const verdict = verifySlackRequest({
      secret,
      timestamp: typeof timestamp === 'string' ? timestamp : undefined,
      signature: typeof signature === 'string' ? signature : undefined,
      rawBody: request.slackRawBody ?? '',
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    if (!verdict.ok) {
      const text = {
        missing_headers: 'missing or malformed Slack signature headers',
        stale_timestamp: 'request timestamp outside the 5-minute window',
        bad_signature: 'signature does not match',
      };
      throw refuse(
        401,
        verdict.reason === 'bad_signature'
          ? 'invalid_signature'
          : verdict.reason === 'stale_timestamp'
            ? 'stale_request'
            : 'invalid_signature',
        text[verdict.reason],
      );
    }
    // Slack always posts a form; any other body was not what the signature covered (the raw
    // form is all it is checked against), and the handlers read only a parsed form
    if (request.slackRawBody === undefined)
      throw refuse(415, 'unsupported_media_type', 'Slack requests are application/x-www-form-urlencoded');
    if (!(await remember(signature as string)))
      throw refuse(401, 'replayed_request', 'this request was already received');
    metrics.slackRequests.inc({ endpoint, outcome: 'accepted' });
  };
}
