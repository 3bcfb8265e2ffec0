/**
 * The determinism lint must see every module of ours the workflow bundle contains, or a Node
 * builtin or an I/O library can reach workflow code through a module it does not look at.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');

/** What an import names, as a file: `./x` is `./x.ts` or `./x/index.ts` (a `.js` suffix means `.ts`). */
function resolveImport(from: string, specifier: string): string {
  const base = path.resolve(path.dirname(from), specifier.replace(/\.js$/, ''));
  const found = [`${base}.ts`, path.join(base, 'index.ts')].find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`${path.relative(root, from)}: cannot resolve ${specifier}`);
  return found;
}

/**
 * Our files the bundle contains, from `entry`: each file is compiled alone, as the bundler does,
 * so imports used only as types are dropped and only what reaches the bundle is followed.
 */
function bundledFiles(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    for (const [, specifier] of js.matchAll(/^\s*(?:import|export)\b[^'"]*?['"](\.{1,2}\/[^'"]+)['"]/gm)) {
      visit(resolveImport(file, specifier!));
    }
  };
  visit(entry);
  return [...seen].map((file) => path.relative(root, file)).sort();
}

/** Whether the determinism rule (no Node builtins, no I/O libraries) applies to a file. */
async function determinismLinted(eslint: ESLint, file: string): Promise<boolean> {
  const config = (await eslint.calculateConfigForFile(path.join(root, file))) as {
    rules?: Record<string, unknown>;
  };
  const rule = config.rules?.['no-restricted-imports'];
  if (!Array.isArray(rule) || (rule[0] !== 2 && rule[0] !== 'error')) return false;
  const paths = (rule[1] as { paths?: Array<{ name: string }> } | undefined)?.paths ?? [];
  return ['fs', 'pg', '@temporalio/activity'].every((name) => paths.some((p) => p.name === name));
}

describe('the determinism lint', () => {
  const files = bundledFiles(path.join(root, 'src/workflows/index.ts'));

  it('follows the bundle beyond src/workflows (the walk sees the shared modules)', () => {
    expect(files).toContain('src/workflows/runbooks/framework.ts');
    expect(files).toContain('src/shared/incidents.ts');
    // a type-only import does not reach the bundle
    expect(files).not.toContain('src/activities/index.ts');
  });

  it('covers every module of ours the workflow bundle imports', { timeout: 30_000 }, async () => {
    const eslint = new ESLint({ cwd: root });
    const uncovered: string[] = [];
    for (const file of files) if (!(await determinismLinted(eslint, file))) uncovered.push(file);
    expect(uncovered, 'move these under src/workflows or src/shared, or list them in eslint.config.mjs').toEqual([]);
  });
});
