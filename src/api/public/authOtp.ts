import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { OTP_PATTERN } from '../../auth/crypto';
import { browserBinding, jsonOnly } from './appBinding';
import { initiateChallenge, resendChallenge, verifyChallenge } from './authFlow';
import { verifiedAnswer } from './release';
import { captchaGuard } from './authCaptcha';
import { blocklistGuard } from './authGuards';
import { trustThisDevice } from './deviceTrust';
import { ChallengeId, errorResponses, Initiated, InitiateBody, Resent, ResendBody, Verified } from './authSchemas';

const VerifyBody = Type.Object({
  challenge_id: ChallengeId,
  otp: Type.String({ pattern: OTP_PATTERN.source }),
  captcha_token: Type.Optional(Type.String({ minLength: 1, maxLength: 8192 })),
});

/** SMS one-time passcodes: initiate, verify, resend. */
const otpRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const base = '/browser/api/v1/identity/auth/otp';
  // the abuse runbook's CAPTCHA mode (a no-op while it is off)
  app.addHook('preHandler', captchaGuard(app, 'sms_otp'));
  // JSON only: another site's HTML form cannot post here
  app.addHook('preValidation', jsonOnly);

  app.post(
    `${base}/initiate`,
    {
      config: { admission: { action: 'initiate', method: 'sms_otp' } },
      onRequest: blocklistGuard(app, 'initiate', 'sms_otp'),
      schema: { body: InitiateBody, response: { 202: Initiated, ...errorResponses } },
    },
    async (request, reply) => {
      const { binding } = await browserBinding(app, request, reply, 'sms_otp', request.body);
      const body = await initiateChallenge(app, request, 'sms_otp', request.body.user_id, binding);
      return reply.status(202).send(body);
    },
  );

  app.post(
    `${base}/verify`,
    {
      config: { admission: { action: 'verify', method: 'sms_otp' } },
      onRequest: blocklistGuard(app, 'verify', 'sms_otp'),
      schema: { body: VerifyBody, response: { 200: Verified, ...errorResponses } },
    },
    async (request, reply) => {
      const challengeId = request.body.challenge_id.toLowerCase();
      const verified = await verifyChallenge(app, request, 'sms_otp', challengeId, request.body.otp);
      // this browser has its own budgets for the account from now on (src/auth/trustedDevices.ts)
      await trustThisDevice(app, request, reply, verified.userId);
      reply.header('Cache-Control', 'no-store');
      return verifiedAnswer(app, request, challengeId);
    },
  );

  app.post(
    `${base}/resend`,
    {
      onRequest: blocklistGuard(app, 'resend', 'sms_otp'),
      schema: { body: ResendBody, response: { 202: Resent, ...errorResponses } },
    },
    async (request, reply) => {
      const body = await resendChallenge(app, request, 'sms_otp', request.body.challenge_id.toLowerCase());
      return reply.status(202).send(body);
    },
  );
};

export default otpRoutes;
