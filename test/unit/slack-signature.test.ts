import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseIncidentCommand } from '../../src/api/integrations/slack';
import { verifySlackRequest } from '../../src/incidents/slackSignature';

describe('Slack request signatures (v0)', () => {
  // Slack's documented example: https://api.slack.com/authentication/verifying-requests-from-slack
  const secret = '8f742231b10e8888abcd99yyyzzz85a5';
  const body =
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
  const timestamp = '1531420618';
  const signature = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';
  const at = (seconds: number) => ({
    secret,
    timestamp,
    signature,
    rawBody: body,
    nowSeconds: Number(timestamp) + seconds,
  });

  it("accepts Slack's own example within the window", () => {
    expect(verifySlackRequest(at(0))).toEqual({ ok: true });
    expect(verifySlackRequest(at(299))).toEqual({ ok: true });
    expect(verifySlackRequest(at(-299))).toEqual({ ok: true });
  });

  it('refuses a changed body, another secret, a truncated signature and a stale or missing timestamp', () => {
    expect(verifySlackRequest({ ...at(0), rawBody: body.replace('roadrunner', 'coyote') })).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
    expect(verifySlackRequest({ ...at(0), secret: 'x'.repeat(32) })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifySlackRequest({ ...at(0), signature: signature.slice(0, 20) })).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
    expect(verifySlackRequest(at(301))).toEqual({ ok: false, reason: 'stale_timestamp' });
    expect(verifySlackRequest({ ...at(0), timestamp: undefined })).toEqual({ ok: false, reason: 'missing_headers' });
    expect(verifySlackRequest({ ...at(0), timestamp: '12ab' })).toEqual({ ok: false, reason: 'missing_headers' });
    // a signature for another timestamp does not carry over
    const other = `v0=${createHmac('sha256', secret)
      .update(`v0:${Number(timestamp) + 1}:${body}`)
      .digest('hex')}`;
    expect(verifySlackRequest({ ...at(0), signature: other })).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('parses /incident <p0..p3> <type> <title>', () => {
    expect(parseIncidentCommand('P0 compromised_token  OTPs in   logs')).toEqual({
      severity: 'P0',
      type: 'compromised_token',
      title: 'OTPs in logs',
    });
    expect(parseIncidentCommand('p4 other x')).toHaveProperty('error');
    expect(parseIncidentCommand('p1 fire x')).toHaveProperty('error');
    expect(parseIncidentCommand('p1 other')).toHaveProperty('error');
    expect(parseIncidentCommand(`p1 other ${'x'.repeat(201)}`)).toHaveProperty('error');
  });
});
