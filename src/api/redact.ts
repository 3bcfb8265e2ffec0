/** Query parameters that carry a secret (magic-link token) or a credential. */
const SECRET_PARAMS = /([?&](?:token|otp|code|secret|signature|key)=)[^&#]*/gi;

/** Path segments that are secrets: the SES subscriptions' token, the SendGrid Inbound Parse token. */
const SECRET_SEGMENTS = /(\/callbacks\/v1\/(?:ses|sendgrid\/inbound)\/)[^/?#]*/gi;

/** The URL as it may be logged: secret query values and path segments replaced. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[REDACTED]').replace(SECRET_SEGMENTS, '$1[REDACTED]');
}
