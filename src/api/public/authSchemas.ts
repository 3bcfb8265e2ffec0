/** Request and response schemas shared by the public auth routes: the public API's contract. */
import { Type } from '@sinclair/typebox';
import { ErrorBody } from '../errors';

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
export const ChallengeId = Type.String({ pattern: UUID_PATTERN });

/** hCaptcha's response token: needed only while the abuse runbook's CAPTCHA mode flags the client */
export const CaptchaToken = Type.Optional(Type.String({ minLength: 1, maxLength: 8192 }));

/** Printable text an app round-trips through Warden (its `state`, its `nonce`). */
const AppText = (maxLength: number) =>
  Type.Optional(Type.String({ minLength: 1, maxLength, pattern: '^[\\x21-\\x7e]+$' }));

/**
 * What an app adds to an initiate (docs/apps.md): which app, where a magic link lands, the
 * app's `state` and `nonce`, and its PKCE challenge (S256 only).
 */
export const AppFields = {
  client_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  redirect_uri: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  state: AppText(512),
  nonce: AppText(256),
  code_challenge: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' })),
  code_challenge_method: Type.Optional(Type.Literal('S256')),
};

export const InitiateBody = Type.Object({ user_id: UserId, captcha_token: CaptchaToken, ...AppFields });

/** A server-to-server start: the app's fields, the method, and the end user's address as the app saw it. */
export const ServerStartBody = Type.Object(
  {
    user_id: UserId,
    method: Type.Union([Type.Literal('sms_otp'), Type.Literal('magic_link')]),
    client_ip: Type.Optional(Type.String({ minLength: 2, maxLength: 64, description: "the end user's address" })),
    ...AppFields,
  },
  { additionalProperties: false },
);
export const ResendBody = Type.Object({ challenge_id: ChallengeId, captcha_token: CaptchaToken });

export const Initiated = Type.Object(
  { challenge_id: Type.String(), expires_at: Type.String() },
  { additionalProperties: false },
);
export const Resent = Type.Object(
  { challenge_id: Type.String(), expires_at: Type.String(), sends_remaining: Type.Integer() },
  { additionalProperties: false },
);
/**
 * A verified challenge answers its holder a one-time authorization `code` for the app's backend
 * to exchange (POST /oauth/token), with the app's `state`; never the identity.
 */
export const Verified = Type.Object(
  {
    status: Type.Literal('verified'),
    code: Type.Optional(Type.String()),
    state: Type.Optional(Type.String()),
    expires_in: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  410: ErrorBody,
  415: ErrorBody,
  423: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};
