/**
 * Temporal as production runs it: TLS, mTLS and API keys. The shared dev server speaks
 * plaintext only, so a TLS-terminating proxy of the test's own (mTLS: it requires a client
 * certificate signed by a throwaway CA) stands in front of it. The server certificate names
 * only `temporal.warden.test` while the proxy listens on 127.0.0.1, so every connection that
 * succeeds here also used TEMPORAL_TLS_SERVER_NAME. The configuration's own refusals (a
 * certificate without its key, a file that cannot be read) are in test/unit/config.test.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { describeConfig, loadConfig, type Config } from '../../src/config';
import type { Runtime } from '../../src/runtime';
import { connectTemporal } from '../../src/temporal/client';
import { generatePayloadKeyring } from '../../src/temporal/codec';
import { temporalConnectionOptions } from '../../src/temporal/connectionOptions';
import { startWorker } from '../../src/worker/worker';
import { healthCheckWorkflow } from '../../src/workflows';
import { startHarness, type Harness } from '../helpers/harness';
import { createTestPki, startGrpcRecorder, startTlsProxy, type TestPki, type TlsProxy } from '../helpers/tlsProxy';

const base = { WARDEN_ADMIN_TOKEN: randomBytes(24).toString('base64url') };

let pki: TestPki;
let proxy: TlsProxy;

beforeAll(async () => {
  pki = createTestPki();
  proxy = await startTlsProxy({ target: inject('temporalAddress'), pki });
});

afterAll(async () => {
  await proxy?.close();
  pki?.remove();
});

/** What a deployment sets for mTLS to a self-hosted cluster. */
function mtlsEnv(): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: proxy.address,
    TEMPORAL_TLS_CA: pki.caFile,
    TEMPORAL_TLS_CERT: pki.clientCertFile,
    TEMPORAL_TLS_KEY: pki.clientKeyFile,
    TEMPORAL_TLS_SERVER_NAME: pki.serverName,
  };
}

/** The worker's connection as startWorker makes it; it reads nothing but the config before connecting. */
function workerConnection(config: Config): Promise<unknown> {
  return startWorker({ config } as Runtime);
}

describe('mTLS with the CA and a client certificate', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ temporalAddress: proxy.address, env: mtlsEnv() });
  });
  afterAll(async () => h?.close());

  it('runs a workflow end to end: the API client and the worker both connect through the proxy', async () => {
    expect(describeConfig(h.config).temporal).toMatchObject({ address: proxy.address, transport: 'mTLS' });
    // the runtime's Connection and the worker's NativeConnection: the proxy is the only way in
    expect(proxy.accepted()).toBeGreaterThanOrEqual(2);
    const result = await h.runtime.temporal.client.workflow.execute(healthCheckWorkflow, {
      taskQueue: h.config.temporal.taskQueue,
      workflowId: `health-tls-${randomUUID()}`,
    });
    expect(result.ok).toBe(true);
    expect(proxy.refused()).toEqual([]);
  });
});

describe('refused handshakes', () => {
  it('refuses a client without a certificate: the proxy rejects the handshake', async () => {
    const { TEMPORAL_TLS_CERT: _cert, TEMPORAL_TLS_KEY: _key, ...withoutCert } = mtlsEnv();
    const config = loadConfig({ ...base, ...withoutCert });
    expect(describeConfig(config).temporal).toMatchObject({ transport: 'TLS' });
    const accepted = proxy.accepted();
    const refused = proxy.refused().length;

    await expect(connectTemporal(config)).rejects.toThrow(
      new RegExp(`cannot reach Temporal at ${proxy.address} \\(TLS\\): .*certificate required`),
    );
    // with TLS 1.3 the client may finish its side of the handshake before the refusal arrives,
    // so the worker's error reads CertificateRequired or a broken pipe: the proxy's reasons
    // below say why
    await expect(workerConnection(config)).rejects.toThrow(
      new RegExp(`the worker cannot reach Temporal at ${proxy.address} \\(TLS\\)`),
    );
    expect(proxy.accepted()).toBe(accepted);
    const reasons = proxy.refused().slice(refused);
    expect(reasons.length).toBeGreaterThanOrEqual(2);
    expect(reasons.every((reason) => reason.includes('peer did not return a certificate'))).toBe(true);
  });

  it('refuses a server whose certificate the configured CA did not sign', async () => {
    const config = loadConfig({ ...base, ...mtlsEnv(), TEMPORAL_TLS_CA: pki.otherCaFile });
    const accepted = proxy.accepted();

    await expect(connectTemporal(config)).rejects.toThrow(
      new RegExp(`cannot reach Temporal at ${proxy.address} \\(mTLS\\): .*self-signed certificate`),
    );
    await expect(workerConnection(config)).rejects.toThrow(/the worker cannot reach Temporal .*UnknownIssuer/);
    // the client gave up during the handshake: nothing reached the dev server
    expect(proxy.accepted()).toBe(accepted);
  });
});

describe('API key', () => {
  it('is sent as `authorization: Bearer <key>` over TLS, with the namespace header, by the client and the worker', async () => {
    // an HTTP/2 server over TLS that records headers: the dev server ignores API keys
    const recorder = await startGrpcRecorder(pki);
    try {
      const key = `temporal-api-key-${randomBytes(12).toString('hex')}`;
      const keyFile = path.join(pki.dir, 'temporal-api-key');
      writeFileSync(keyFile, `${key}\n`);
      // no TEMPORAL_TLS: the key alone turns TLS on
      const config = loadConfig({
        ...base,
        TEMPORAL_ADDRESS: recorder.address,
        TEMPORAL_TLS_CA: pki.caFile,
        TEMPORAL_TLS_SERVER_NAME: pki.serverName,
        TEMPORAL_API_KEY_FILE: keyFile,
        WARDEN_PAYLOAD_KEYS: generatePayloadKeyring(),
      });
      expect(describeConfig(config).temporal).toMatchObject({ transport: 'TLS with an API key' });
      expect(JSON.stringify(describeConfig(config))).not.toContain(key);

      const temporal = await connectTemporal(config);
      try {
        await temporal.connection.workflowService.describeNamespace({ namespace: config.temporal.namespace });
      } finally {
        await temporal.close();
      }
      const fromClient = recorder.calls();
      expect(fromClient.map((call) => call.path)).toEqual([
        '/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo',
        '/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace',
      ]);
      for (const call of fromClient) expect(call.headers.authorization).toBe(`Bearer ${key}`);
      // the header Temporal Cloud routes a namespaced call on
      expect(fromClient[1]?.headers['temporal-namespace']).toBe(config.temporal.namespace);

      // a Worker on a NativeConnection with the options startWorker gives it: its polls carry both
      const native = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
      try {
        const worker = await Worker.create({
          connection: native,
          namespace: config.temporal.namespace,
          taskQueue: `tls-api-key-${randomUUID()}`,
          activities: { noop: async () => {} },
        });
        const running = worker.run();
        const polled = () => recorder.calls().some((call) => call.path.endsWith('/PollActivityTaskQueue'));
        for (let waited = 0; !polled() && waited < 10_000; waited += 100) await sleep(100);
        worker.shutdown();
        await running;
      } finally {
        await native.close();
      }
      const fromWorker = recorder.calls().slice(fromClient.length);
      expect(fromWorker.map((call) => call.path)).toEqual(
        expect.arrayContaining([
          '/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo',
          '/temporal.api.workflowservice.v1.WorkflowService/PollActivityTaskQueue',
        ]),
      );
      for (const call of fromWorker) expect(call.headers.authorization).toBe(`Bearer ${key}`);
      const poll = fromWorker.find((call) => call.path.endsWith('/PollActivityTaskQueue'));
      expect(poll?.headers['temporal-namespace']).toBe(config.temporal.namespace);
    } finally {
      await recorder.close();
    }
  });
});
