/** Request and response schemas shared by the public auth routes: the public API's contract. */
import { Type } from '@sinclair/typebox';
import { ErrorBody } from '../errors';

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
export const ChallengeId = Type.String({ pattern: UUID_PATTERN });

/** hCaptcha's response token: needed only while the abuse runbook's CAPTCHA mode flags the client */
export const CaptchaToken = Type.Optional(Type.String({ minLength: 1, maxLength: 8192 }));

export const InitiateBody = Type.Object({ user_id: UserId, captcha_token: CaptchaToken });
export const ResendBody = Type.Object({ challenge_id: ChallengeId, captcha_token: CaptchaToken });

export const Initiated = Type.Object(
  { challenge_id: Type.String(), expires_at: Type.String() },
  { additionalProperties: false },
);
export const Resent = Type.Object(
  { challenge_id: Type.String(), expires_at: Type.String(), sends_remaining: Type.Integer() },
  { additionalProperties: false },
);
export const Verified = Type.Object(
  { status: Type.Literal('verified'), user_id: Type.String() },
  { additionalProperties: false },
);

export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  410: ErrorBody,
  423: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};
