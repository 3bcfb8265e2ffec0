/** Helpers for the tests that run `npm start`'s stack as a process of its own. */
import { execFileSync } from 'node:child_process';
import { waitFor } from '../../src/dev/process';

/** Processes whose command line mentions `marker` (a temp folder of the test), other than ps itself. */
export function processesMentioning(marker: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(marker) && !line.includes('ps -eo'));
}

/** Waits for the stack's /readyz to answer 200 and returns its body; a timeout shows the stack's last lines. */
export async function waitForReady(
  adminPort: string | number | undefined,
  output: string[],
  timeoutMs: number,
): Promise<unknown> {
  return waitFor(
    'readyz',
    async () => {
      const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      if (res.status !== 200) throw new Error(`readyz ${res.status}`);
      return res.json();
    },
    { timeoutMs, intervalMs: 500 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${output.slice(-30).join('\n')}`);
  });
}
