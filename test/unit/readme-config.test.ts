import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema';

/** Every setting the service validates at start is documented in the README, so the docs cannot drift from the schema. */
describe('README settings', () => {
  it('names every environment variable of the config schema', () => {
    const readme = readFileSync('README.md', 'utf8');
    const names = Object.keys(ConfigSchema.properties);
    expect(names.length).toBeGreaterThan(30);
    // a `WARDEN_P95_GENERATION_MS` / `_VALIDATION_MS` row documents its siblings by suffix
    const documented = (name: string) =>
      readme.includes(name) || readme.includes(`\`_${name.split('_').slice(-2).join('_')}\``);
    expect(names.filter((n) => !documented(n))).toEqual([]);
  });
});
