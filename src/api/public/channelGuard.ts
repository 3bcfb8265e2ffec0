import type { FastifyInstance } from 'fastify';
import { channelEnabled } from '../../delivery/services';
import type { AuthMethod } from '../../shared/auth';
import { ApiError } from '../errors';

const OTHER: Record<AuthMethod, string> = {
  sms_otp: 'sign in with an email link instead',
  magic_link: 'sign in with an SMS code instead',
};

/**
 * Graceful degradation: a switched-off channel (`auth.sms_otp.enabled` /
 * `auth.magic_link.enabled`, or its delivery route disabled) refuses initiate and resend with
 * 503 channel_disabled, the same for every user, before any rate-limit row or workflow.
 */
export async function assertChannelEnabled(app: FastifyInstance, method: AuthMethod): Promise<void> {
  if (await channelEnabled(app.warden, method)) return;
  throw new ApiError(
    503,
    'channel_disabled',
    `${method === 'sms_otp' ? 'SMS codes are' : 'Email links are'} switched off for now; ${OTHER[method]}`,
    { method },
    { 'Retry-After': '60' },
  );
}
