import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../src/config';

const base = { WARDEN_ADMIN_TOKEN: 'a-long-enough-admin-token' };

describe('configuration', () => {
  it('fills every default from the schema', () => {
    const config = loadConfig(base);
    expect(config.ports).toEqual({ public: 8080, admin: 9090, metrics: 8888, sandbox: 8099 });
    expect(config.temporal.address).toBe('127.0.0.1:7233');
    expect(config.database.poolMax).toBe(25);
    expect(config.providers.twilio.sandbox).toBe(true);
    expect(config.providers.statusUrlTemplate).toBe('http://127.0.0.1:8099/status/%s/api/v2/status.json');
  });

  it('refuses to start without an admin token, naming the variable', () => {
    expect(() => loadConfig({})).toThrow(ConfigError);
    expect(() => loadConfig({})).toThrow(/WARDEN_ADMIN_TOKEN/);
  });

  it('rejects a bad port without echoing other values', () => {
    const attempt = () => loadConfig({ ...base, WARDEN_PUBLIC_PORT: 'eighty' });
    expect(attempt).toThrow(/WARDEN_PUBLIC_PORT/);
    expect(attempt).not.toThrow(/a-long-enough-admin-token/);
  });

  it('bounds the broadest IP block: /16 and /32 by default, never /0', () => {
    expect(loadConfig(base).blockLimits).toEqual({ minPrefixV4: 16, minPrefixV6: 32 });
    expect(loadConfig({ ...base, WARDEN_BLOCK_MIN_PREFIX_V6: '48' }).blockLimits.minPrefixV6).toBe(48);
    expect(() => loadConfig({ ...base, WARDEN_BLOCK_MIN_PREFIX_V4: '0' })).toThrow(/WARDEN_BLOCK_MIN_PREFIX_V4/);
    expect(() => loadConfig({ ...base, WARDEN_BLOCK_MIN_PREFIX_V6: '129' })).toThrow(/WARDEN_BLOCK_MIN_PREFIX_V6/);
  });

  it('turns a provider live when its credentials file is present', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-config-'));
    const file = path.join(dir, 'twilio.json');
    writeFileSync(file, JSON.stringify({ account_sid: 'AC123', auth_token: 'tok' }));
    const config = loadConfig({ ...base, TWILIO_CREDENTIALS_FILE: file });
    expect(config.providers.twilio).toMatchObject({ sandbox: false, accountSid: 'AC123', authToken: 'tok' });
    expect(config.providers.plivo.sandbox).toBe(true);
  });

  it('describes itself without any secret', () => {
    const config = loadConfig({ ...base, SENDGRID_API_KEY: 'SG.real-secret-key' });
    const text = JSON.stringify(describeConfig(config));
    expect(text).toContain('"sendgrid":"live"');
    expect(text).not.toContain('SG.real-secret-key');
    expect(text).not.toContain('a-long-enough-admin-token');
  });
});

describe('file secrets', () => {
  it('reads X from X_FILE (Docker secrets) and lets an explicit X win', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-secret-'));
    const file = path.join(dir, 'admin-token');
    writeFileSync(file, 'token-from-a-secret-file\n');
    expect(loadConfig({ WARDEN_ADMIN_TOKEN_FILE: file }).adminToken).toBe('token-from-a-secret-file');
    expect(loadConfig({ WARDEN_ADMIN_TOKEN_FILE: file, ...base }).adminToken).toBe(base.WARDEN_ADMIN_TOKEN);
    expect(() => loadConfig({ WARDEN_ADMIN_TOKEN_FILE: path.join(dir, 'missing') })).toThrow(/WARDEN_ADMIN_TOKEN_FILE/);
  });
});
