/**
 * Challenge histories recorded from the workflow code, replayed with today's code: a change to
 * the challenge workflow that alters its commands fails here, as it would fail the challenges in
 * flight during a deploy with a nondeterminism error.
 *
 * `patched()` is only for workflows that have been released. Until Warden's first release no
 * challenge history exists outside tests, so such a change re-records the paths from the new
 * code and deletes the old recordings. After a release, the released version's recordings stay
 * and must keep replaying, behind `patched()`, next to a recording of the new code.
 *
 * test/fixtures/challenge-histories/<label>.json holds one recording: every path a challenge
 * can take, and the throwaway payload key its payloads were encrypted with, with the test users'
 * own payload keys (src/privacy/subjectKeys.ts; no secret is ever in a payload). Record the
 * current code's paths:
 * `WARDEN_RECORD_HISTORIES=<label> npx vitest run test/workflow/challenge-replay.test.ts`.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../../src/config';
import { StaticSubjectKeys } from '../../src/privacy/subjectKeys';
import { createDataConverter } from '../../src/temporal/client';
import { initiate, post, putSettings, secretFor, waitForStatus } from '../helpers/authClient';
import { clearFaults, deliveryOutcome, raiseRateLimits, setFault } from '../helpers/delivery';
import { startHarness, type Harness } from '../helpers/harness';

const FIXTURES = path.resolve(__dirname, '../fixtures/challenge-histories');
const LINK_PATH = '/browser/api/v1/identity/auth/magic-link/verify';
const RECORD = process.env.WARDEN_RECORD_HISTORIES;

interface Recording {
  label: string;
  recordedAt: string;
  commit: string;
  payloadKeys: string;
  /** the per-user payload keys the histories name (key id -> base64); absent in older recordings */
  subjectKeys?: Record<string, string>;
  /** each history as the binary protobuf encoding of temporal.api.history.v1.History, base64 */
  histories: Array<{ path: string; workflowId: string; history: string }>;
}

function recordings(): Recording[] {
  return readdirSync(FIXTURES)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as Recording);
}

const { History } = temporal.api.history.v1;

/** The data converter a recording's payloads were written with, from the keys it carries. */
function converterOf(recording: Recording) {
  const subjectKeys = recording.subjectKeys
    ? new StaticSubjectKeys(
        new Map(Object.entries(recording.subjectKeys).map(([id, key]) => [id, Buffer.from(key, 'base64')])),
      )
    : undefined;
  return createDataConverter({ keys: { payloadKeys: recording.payloadKeys } } as Config, subjectKeys);
}
const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

describe('challenge workflow replay against recorded histories', () => {
  it('replays every recorded challenge path with the current workflow code', async () => {
    const all = recordings();
    expect(all.length).toBeGreaterThanOrEqual(1);
    for (const recording of all) {
      expect(recording.histories.length).toBeGreaterThanOrEqual(8);
      const dataConverter = converterOf(recording);
      for (const { path: scenario, workflowId, history } of recording.histories) {
        await expect(
          Worker.runReplayHistory(
            {
              workflowBundle: { codePath: inject('workflowBundlePath') },
              dataConverter,
              replayName: `replay-${recording.label}-${scenario}`,
            },
            History.decode(Buffer.from(history, 'base64')),
            workflowId,
          ),
          `${recording.label}: ${scenario}`,
        ).resolves.toBeUndefined();
      }
    }
  });

  it('tells a history that does not match the code apart (the replay can fail)', async () => {
    const [recording] = recordings();
    const { workflowId, history } = recording!.histories.find((h) => h.path === 'otp-verified')!;
    const parsed = History.decode(Buffer.from(history, 'base64'));
    // the first activity-ish command is dropped: the code schedules something history lacks
    const events = parsed.events!.filter(
      (e) => !e.markerRecordedEventAttributes || e.markerRecordedEventAttributes.markerName !== 'core_local_activity',
    );
    const dataConverter = converterOf(recording!);
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: { codePath: inject('workflowBundlePath') }, dataConverter, replayName: 'replay-broken' },
        { events },
        workflowId,
      ),
    ).rejects.toThrow();
  });
});

/** The test users' payload keys, unwrapped: the recording must replay without this database. */
async function subjectKeysOf(h: Harness): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const { id } of await h.sql<{ id: string }>('SELECT id FROM user_data_keys ORDER BY id')) {
    const found = await h.runtime.subjectKeys.byId(id);
    if (found && found !== 'erased') out[id] = found.key.toString('base64');
  }
  return out;
}

describe.runIf(RECORD)('recording the current challenge paths (WARDEN_RECORD_HISTORIES)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ timeSkipping: true });
    await raiseRateLimits(h);
  });
  afterAll(async () => h?.close());

  it('records every path a challenge can take', async () => {
    const paths: Array<[string, string]> = [];
    const otp = async (user = 'test-user') =>
      (await initiate(h, 'otp', user)).json<{ challenge_id: string }>().challenge_id;

    const verified = await otp();
    expect(
      (await post(h, '/otp/verify', { challenge_id: verified, otp: await secretFor(h, verified) })).statusCode,
    ).toBe(200);
    paths.push(['otp-verified', verified]);

    const retried = await otp();
    const retriedCode = await secretFor(h, retried);
    expect((await post(h, '/otp/verify', { challenge_id: retried, otp: wrong(retriedCode) })).statusCode).toBe(401);
    expect((await post(h, '/otp/verify', { challenge_id: retried, otp: retriedCode })).statusCode).toBe(200);
    paths.push(['otp-wrong-then-verified', retried]);

    const locked = await otp();
    const lockedCode = await secretFor(h, locked);
    for (let i = 0; i < 5; i += 1) await post(h, '/otp/verify', { challenge_id: locked, otp: wrong(lockedCode) });
    await waitForStatus(h, locked, 'locked');
    paths.push(['otp-locked', locked]);

    await putSettings(h, { resend_cooldown_seconds: 0 });
    const resent = await otp();
    const resentCode = await secretFor(h, resent);
    expect((await post(h, '/otp/resend', { challenge_id: resent })).statusCode).toBe(202);
    await secretFor(h, resent, 2);
    expect((await post(h, '/otp/verify', { challenge_id: resent, otp: resentCode })).statusCode).toBe(200);
    paths.push(['otp-resent-verified', resent]);
    await putSettings(h, { resend_cooldown_seconds: 30 });

    const link = (await initiate(h, 'magic-link', 'test-user-2')).json<{ challenge_id: string }>().challenge_id;
    const token = await secretFor(h, link);
    expect(
      (await h.public.inject({ method: 'POST', url: LINK_PATH, payload: { challenge: link, token } })).statusCode,
    ).toBe(200);
    paths.push(['magic-link-verified', link]);

    const revoked = await otp('test-user-3');
    await secretFor(h, revoked);
    const revoke = await h.admin.inject({
      method: 'POST',
      url: '/admin/api/v1/users/revoke-challenges',
      headers: h.adminHeaders,
      payload: { user_ids: ['test-user-3'] },
    });
    expect(revoke.statusCode).toBe(200);
    await waitForStatus(h, revoked, 'revoked');
    paths.push(['otp-revoked', revoked]);

    await setFault(h, { provider: 'twilio', mode: 'error', status: 503 });
    const failedOver = await otp('test-user-2');
    expect(await deliveryOutcome(h, failedOver)).toMatchObject({ delivery_outcome: 'failed_over' });
    await clearFaults(h);
    expect(
      (await post(h, '/otp/verify', { challenge_id: failedOver, otp: await secretFor(h, failedOver) })).statusCode,
    ).toBe(200);
    paths.push(['otp-failed-over-verified', failedOver]);

    const expired = await otp();
    await secretFor(h, expired);
    await h.testEnv!.sleep(305_000);
    await waitForStatus(h, expired, 'expired');
    paths.push(['otp-expired', expired]);

    const histories = [];
    for (const [scenario, challengeId] of paths) {
      const workflowId = `challenge-${challengeId}`;
      const handle = h.runtime.temporal.client.workflow.getHandle(workflowId);
      await handle.result();
      histories.push({
        path: scenario,
        workflowId,
        history: Buffer.from(History.encode(await handle.fetchHistory()).finish()).toString('base64'),
      });
    }
    const recording: Recording = {
      label: RECORD!,
      recordedAt: new Date().toISOString(),
      commit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(),
      payloadKeys: h.env.WARDEN_PAYLOAD_KEYS!,
      subjectKeys: await subjectKeysOf(h),
      histories,
    };
    writeFileSync(path.join(FIXTURES, `${RECORD}.json`), `${JSON.stringify(recording, null, 1)}\n`);
  });
});
