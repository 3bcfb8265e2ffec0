/**
 * What every command shares: the exit codes, the connection and output mode from the global
 * flags, and one way to print (the API's JSON as-is under `--json`, a rendering for people
 * otherwise).
 */
import type { Command } from 'commander';
import { AdminClient, connection } from './http';

/** Scripts branch on these; docs/cli.md lists them. */
export const EXIT = {
  ok: 0,
  /** the API refused (its `error` code is printed) or answered with an error */
  refused: 1,
  /** a mistake in the command line or the setup (unknown option, missing token, bad URL) */
  usage: 2,
  /** nothing answered at the admin URL */
  unreachable: 3,
} as const;

export interface GlobalFlags {
  url?: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

export interface Context {
  api: AdminClient;
  json: boolean;
  /** `data` as JSON with `--json`, else what `human` renders from it */
  print<T>(data: T, human: (data: T) => string): void;
  /** a progress line for people; silent with `--json` so the output stays one JSON document */
  say(line: string): void;
}

export function contextOf(command: Command): Context {
  const flags = command.optsWithGlobals<GlobalFlags>();
  const json = Boolean(flags.json);
  return {
    api: new AdminClient(connection(flags)),
    json,
    print: (data, human) => process.stdout.write(`${json ? JSON.stringify(data, null, 2) : human(data)}\n`),
    say: (line) => {
      if (!json) process.stdout.write(`${line}\n`);
    },
  };
}

/**
 * An action with its context: `fn` receives the context, then what Commander passes (the
 * arguments, the command's options, the command).
 */
export function act<A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<void>) {
  return async function (this: Command, ...args: A): Promise<void> {
    await fn(contextOf(this), ...args);
  };
}

/** A comma-separated list flag (`--users alice,bob`), blanks dropped. */
export function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}
