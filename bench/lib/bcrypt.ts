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
}

/** Measures bcrypt operations per second on every core, in a child process it waits for. */
export function measureBcryptBound(cost: number, seconds: number): Promise<BcryptBound> {
  const threads = Math.max(4, os.availableParallelism());
  const entry = path.join(__dirname, 'bcrypt-bound.ts');
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', entry],
      {
        env: { ...process.env, UV_THREADPOOL_SIZE: String(threads), BENCH_BCRYPT_COST: String(cost), BENCH_BCRYPT_SECONDS: String(seconds) },
        timeout: (seconds + 60) * 1000,
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`bcrypt bound failed: ${err.message} ${stderr}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop()!) as BcryptBound);
        } catch {
          reject(new Error(`bcrypt bound printed no result: ${stdout} ${stderr}`));
        }
      },
    );
  });
}
