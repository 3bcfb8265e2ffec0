import path from 'node:path';
import { freePort, spawnManaged, waitFor, type ManagedProcess } from '../../src/dev/process';
import type { Harness } from './harness';

export interface ApiProcess extends ManagedProcess {
  output: string[];
  publicUrl: string;
  adminUrl: string;
}

/**
 * Runs the production API entry (src/api/main.ts) as a real child process on the harness's
 * database, Temporal and sandbox, on free loopback ports, so a test can run several and
 * SIGKILL one.
 */
export async function spawnApiProcess(h: Harness, extraEnv: Record<string, string> = {}): Promise<ApiProcess> {
  const output: string[] = [];
  const [publicPort, adminPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const proc = spawnManaged(process.execPath, ['--import', 'tsx', path.resolve('src/api/main.ts')], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...h.env,
      WARDEN_HOST: '127.0.0.1',
      WARDEN_PUBLIC_PORT: String(publicPort),
      WARDEN_ADMIN_PORT: String(adminPort),
      WARDEN_METRICS_PORT: String(metricsPort),
      ...extraEnv,
    },
    onOutput: (line) => output.push(line),
  });
  await waitFor(
    'the API process to listen',
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`api exited: ${output.slice(-5).join('\n')}`);
      if (!output.some((line) => line.includes('api listening'))) throw new Error('not yet');
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  return Object.assign(proc, {
    output,
    publicUrl: `http://127.0.0.1:${publicPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
  });
}
