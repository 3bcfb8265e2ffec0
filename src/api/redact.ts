/** Query parameters that carry a secret (magic-link token) or a credential. */
const SECRET_PARAMS = /([?&](?:token|otp|code|secret|signature|key)=)[^&#]*/gi;

/** The URL as it may be logged: secret query values replaced. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[REDACTED]');
}
