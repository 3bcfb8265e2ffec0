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

  it('takes an empty secret file as a setting not yet given', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-secret-'));
    const empty = path.join(dir, 'hcaptcha-secret');
    writeFileSync(empty, '\n');
    const config = loadConfig({ ...base, HCAPTCHA_SECRET_FILE: empty, HCAPTCHA_SITE_KEY_FILE: empty });
    expect(config.providers.hcaptcha.sandbox).toBe(true);
  });
});

describe('Temporal TLS, mTLS and API key', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-temporal-tls-'));
  const pem = (name: string, label: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, `-----BEGIN ${label}-----\nMIIB${name}\n-----END ${label}-----\n`);
    return file;
  };
  const ca = pem('ca.pem', 'CERTIFICATE');
  const cert = pem('client.pem', 'CERTIFICATE');
  const key = pem('client.key', 'PRIVATE KEY');

  it('is plaintext unless asked, and TEMPORAL_TLS=on alone trusts the system roots', () => {
    const plain = loadConfig(base);
    expect(plain.temporal.tls).toBeUndefined();
    expect(describeConfig(plain).temporal).toMatchObject({ transport: 'plaintext' });
    const tls = loadConfig({ ...base, TEMPORAL_TLS: 'on' });
    expect(tls.temporal.tls).toEqual({ ca: undefined, clientCert: undefined, serverName: undefined });
    expect(describeConfig(tls).temporal).toMatchObject({ transport: 'TLS' });
  });

  it('reads the CA, client certificate and key once, at load; any of them implies TLS', () => {
    const config = loadConfig({
      ...base,
      TEMPORAL_TLS_CA: ca,
      TEMPORAL_TLS_CERT: cert,
      TEMPORAL_TLS_KEY: key,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(config.temporal.tls?.ca?.toString()).toContain('MIIBca.pem');
    expect(config.temporal.tls?.clientCert?.crt.toString()).toContain('MIIBclient.pem');
    expect(config.temporal.tls?.clientCert?.key.toString()).toContain('MIIBclient.key');
    expect(config.temporal.tls?.serverName).toBe('temporal.internal');
    const described = JSON.stringify(describeConfig(config));
    expect(described).toContain('"transport":"mTLS"');
    expect(described).not.toContain('MIIB');
    expect(loadConfig({ ...base, TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' }).temporal.tls).toBeDefined();
  });

  it('refuses a certificate without its key, and a key without its certificate, naming both', () => {
    for (const half of [{ TEMPORAL_TLS_CERT: cert }, { TEMPORAL_TLS_KEY: key }]) {
      const attempt = () => loadConfig({ ...base, TEMPORAL_TLS_CA: ca, ...half });
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/);
    }
  });

  it('names the variable and the file it cannot read, never the contents', () => {
    const missing = path.join(dir, 'missing.pem');
    expect(() => loadConfig({ ...base, TEMPORAL_TLS_CA: missing })).toThrow(
      `cannot read TEMPORAL_TLS_CA (${missing}): ENOENT`,
    );
    expect(() => loadConfig({ ...base, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: dir })).toThrow(
      `cannot read TEMPORAL_TLS_KEY (${dir}): EISDIR`,
    );
    const notPem = path.join(dir, 'not-pem.key');
    writeFileSync(notPem, 'raw-secret-key-material');
    const attempt = () => loadConfig({ ...base, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: notPem });
    expect(attempt).toThrow(`TEMPORAL_TLS_KEY (${notPem}) is not a PEM file`);
    expect(attempt).not.toThrow(/raw-secret-key-material/);
    // TEMPORAL_TLS_KEY_FILE would hand the key itself over as the path: refused without echoing it
    const viaFile = () => loadConfig({ ...base, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY_FILE: key });
    expect(viaFile).toThrow('TEMPORAL_TLS_KEY must be the path of a PEM file, not its contents');
    expect(viaFile).not.toThrow(/MIIB/);
  });

  it('takes the API key from TEMPORAL_API_KEY or its _FILE; a key implies TLS and is never described', () => {
    const keyFile = path.join(dir, 'api-key');
    writeFileSync(keyFile, 'temporal-cloud-api-key\n');
    for (const env of [{ TEMPORAL_API_KEY: 'temporal-cloud-api-key' }, { TEMPORAL_API_KEY_FILE: keyFile }]) {
      const config = loadConfig({ ...base, ...env });
      expect(config.temporal.apiKey).toBe('temporal-cloud-api-key');
      expect(config.temporal.tls).toBeDefined();
      const described = JSON.stringify(describeConfig(config));
      expect(described).toContain('"transport":"TLS with an API key"');
      expect(described).not.toContain('temporal-cloud-api-key');
    }
  });

  it('refuses TEMPORAL_TLS=off beside a TLS setting or an API key, instead of sending them in clear', () => {
    const attempt = () =>
      loadConfig({ ...base, TEMPORAL_TLS: 'off', TEMPORAL_TLS_CA: ca, TEMPORAL_API_KEY: 'temporal-cloud-api-key' });
    expect(attempt).toThrow(/TEMPORAL_TLS=off contradicts TEMPORAL_TLS_CA, TEMPORAL_API_KEY/);
    expect(attempt).not.toThrow(/temporal-cloud-api-key/);
    expect(loadConfig({ ...base, TEMPORAL_TLS: 'off' }).temporal.tls).toBeUndefined();
    expect(() => loadConfig({ ...base, TEMPORAL_TLS: 'yes' })).toThrow(/TEMPORAL_TLS/);
  });
});
