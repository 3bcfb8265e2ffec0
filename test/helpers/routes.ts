import type { WardenApp } from '../../src/api/app';

/** One route of a real app: its method and URL template (`:param` segments as registered). */
export interface AppRoute {
  method: string;
  url: string;
}

const LINE = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/;

/**
 * Every route a built Fastify app serves, read from its own router (`printRoutes`), so a test
 * that walks this list covers routes added later without being edited. HEAD routes Fastify adds
 * for each GET are listed too.
 */
export function appRoutes(app: WardenApp): AppRoute[] {
  const tree = app.printRoutes({ commonPrefix: false });
  const stack: string[] = [];
  const routes: AppRoute[] = [];
  for (const line of tree.split('\n')) {
    if (!line.trim()) continue;
    const match = LINE.exec(line);
    if (!match) throw new Error(`unexpected printRoutes line: ${JSON.stringify(line)}`);
    const depth = (match[1] ?? '').length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    const methods = (match[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m && m !== '-');
    const url = stack.join('');
    for (const method of methods) routes.push({ method, url });
  }
  return routes;
}

/** The `:name` parameters of a URL template. */
export function routeParams(url: string): string[] {
  return [...url.matchAll(/:(\w+)/g)].map((m) => m[1]!);
}
