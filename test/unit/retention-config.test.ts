/**
 * Retention's settings (docs/operations.md#retention): a horizon per table, `off` to keep a
 * table for ever, the Slack signatures never forgotten while a replay would still be accepted.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';
import { retentionStatement } from '../../src/activities/retention';
import { RETENTION_TABLES } from '../../src/shared/retention';

const base = { WARDEN_ADMIN_TOKEN: 'a-long-enough-admin-token' };
const DAY = 86_400_000;

describe('retention configuration', () => {
  it('keeps each table for its default horizon, trimmed hourly 1,000 rows at a time', () => {
    const config = loadConfig(base);
    expect(config.retention).toEqual({
      intervalSeconds: 3600,
      batch: 1000,
      horizonsMs: {
        auth_challenges: 30 * DAY,
        challenge_validation_attempts: 90 * DAY,
        rate_limit_attempts: 2 * DAY,
        delivery_attempts: 90 * DAY,
        delivery_failures: 90 * DAY,
        slack_request_signatures: DAY,
        canary_runs: 30 * DAY,
        audit_events: 400 * DAY,
      },
    });
    expect(config.devTemporalRetentionSeconds).toBe(3 * 86_400);
  });

  it('reads the duration syntax, and `off` keeps a table for ever', () => {
    const config = loadConfig({
      ...base,
      WARDEN_RETENTION_INTERVAL: '90s',
      WARDEN_RETENTION_CHALLENGES: '36h',
      WARDEN_RETENTION_DELIVERY: '15m',
      WARDEN_RETENTION_AUDIT_EVENTS: 'off',
    });
    expect(config.retention.intervalSeconds).toBe(90);
    expect(config.retention.horizonsMs).toMatchObject({
      auth_challenges: 36 * 3_600_000,
      delivery_attempts: 15 * 60_000,
      delivery_failures: 15 * 60_000,
      audit_events: null,
    });
  });

  it('refuses what is not a duration, a Slack horizon shorter than twice the replay window, a dev retention under an hour', () => {
    expect(() => loadConfig({ ...base, WARDEN_RETENTION_CHALLENGES: '30 days' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, WARDEN_RETENTION_INTERVAL: 'off' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, WARDEN_RETENTION_BATCH: '0' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, WARDEN_RETENTION_SLACK_SIGNATURES: '5m' })).toThrow(
      /WARDEN_RETENTION_SLACK_SIGNATURES must be at least 600s/,
    );
    expect(loadConfig({ ...base, WARDEN_RETENTION_SLACK_SIGNATURES: '10m' }).retention.horizonsMs).toMatchObject({
      slack_request_signatures: 600_000,
    });
    expect(() => loadConfig({ ...base, WARDEN_DEV_TEMPORAL_RETENTION: '30m' })).toThrow(/at least 1h/);
  });

  it('has a batch statement for every table, bounded by the batch size', () => {
    for (const table of RETENTION_TABLES) expect(retentionStatement(table)).toMatch(/\$2/);
  });
});
