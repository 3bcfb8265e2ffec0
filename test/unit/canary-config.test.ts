/**
 * The delivery canary's settings (docs/canary.md): off unless a user is named, never more than
 * once a minute, on the channels named (else every channel the canary user has).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';

const base = { WARDEN_ADMIN_TOKEN: 'a-long-enough-admin-token' };

describe('canary configuration', () => {
  it('is off without WARDEN_CANARY_USER', () => {
    expect(loadConfig(base).canary).toBeUndefined();
  });

  it('runs every 5 minutes and waits a minute by default', () => {
    expect(loadConfig({ ...base, WARDEN_CANARY_USER: 'ops-canary' }).canary).toEqual({
      user: 'ops-canary',
      intervalSeconds: 300,
      timeoutMs: 60_000,
    });
  });

  it('reads the interval in seconds, minutes or hours', () => {
    const interval = (value: string) =>
      loadConfig({ ...base, WARDEN_CANARY_USER: 'c', WARDEN_CANARY_INTERVAL: value }).canary?.intervalSeconds;
    expect(interval('90s')).toBe(90);
    expect(interval('1m')).toBe(60);
    expect(interval('2h')).toBe(7200);
  });

  it('reads the channels, in a fixed order, and refuses any other', () => {
    const channels = (value: string) =>
      loadConfig({ ...base, WARDEN_CANARY_USER: 'c', WARDEN_CANARY_CHANNELS: value }).canary?.channels;
    expect(channels('sms')).toEqual(['sms']);
    expect(channels('email')).toEqual(['email']);
    expect(channels('email, sms')).toEqual(['sms', 'email']);
    expect(channels('sms,sms')).toEqual(['sms']);
    expect(() => channels('sms,voice')).toThrow(ConfigError);
    expect(() => channels('')).toThrow(/WARDEN_CANARY_CHANNELS/);
  });

  it('refuses an interval under a minute or without a unit, and a timeout under a second', () => {
    const attempt = (env: Record<string, string>) => () => loadConfig({ ...base, WARDEN_CANARY_USER: 'c', ...env });
    expect(attempt({ WARDEN_CANARY_INTERVAL: '30s' })).toThrow(ConfigError);
    expect(attempt({ WARDEN_CANARY_INTERVAL: '30s' })).toThrow(/WARDEN_CANARY_INTERVAL must be at least 1m/);
    expect(attempt({ WARDEN_CANARY_INTERVAL: '5' })).toThrow(/WARDEN_CANARY_INTERVAL/);
    expect(attempt({ WARDEN_CANARY_INTERVAL: '0m' })).toThrow(/WARDEN_CANARY_INTERVAL/);
    expect(attempt({ WARDEN_CANARY_TIMEOUT_MS: '10' })).toThrow(/WARDEN_CANARY_TIMEOUT_MS/);
  });
});
