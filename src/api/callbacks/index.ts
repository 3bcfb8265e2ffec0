/**
 * Delivery status callbacks, on the public app because the providers call them from the
 * internet: Twilio and Plivo status callbacks (form posts, HMAC signatures over the URL we gave
 * them), SendGrid's signed Event Webhook (ECDSA) and SES events through SNS (a secret path
 * token, and the RSA signature when a signing certificate is configured). A forged or unsigned
 * call gets 401 and changes nothing; every accepted report is idempotent.
 */
import type { FastifyPluginAsync } from 'fastify';
import plivo from './plivo';
import sendgrid from './sendgrid';
import ses from './ses';
import twilio from './twilio';

const callbacks: FastifyPluginAsync = async (app) => {
  await app.register(twilio);
  await app.register(plivo);
  await app.register(sendgrid);
  await app.register(ses);
};

export default callbacks;
