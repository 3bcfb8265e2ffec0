import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../src/api/plugins/loopbackHost';

describe('loopback Host headers', () => {
  it('accepts the names of this machine, with or without a port', () => {
    for (const host of [
      '127.0.0.1',
      '127.0.0.1:9090',
      '127.1.2.3:80',
      'localhost',
      'LOCALHOST:8099',
      'app.localhost',
      '[::1]',
      '[::1]:9090',
    ])
      expect(isLoopbackHost(host), host).toBe(true);
  });

  it('refuses every other name, address and malformed header', () => {
    for (const host of [
      undefined,
      '',
      'example.com',
      'localhost.example.com:80',
      '127.0.0.1.nip.io',
      '10.0.0.1',
      '0.0.0.0:9090',
      '[::]:9090',
      '[::ffff:127.0.0.1]',
      '::1',
      'localhost:port',
      '127.0.0.1:9090:1',
    ])
      expect(isLoopbackHost(host), String(host)).toBe(false);
  });
});
