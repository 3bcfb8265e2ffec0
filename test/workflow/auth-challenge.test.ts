/**
 * The challenge workflow's real lifetimes (OTP 300 s, magic link 900 s) on the time-skipping
 * test server, with the real activities, API and sandbox: no test TTLs, no sleeping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { challengeRow, initiate, post, secretFor, waitForStatus } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';

describe('challenge expiry at the default TTLs (time-skipping server)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ timeSkipping: true });
  });
  afterAll(async () => h?.close());

  it('keeps an OTP valid until 300 s and expires it then; a magic link lives 900 s', async () => {
    const otp = (await initiate(h, 'otp', 'test-user')).json<{ challenge_id: string; expires_at: string }>();
    const link = (await initiate(h, 'magic-link', 'test-user')).json<{ challenge_id: string; expires_at: string }>();
    const started = await h.testEnv!.currentTimeMs();
    expect(Date.parse(otp.expires_at) - started).toBeGreaterThan(295_000);
    expect(Date.parse(link.expires_at) - started).toBeGreaterThan(895_000);
    const code = await secretFor(h, otp.challenge_id);
    await secretFor(h, link.challenge_id);

    await h.testEnv!.sleep(290_000);
    expect((await challengeRow(h, otp.challenge_id))!.status).toBe('open');
    await h.testEnv!.sleep(15_000);
    const expired = await waitForStatus(h, otp.challenge_id, 'expired');
    expect(expired).toMatchObject({ end_reason: 'expired', sealed_secret: null });
    const late = await post(h, '/otp/verify', { challenge_id: otp.challenge_id, otp: code });
    expect(late.statusCode).toBe(410);
    expect((await challengeRow(h, link.challenge_id))!.status).toBe('open');

    await h.testEnv!.sleep(600_000);
    await waitForStatus(h, link.challenge_id, 'expired');
    const result = await h.runtime.temporal.client.workflow.getHandle(`challenge-${link.challenge_id}`).result();
    expect(result).toEqual({ status: 'expired', reason: 'expired', attempts: 0, sends: 1 });
  });
});
