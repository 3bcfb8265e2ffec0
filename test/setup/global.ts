import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded';
import { freePort } from '../../src/dev/process';
import { asStartupError } from '../../src/dev/startupError';
import { startDevServer } from '../../src/temporal/devServer';
import { ensureTool } from '../../src/temporal/tools';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalCli: string;
    temporalTestServer: string;
    /** a maintenance-database URL on the test Postgres server: each test file creates its own database */
    pgAdminUrl: string;
    workflowBundlePath: string;
  }
}

/**
 * Once per `npm test`: a real Temporal dev server on free ports, a real Postgres (DATABASE_URL's
 * server when set, otherwise an embedded one in a temp folder) and one workflow bundle.
 * Everything is torn down at the end; nothing is downloaded at run time.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = process.cwd();
  const toolsDir = path.resolve(process.env.WARDEN_TOOLS_DIR ?? path.join(root, '.tools'));
  const log = (line: string) => process.stderr.write(`[test setup] ${line}\n`);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'warden-test-'));
  // as root, Postgres runs as the postgres user: in a folder it can enter, the cluster stays in
  // it (instead of moving where that user reaches) and goes with it at teardown
  chmodSync(scratch, 0o755);
  const cleanups: Array<() => Promise<void>> = [async () => rmSync(scratch, { recursive: true, force: true })];
  const teardown = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => log(String(err)));
  };

  try {
    const cli = await ensureTool('cli', toolsDir, log);
    const testServer = await ensureTool('testServer', toolsDir, log);
    const temporal = await startDevServer({ cli, port: await freePort() });
    cleanups.push(() => temporal.stop());

    let pgAdminUrl: string;
    if (process.env.DATABASE_URL) {
      const url = new URL(process.env.DATABASE_URL);
      url.pathname = '/postgres';
      pgAdminUrl = url.toString();
    } else {
      const pg = await startEmbeddedPostgres({ dir: path.join(scratch, 'pg'), port: await freePort() });
      cleanups.push(() => pg.stop());
      pgAdminUrl = pg.adminUrl;
    }

    const { code } = await bundleWorkflowCode({
      workflowsPath: path.join(root, 'src', 'workflows', 'index.ts'),
      logger: { trace() {}, debug() {}, info() {}, warn: log, error: log, log() {} } as never,
    });
    const workflowBundlePath = path.join(scratch, 'workflow-bundle.js');
    writeFileSync(workflowBundlePath, code);

    project.provide('temporalAddress', temporal.address);
    project.provide('temporalCli', cli);
    project.provide('temporalTestServer', testServer);
    project.provide('pgAdminUrl', pgAdminUrl);
    project.provide('workflowBundlePath', workflowBundlePath);
  } catch (err) {
    await teardown();
    // cause and fix, not a stack trace through vitest's internals
    const failure = asStartupError(err);
    const short = new Error(failure.report('the test stack could not start').trimEnd());
    short.stack = short.message;
    throw short;
  }
  return teardown;
}
