import { httpError, networkError, ProviderTransientError } from './errors';
import type { ExternalService, ProviderStatus, StatusIndicator } from './types';

// Statuspage and hCaptcha publish no Node SDK; these are the only hand-written HTTP calls.

const INDICATORS: readonly StatusIndicator[] = ['none', 'minor', 'major', 'critical'];

async function fetchJson(
  service: ExternalService,
  url: string,
  timeoutMs: number,
  init: RequestInit = {},
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw networkError(service, err);
  }
  // Read the body under the same deadline: a stalled body is as bad as no answer.
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    throw networkError(service, err);
  }
  if (!response.ok)
    throw httpError({ provider: service, status: response.status, reason: response.statusText || 'request failed' });
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ProviderTransientError({ provider: service, status: response.status, reason: 'answer is not JSON' });
  }
}

/** GET a Statuspage v2 status.json and reduce it to indicator + description. */
export async function fetchStatusPage(url: string, timeoutMs: number): Promise<ProviderStatus> {
  const body = await fetchJson('statuspage', url, timeoutMs, { headers: { Accept: 'application/json' } });
  const status = (body as { status?: { indicator?: unknown; description?: unknown } } | null)?.status;
  const indicator = INDICATORS.find((i) => i === status?.indicator);
  if (!indicator)
    throw new ProviderTransientError({ provider: 'statuspage', reason: 'answer has no known status.indicator' });
  return { indicator, description: typeof status?.description === 'string' ? status.description : '' };
}

export interface CaptchaResult {
  success: boolean;
  errorCodes: string[];
}

/** POST hCaptcha's siteverify (form-encoded secret, response, remoteip, sitekey). */
export async function verifyHcaptcha(
  url: string,
  timeoutMs: number,
  keys: { secret: string; siteKey: string },
  responseToken: string,
  remoteIp?: string,
): Promise<CaptchaResult> {
  const form = new URLSearchParams({ secret: keys.secret, response: responseToken, sitekey: keys.siteKey });
  if (remoteIp) form.set('remoteip', remoteIp);
  const body = await fetchJson('hcaptcha', url, timeoutMs, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  const answer = (body ?? {}) as { success?: unknown; 'error-codes'?: unknown };
  const codes = Array.isArray(answer['error-codes'])
    ? answer['error-codes'].filter((c): c is string => typeof c === 'string')
    : [];
  return { success: answer.success === true, errorCodes: codes };
}
