import type { FastifyInstance } from 'fastify';
import type { SandboxContext } from '../context';
import { applyFault, asForm, field, record, sendFailure, type FaultShapes, type ProviderFailure } from '../http';

/** hCaptcha's documented test pair: https://docs.hcaptcha.com/#integration-testing-test-keys */
export const HCAPTCHA_TEST_SECRET = '0x0000000000000000000000000000000000000000';
export const HCAPTCHA_TEST_RESPONSE = '10000000-aaaa-bbbb-cccc-000000000001';

function captchaFailure(status: number, codes: string[]): ProviderFailure {
  return { status, body: { success: false, 'error-codes': codes } };
}

const captchaShapes: FaultShapes = {
  error: (status) => captchaFailure(status, ['internal-error']),
  permanent: () => captchaFailure(200, ['invalid-input-response']),
};

/** Statuspage's page object needs a name; unknown providers get their id capitalised. */
const PAGE_NAMES: Record<string, string> = {
  twilio: 'Twilio',
  plivo: 'Plivo',
  sendgrid: 'SendGrid',
  ses: 'AWS',
  slack: 'Slack',
  hcaptcha: 'hCaptcha',
};

/**
 * Statuspage-style GET /status/:provider/api/v2/status.json (what the outage runbook polls)
 * and hCaptcha's POST /hcaptcha/siteverify.
 */
export async function miscRoutes(app: FastifyInstance, { state }: SandboxContext): Promise<void> {
  app.get<{ Params: { provider: string } }>('/status/:provider/api/v2/status.json', async (request, reply) => {
    const { provider } = request.params;
    const name = PAGE_NAMES[provider];
    if (!name) return reply.code(404).send({ error: 'not_found', message: `no status page for ${provider}` });
    state.recordRequest({
      provider: 'statuspage',
      method: 'GET',
      path: request.url,
      outcome: 'accepted',
      status: 200,
      fault: null,
      idempotency_key: null,
    });
    return {
      page: {
        id: `sandbox-${provider}`,
        name,
        url: `https://status.${provider}.example`,
        time_zone: 'Etc/UTC',
        updated_at: new Date().toISOString(),
      },
      status: state.status(provider),
    };
  });

  app.post('/hcaptcha/siteverify', async (request, reply) => {
    const form = asForm(request.body);
    if (await applyFault(state, 'hcaptcha', request, reply, captchaShapes, null)) return reply;

    const secret = field(form, 'secret');
    const response = field(form, 'response');
    const codes: string[] = [];
    if (!secret) codes.push('missing-input-secret');
    else if (secret !== HCAPTCHA_TEST_SECRET) codes.push('invalid-input-secret');
    if (!response) codes.push('missing-input-response');
    else if (response !== HCAPTCHA_TEST_RESPONSE) codes.push('invalid-input-response');

    record(state, 'hcaptcha', request, codes.length === 0 ? 'accepted' : 'rejected', 200, null);
    if (codes.length > 0) return sendFailure(reply, captchaFailure(200, codes));
    return {
      success: true,
      challenge_ts: new Date().toISOString(),
      hostname: 'dummy-key-pass',
      credit: false,
      'error-codes': [],
    };
  });
}
