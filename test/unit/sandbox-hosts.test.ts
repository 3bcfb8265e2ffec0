/**
 * The sandbox's outbox holds every code it delivered and its controls switch faults: they answer
 * loopback Host headers (and names the operator allows), so a web page that re-resolves its
 * own name to 127.0.0.1 cannot read codes from a developer's browser.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server';

function get(sandbox: RunningSandbox, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port: sandbox.port, path, method: 'GET', headers: { host } },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

describe('sandbox Host check', () => {
  let sandbox: RunningSandbox;
  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, callbacks: false, allowedHosts: ['provider-sandbox'] });
  });
  afterAll(async () => sandbox?.close());

  it('serves the outbox to loopback names and to the allowed ones', async () => {
    for (const host of [`127.0.0.1:${sandbox.port}`, `localhost:${sandbox.port}`, 'provider-sandbox:8099'])
      expect((await get(sandbox, '/sandbox/messages', host)).status, host).toBe(200);
  });

  it('refuses the outbox and the fault switches to any other Host', async () => {
    for (const path of ['/sandbox/messages', '/sandbox/faults', '/sandbox/slack']) {
      const res = await get(sandbox, path, 'rebind.attacker.example');
      expect(res.status, path).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'loopback_only' });
    }
  });

  it('leaves the provider APIs to whatever name the SDKs were given', async () => {
    const res = await get(sandbox, '/status/twilio/api/v2/status.json', 'provider-sandbox.internal:8099');
    expect(res.status).not.toBe(403);
  });
});
