import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort, spawnManaged, type ManagedProcess } from '../../src/dev/process';
import { processesMentioning, startReady } from '../helpers/stack';
import { EncryptionCodec, loadPayloadKeyring } from '../../src/temporal/codec';
import { healthCheckWorkflow } from '../../src/workflows';

describe('npm start (the embedded stack)', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'warden-stack-'));
  chmodSync(dataDir, 0o755);
  let stack: ManagedProcess | undefined;
  afterAll(async () => {
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function start() {
    let env: NodeJS.ProcessEnv = {};
    let ports: Record<string, number> = {};
    const started = await startReady(async () => {
      ports = {
        WARDEN_PUBLIC_PORT: await freePort(),
        WARDEN_ADMIN_PORT: await freePort(),
        WARDEN_METRICS_PORT: await freePort(),
        WARDEN_SANDBOX_PORT: await freePort(),
        WARDEN_EMBEDDED_PG_PORT: await freePort(),
        TEMPORAL_UI_PORT: await freePort(),
        TEMPORAL_PORT: await freePort(),
      };
      env = { PATH: process.env.PATH, HOME: process.env.HOME, TEMPORAL_CLI: inject('temporalCli') };
      for (const [key, value] of Object.entries(ports)) env[key] = String(value);
      env.TEMPORAL_ADDRESS = `127.0.0.1:${ports.TEMPORAL_PORT}`;
      env.WARDEN_DATA_DIR = dataDir;
      const output: string[] = [];
      stack = spawnManaged(process.execPath, ['--import', 'tsx', 'src/dev/stack.ts'], {
        env,
        onOutput: (line) => output.push(line),
      });
      return { stack, output, adminPort: ports.WARDEN_ADMIN_PORT! };
    }, 90_000);
    return { ports, ready: started.ready, output: started.output, temporalAddress: env.TEMPORAL_ADDRESS };
  }

  it('comes up ready, keeps its data across restarts, and leaves nothing behind on SIGTERM', async () => {
    const first = await start();
    expect(first.ready).toMatchObject({ status: 'ready' });
    expect(first.output.join('\n')).toContain('Warden is running');
    // the Temporal Web UI and the sandbox answer too
    expect((await fetch(`http://127.0.0.1:${first.ports.TEMPORAL_UI_PORT}/`)).status).toBe(200);
    const outbox = await fetch(`http://127.0.0.1:${first.ports.WARDEN_SANDBOX_PORT}/sandbox/messages`);
    expect(await outbox.json()).toEqual({ messages: [] });

    // leave a trace in Postgres and in Temporal
    const db = new pg.Client({
      connectionString: `postgres://warden:warden@127.0.0.1:${first.ports.WARDEN_EMBEDDED_PG_PORT}/warden`,
    });
    await db.connect();
    await db.query(`INSERT INTO users (sub, email) VALUES ('persist-check', 'p@example.com')`);
    await db.end();
    const keys = loadPayloadKeyring({ payloadKeysFile: path.join(dataDir, 'secrets', 'payload-keys.json') });
    const connection = await Connection.connect({ address: first.temporalAddress });
    const client = new Client({ connection, dataConverter: { payloadCodecs: [new EncryptionCodec(keys)] } });
    await client.workflow.execute(healthCheckWorkflow, { taskQueue: 'warden', workflowId: 'persist-check' });
    await connection.close();

    await stack!.stop(30_000);
    expect(stack!.child.exitCode).toBe(0);
    expect(processesMentioning(dataDir)).toEqual([]);

    const second = await start();
    const db2 = new pg.Client({
      connectionString: `postgres://warden:warden@127.0.0.1:${second.ports.WARDEN_EMBEDDED_PG_PORT}/warden`,
    });
    await db2.connect();
    const rows = await db2.query(`SELECT sub FROM users WHERE sub = 'persist-check'`);
    await db2.end();
    expect(rows.rowCount).toBe(1);
    const connection2 = await Connection.connect({ address: second.temporalAddress });
    const client2 = new Client({
      connection: connection2,
      dataConverter: { payloadCodecs: [new EncryptionCodec(keys)] },
    });
    const described = await client2.workflow.getHandle('persist-check').describe();
    await connection2.close();
    expect(described.status.name).toBe('COMPLETED');

    await stack!.stop(30_000);
    expect(processesMentioning(dataDir)).toEqual([]);
  }, 240_000);
});
