/**
 * An initiate whose challenge workflow started but that no worker issued in time (every worker
 * down or overloaded): the request was accepted, so it answers 202 with the challenge id, and
 * the code arrives and verifies once a worker runs. A 503 here would send the user to start a
 * second challenge and get two messages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initiate, messagesFor, post, secretFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/workerProcess';

describe('initiate while no worker is running', () => {
  let h: Harness;
  let worker: WorkerProcess | undefined;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await worker?.stop();
    await h?.close();
  });

  it('answers 202 once the workflow is started, then issues, delivers and verifies when a worker comes', async () => {
    const res = await initiate(h, 'otp', 'test-user-2');
    expect(res.statusCode, res.body).toBe(202);
    const { challenge_id: challengeId, expires_at: expiresAt } = res.json<{
      challenge_id: string;
      expires_at: string;
    }>();
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());
    // accepted, not issued: no row and no message yet
    expect(await h.sql('SELECT id FROM auth_challenges WHERE id = $1', [challengeId])).toEqual([]);
    expect(await messagesFor(h, challengeId)).toEqual([]);

    worker = await spawnWorkerProcess(h);
    const code = await secretFor(h, challengeId);
    expect(await messagesFor(h, challengeId)).toHaveLength(1);
    const verified = await post(h, '/otp/verify', { challenge_id: challengeId, otp: code });
    expect(verified.statusCode, verified.body).toBe(200);
    expect(verified.json()).toEqual({ status: 'verified' });
  }, 90_000);
});
