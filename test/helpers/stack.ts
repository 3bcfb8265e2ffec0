/** Helpers for the tests that run `npm start`'s stack as a process of its own. */
import { execFileSync } from 'node:child_process';
import { waitFor, type ManagedProcess } from '../../src/dev/process';

/** Processes whose command line mentions `marker` (a temp folder of the test), other than ps itself. */
export function processesMentioning(marker: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(marker) && !line.includes('ps -eo'));
}

/**
 * A start that failed because a port chosen for it (freePort: bind to 0, release, hand the
 * number on) was taken by another process before the stack bound it. The stack says so and
 * exits; that says nothing about what a test checks, so the start is tried again.
 */
export const lostPort = (lines: readonly string[]): boolean => lines.some((line) => line.includes('already in use'));

const EXITED = Symbol('exited');

/**
 * Waits for the stack's /readyz to answer 200 and returns its body. A stack that exits first
 * or a timeout fails at once, with the stack's last lines.
 */
async function waitForReady(
  adminPort: string | number | undefined,
  output: string[],
  timeoutMs: number,
  stack?: ManagedProcess,
): Promise<unknown> {
  const ready = await waitFor(
    'readyz',
    async () => {
      if (stack && stack.child.exitCode !== null) return EXITED;
      const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (res.status !== 200) throw new Error(`readyz ${res.status}`);
      return res.json();
    },
    { timeoutMs, intervalMs: 500 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${output.slice(-30).join('\n')}`);
  });
  if (ready === EXITED) {
    throw new Error(`the stack exited (${stack!.child.exitCode}) before it was ready\n${output.slice(-30).join('\n')}`);
  }
  return ready;
}

/**
 * Starts a stack and waits until it is ready; `start` chooses fresh ports on every call, and a
 * start that lost one of them (lostPort) is tried again, up to three times in all.
 */
export async function startReady<S extends { stack: ManagedProcess; output: string[]; adminPort: string | number }>(
  start: () => Promise<S>,
  timeoutMs: number,
): Promise<S & { ready: unknown }> {
  for (let attempt = 1; ; attempt += 1) {
    const started = await start();
    try {
      return { ...started, ready: await waitForReady(started.adminPort, started.output, timeoutMs, started.stack) };
    } catch (err) {
      await started.stack.stop(30_000);
      if (attempt >= 3 || !lostPort(started.output)) throw err;
    }
  }
}
