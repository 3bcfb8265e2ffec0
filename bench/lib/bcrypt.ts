import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

export interface BcryptBound {
  cost: number;
  /** libuv threadpool size of the measuring process (= cores, at least 4) */
  threads: number;
  /** operations kept in flight */
  concurrency: number;
  ops: number;
  seconds: number;
  opsPerSec: number;
  /** one bcrypt operation alone, ms (median of 7) */
  singleOpMs: number;
  /** cores the measurement ran on (all of the machine's, or Warden's in the split topology) */
  cores?: number;
}

/**
 * Measures bcrypt operations per second on every core (or only on `cores`, pinned with
 * taskset: the split topology), in a child process it waits for.
 */
export function measureBcryptBound(cost: number, seconds: number, cores?: readonly number[]): Promise<BcryptBound> {
  const coreCount = cores?.length ?? os.availableParallelism();
  const threads = Math.max(4, coreCount);
  const entry = path.join(__dirname, 'bcrypt-bound.ts');
  const node = [process.execPath, '--import', 'tsx', entry];
  const [command, ...args] = cores ? ['taskset', '-c', cores.join(','), ...node] : node;
  return new Promise((resolve, reject) => {
    execFile(
      command!,
      args,
      {
        env: {
          ...process.env,
          UV_THREADPOOL_SIZE: String(threads),
          BENCH_BCRYPT_COST: String(cost),
          BENCH_BCRYPT_SECONDS: String(seconds),
        },
        timeout: (seconds + 60) * 1000,
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`bcrypt bound failed: ${err.message} ${stderr}`));
        try {
          resolve({ ...(JSON.parse(stdout.trim().split('\n').pop()!) as BcryptBound), cores: coreCount });
        } catch {
          reject(new Error(`bcrypt bound printed no result: ${stdout} ${stderr}`));
        }
      },
    );
  });
}
