/**
 * A start-up failure that the person running `npm start` or `npm test` can fix: the entry points
 * print its cause and its fix as two short lines and exit non-zero, instead of a stack trace.
 */
import { ConfigError } from '../config';

export class StartupError extends Error {
  override readonly name = 'StartupError';

  constructor(
    message: string,
    /** what to do about it, as one sentence */
    readonly fix: string,
  ) {
    super(message);
  }

  /** The two lines an entry point prints, the first one opening with `headline`. */
  report(headline: string): string {
    return `${headline}: ${this.message}\nFix: ${this.fix}\n`;
  }
}

/** Recognises a full disk, whichever step ran into it (a write of ours or a child's output). */
export function isDiskFull(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  // SQLite (the Temporal dev server's store) says "database or disk is full"
  return e?.code === 'ENOSPC' || /no space left on device|database or disk is full/i.test(String(e?.message ?? ''));
}

/** Any failure as a StartupError: ours as they are, a full disk by its cause, the rest by their message. */
export function asStartupError(err: unknown): StartupError {
  if (err instanceof StartupError) return err;
  if (err instanceof ConfigError) {
    return new StartupError(err.message, 'correct that setting in the environment (the README lists each one)');
  }
  if (isDiskFull(err)) {
    return new StartupError(
      'no space left on device',
      'free some disk space (or set WARDEN_DATA_DIR to a folder on a disk with room), then start again',
    );
  }
  const e = err as NodeJS.ErrnoException | undefined;
  if ((e?.code === 'EACCES' || e?.code === 'EROFS' || e?.code === 'EPERM') && e.path) {
    return new StartupError(
      `no access to ${e.path} (${e.code})`,
      'run from a checkout you can write to, or set WARDEN_DATA_DIR to a folder you can',
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new StartupError(firstLine(message), 'LOG_LEVEL=debug shows what happened before it');
}

/** The first line of a message, cut short: child processes and libraries can say a lot. */
export function firstLine(text: string, max = 300): string {
  const line =
    text
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? '';
  return line.length > max ? `${line.slice(0, max)}...` : line;
}
