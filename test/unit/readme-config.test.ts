/** Every setting the service validates at start is documented in docs/operations.md, so the docs cannot drift from the schema. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema';

describe('documented settings', () => {
  it('names every environment variable of the config schema in docs/operations.md', () => {
    const doc = readFileSync('docs/operations.md', 'utf8');
    const names = Object.keys(ConfigSchema.properties);
    expect(names.length).toBeGreaterThan(30);
    // a `WARDEN_P95_GENERATION_MS` / `_VALIDATION_MS` row documents its siblings by suffix
    const documented = (name: string) =>
      doc.includes(name) || doc.includes(`\`_${name.split('_').slice(-2).join('_')}\``);
    expect(names.filter((n) => !documented(n))).toEqual([]);
  });
});
