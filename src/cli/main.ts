/**
 * `warden`: the operator's command line for the admin API (docs/cli.md). Each command group is
 * a module of its own; this file wires them, owns the global flags and turns every way a
 * command can end into an exit code and one line on stderr (never a stack trace, never the
 * token).
 */
import { Command, CommanderError } from 'commander';
import { version } from '../../package.json';
import { registerApps } from './apps';
import { registerBlocks } from './blocks';
import { EXIT } from './command';
import { clean } from './format';
import { DEFAULT_ADMIN_URL, Refusal, SetupError, Unreachable } from './http';
import { registerIncidents } from './incidents';
import { registerKeys } from './keys';
import { registerRoutes } from './routes';
import { registerRunbooks } from './runbooks';

export function buildProgram(): Command {
  const program = new Command('warden')
    .description(
      'Warden from the command line: incidents, runbooks, delivery routes, the IP blocklist, data keys, apps',
    )
    .version(version)
    .option('--url <url>', `the admin API (env WARDEN_ADMIN_URL, default ${DEFAULT_ADMIN_URL})`)
    .option('--token <token>', 'your operator token; prefer WARDEN_TOKEN or a token file (visible in ps otherwise)')
    .option('--token-file <path>', 'read the operator token from this file (env WARDEN_TOKEN_FILE)')
    .option('--json', "print the API's JSON as it is, for scripts")
    // inherited by every command created below
    .exitOverride()
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showHelpAfterError('(add --help for usage)');
  registerIncidents(program);
  registerRunbooks(program);
  registerRoutes(program);
  registerBlocks(program);
  registerKeys(program);
  registerApps(program);
  return program;
}

/** How a command ended, as an exit code; what went wrong is on stderr. */
function exitCodeOf(err: unknown): number {
  const fail = (line: string, code: number) => {
    process.stderr.write(`error: ${clean(line)}\n`);
    return code;
  };
  // Commander has printed its own message (or the help) already
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof Refusal) return fail(`${err.code}: ${err.message}`, EXIT.refused);
  if (err instanceof Unreachable) return fail(err.message, EXIT.unreachable);
  if (err instanceof SetupError) return fail(err.message, EXIT.usage);
  return fail(err instanceof Error ? err.message : String(err), EXIT.refused);
}

export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    return exitCodeOf(err);
  }
}
