/** Query parameters that carry a secret (magic-link token) or a credential. */
const SECRET_PARAMS = /([?&](?:token|otp|code|secret|signature|key)=)[^&#]*/gi;

/** Path segments that are secrets: the SES subscriptions' token, the SendGrid Inbound Parse token. */
const SECRET_SEGMENTS = /(\/callbacks\/v1\/(?:ses|sendgrid\/inbound)\/)[^/?#]*/gi;

/** Query parameters that name a person: the users API's search by phone or email. */
const PERSONAL_PARAMS = /([?&](?:phone|email)=)[^&#]*/gi;

/**
 * A user's id in an admin path (`/users/<sub>`, `/users/<sub>/erasure`...): log lines name users
 * by pseudonym only (docs/privacy.md), and the route pattern beside the URL says which it was.
 * The users API's own words after `/users/` are not ids.
 */
const USER_SEGMENT =
  /(\/admin\/api\/v1\/users\/)(?!(?:revoke-challenges|force-password-reset|clear-rate-limits|import)(?:[/?#]|$))[^/?#]+/gi;

/** The URL as it may be logged: secret query values and path segments, and users' ids and contacts, replaced. */
export function redactUrl(url: string): string {
  return url
    .replace(SECRET_PARAMS, '$1[REDACTED]')
    .replace(SECRET_SEGMENTS, '$1[REDACTED]')
    .replace(PERSONAL_PARAMS, '$1[REDACTED]')
    .replace(USER_SEGMENT, '$1[REDACTED]');
}
