/**
 * Settings responders change during an incident, kept in `runtime_settings` and read through a
 * per-process cache that is at most `maxStalenessMs` old: a change made through the admin API
 * is in force in every process within that bound, without a restart.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Queryable } from '../db/database';

export const RateLimitRule = Type.Object(
  {
    window_seconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
    max_attempts: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  },
  { additionalProperties: false },
);
export const RateLimitSettings = Type.Object(
  { per_user: RateLimitRule, per_ip: RateLimitRule },
  { additionalProperties: false },
);
export type RateLimitSettings = Static<typeof RateLimitSettings>;

export const ChallengeSettings = Type.Object(
  {
    otp_ttl_seconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
    magic_link_ttl_seconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
    max_attempts: Type.Integer({ minimum: 1, maximum: 20 }),
    resend_cooldown_seconds: Type.Integer({ minimum: 0, maximum: 3600 }),
    max_sends: Type.Integer({ minimum: 1, maximum: 20 }),
  },
  { additionalProperties: false },
);
export type ChallengeSettings = Static<typeof ChallengeSettings>;

export const RATE_LIMITING_KEY = 'rate_limiting';
export const CHALLENGE_SETTINGS_KEY = 'auth.challenge';

/** The normal values (docs/incident-response.md), used when a row is missing or unreadable. */
export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  per_user: { window_seconds: 300, max_attempts: 10 },
  per_ip: { window_seconds: 300, max_attempts: 50 },
};
export const DEFAULT_CHALLENGE_SETTINGS: ChallengeSettings = {
  otp_ttl_seconds: 300,
  magic_link_ttl_seconds: 900,
  max_attempts: 5,
  resend_cooldown_seconds: 30,
  max_sends: 5,
};

export class SettingsCache {
  private values = new Map<string, unknown>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly maxStalenessMs = 5000,
    private readonly warn: (message: string, fields: Record<string, unknown>) => void = () => {},
  ) {}

  /** The value of `key` if it matches `schema`, else `fallback` (a bad row never breaks auth). */
  async get<S extends TSchema>(key: string, schema: S, fallback: Static<S>): Promise<Static<S>> {
    if (performance.now() - this.loadedAt > this.maxStalenessMs) await this.reload();
    const value = this.values.get(key);
    if (value === undefined) return fallback;
    if (!Value.Check(schema, value)) {
      this.warn('runtime setting does not match its schema; using the default', { key });
      return fallback;
    }
    return value as Static<S>;
  }

  rateLimits(): Promise<RateLimitSettings> {
    return this.get(RATE_LIMITING_KEY, RateLimitSettings, DEFAULT_RATE_LIMITS);
  }

  challenge(): Promise<ChallengeSettings> {
    return this.get(CHALLENGE_SETTINGS_KEY, ChallengeSettings, DEFAULT_CHALLENGE_SETTINGS);
  }

  /** Writes a setting and drops this process's cache; other processes see it within the bound. */
  async put(key: string, value: unknown, updatedBy: string): Promise<void> {
    await this.db.query(
      `INSERT INTO runtime_settings (key, value, updated_at, updated_by) VALUES ($1, $2::jsonb, now(), $3)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by`,
      [key, JSON.stringify(value), updatedBy],
    );
    this.invalidate();
  }

  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      const { rows } = await this.db.query<{ key: string; value: unknown }>('SELECT key, value FROM runtime_settings');
      this.values = new Map(rows.map((r) => [r.key, r.value]));
      this.loadedAt = performance.now();
    })().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }
}
