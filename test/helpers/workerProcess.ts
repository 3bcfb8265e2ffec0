import path from 'node:path';
import { inject } from 'vitest';
import { spawnManaged, waitFor, type ManagedProcess } from '../../src/dev/process';
import type { Harness } from './harness';

export interface WorkerProcess extends ManagedProcess {
  output: string[];
}

/**
 * Runs the production worker entry (src/worker/main.ts) as a real child process on the
 * harness's database and task queue, so a test can SIGKILL it mid-flight. Start the harness
 * with `worker: false` when this process should be the only worker.
 */
export async function spawnWorkerProcess(h: Harness, extraEnv: Record<string, string> = {}): Promise<WorkerProcess> {
  const output: string[] = [];
  const proc = spawnManaged(process.execPath, ['--import', 'tsx', path.resolve('src/worker/main.ts')], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...h.env,
      WARDEN_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
      WARDEN_METRICS_PORT: '0',
      ...extraEnv,
    },
    onOutput: (line) => output.push(line),
  });
  await waitFor(
    'the worker process to start polling',
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`worker exited: ${output.slice(-5).join('\n')}`);
      if (!output.some((line) => line.includes('worker started'))) throw new Error('not yet');
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  return Object.assign(proc, { output });
}
