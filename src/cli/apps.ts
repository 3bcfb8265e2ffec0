/**
 * `warden apps …`: the registered applications every sign-in belongs to, and their API keys
 * (docs/apps.md). A key is printed once, by `apps keys create`, the only time the API ever
 * answers with it; every other command shows its hint, label and dates.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { AppKeyView, AppView } from '../auth/apps';
import { durationMs } from '../shared/format';
import { act, list } from './command';
import { fields, section, table, when } from './format';
import { SetupError } from './http';

type Limit = { window_seconds: number; max_attempts: number } | null;

/** `15m`, `1h`: whole seconds */
function seconds(value: string): number {
  const ms = durationMs(value);
  if (!ms) throw new InvalidArgumentError('must be a duration like 90s, 15m, 1h or 90d');
  return ms / 1000;
}

/**
 * `100/1m` (at most 100 in any minute), or `none` (kept as the word: Commander turns a parser's
 * null into an empty string)
 */
function limit(value: string): Limit | 'none' {
  if (value === 'none') return 'none';
  const match = /^(\d{1,7})\/(.+)$/.exec(value.trim());
  const ms = match ? durationMs(match[2]!) : undefined;
  if (!match || !ms) throw new InvalidArgumentError('must be <max>/<window> like 100/1m or 5000/1h, or none');
  return { max_attempts: Number(match[1]), window_seconds: ms / 1000 };
}

/** A repeatable option's values, in order. */
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

const limitText = (l: Limit) => (l ? `${l.max_attempts} per ${l.window_seconds} s` : 'none');

function renderApp(a: AppView): string {
  return fields([
    ['client id', a.client_id],
    ['name', a.name],
    ['status', a.disabled ? `disabled since ${when(a.disabled_at)}` : 'enabled'],
    ['methods', a.methods.join(', ')],
    ['redirect URIs', a.redirect_uris.join(' ') || 'none'],
    ['web origins', a.web_origins.join(' ') || 'none'],
    ['token lifetime', `${a.token_ttl_seconds} s`],
    ['initiate limit', limitText(a.initiate_limit)],
    ['verify limit', limitText(a.verify_limit)],
    ['locale', a.locale ?? 'none (the user’s, then the default)'],
    ['created', `${when(a.created_at)} by ${a.created_by}`],
    ['updated', when(a.updated_at)],
  ]);
}

function renderKeys(keys: AppKeyView[]): string | undefined {
  if (!keys.length) return undefined;
  return table(keys, [
    { header: 'KEY ID', value: (k) => k.id },
    { header: 'HINT', value: (k) => `${k.hint}…` },
    { header: 'LABEL', value: (k) => k.label, max: 30 },
    { header: 'ACTIVE', value: (k) => (k.active ? 'yes' : 'no') },
    { header: 'CREATED', value: (k) => when(k.created_at) },
    { header: 'EXPIRES', value: (k) => when(k.expires_at) },
    { header: 'LAST USED', value: (k) => when(k.last_used_at) },
    { header: 'REVOKED', value: (k) => when(k.revoked_at) },
  ]);
}

interface SettingsFlags {
  name?: string;
  methods?: string[];
  redirectUri?: string[];
  webOrigin?: string[];
  clearRedirectUris?: boolean;
  clearWebOrigins?: boolean;
  tokenTtl?: number;
  initiateLimit?: Limit | 'none';
  verifyLimit?: Limit | 'none';
  locale?: string;
}

/** The options of `create` and `update`; `update` may also empty a list. */
function settingsOptions(command: Command, update: boolean): Command {
  command
    .option('--name <name>', 'what operators and users see')
    .option('--methods <list>', 'sms_otp, magic_link or both, comma-separated', list)
    .option('--redirect-uri <uri>', 'where a sign-in may return to (repeat for several; replaces the list)', collect)
    .option(
      '--web-origin <origin>',
      'a browser origin that may call Warden (repeat for several; replaces the list)',
      collect,
    )
    .option('--token-ttl <duration>', 'lifetime of the tokens issued to the app: 60s to 24h (default 15m)', seconds)
    .option('--initiate-limit <max/window>', 'the app’s own limit on initiates, e.g. 1000/1h, or none', limit)
    .option('--verify-limit <max/window>', 'the app’s own limit on verifies, e.g. 5000/1h, or none', limit)
    .option('--locale <tag>', 'the language of its users’ messages when they have none (en, pt-BR), or none');
  if (update)
    command
      .option('--clear-redirect-uris', 'leave the app without redirect URIs')
      .option('--clear-web-origins', 'leave the app without web origins');
  return command;
}

function settingsBody(opts: SettingsFlags): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: opts.name,
    methods: opts.methods,
    redirect_uris: opts.clearRedirectUris ? [] : opts.redirectUri,
    web_origins: opts.clearWebOrigins ? [] : opts.webOrigin,
    token_ttl_seconds: opts.tokenTtl,
    initiate_limit: opts.initiateLimit === 'none' ? null : opts.initiateLimit,
    verify_limit: opts.verifyLimit === 'none' ? null : opts.verifyLimit,
    locale: opts.locale === 'none' ? null : opts.locale,
  };
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
}

const path = (clientId: string) => `/apps/${encodeURIComponent(clientId)}`;

export function registerApps(program: Command): void {
  const apps = program.command('apps').description('registered applications (clients) and their API keys');

  apps
    .command('list')
    .description('every registered app')
    .action(
      act(async (ctx) => {
        const all: AppView[] = [];
        let cursor: string | undefined;
        do {
          const page = await ctx.api.get<{ apps: AppView[]; next_cursor: string | null }>('/apps', {
            limit: '500',
            cursor,
          });
          all.push(...page.apps);
          cursor = page.next_cursor ?? undefined;
        } while (cursor);
        ctx.print({ apps: all }, (a) =>
          a.apps.length
            ? table(a.apps, [
                { header: 'CLIENT ID', value: (x) => x.client_id },
                { header: 'NAME', value: (x) => x.name, max: 30 },
                { header: 'STATUS', value: (x) => (x.disabled ? 'disabled' : 'enabled') },
                { header: 'METHODS', value: (x) => x.methods.join(',') },
                { header: 'REDIRECT URIS', value: (x) => x.redirect_uris.length },
                { header: 'UPDATED', value: (x) => when(x.updated_at) },
              ])
            : 'no app is registered',
        );
      }),
    );

  apps
    .command('show')
    .description('an app’s settings and its keys (never a key itself)')
    .argument('<client-id>')
    .action(
      act(async (ctx, clientId: string) => {
        const app = await ctx.api.get<AppView>(path(clientId));
        const { keys } = await ctx.api.get<{ keys: AppKeyView[] }>(`${path(clientId)}/keys`);
        ctx.print({ app, keys }, (a) => [renderApp(a.app), section('Keys', renderKeys(a.keys))].join('\n'));
      }),
    );

  settingsOptions(
    apps
      .command('create')
      .description('register an app (then give it a key with `apps keys create` if it calls Warden from a server)')
      .argument('<client-id>', '3 to 64 of a-z 0-9 . _ -, starting with a letter or digit'),
    false,
  ).action(
    act(async (ctx, clientId: string, opts: SettingsFlags) => {
      if (!opts.name || !opts.methods) throw new SetupError('create needs --name and --methods');
      const app = await ctx.api.post<AppView>('/apps', { client_id: clientId, ...settingsBody(opts) });
      ctx.print(app, renderApp);
    }),
  );

  settingsOptions(
    apps.command('update').description('change what is given; the rest stays').argument('<client-id>'),
    true,
  ).action(
    act(async (ctx, clientId: string, opts: SettingsFlags) => {
      const body = settingsBody(opts);
      if (!Object.keys(body).length) throw new SetupError('nothing to change: give at least one option');
      const app = await ctx.api.patch<AppView>(path(clientId), body);
      ctx.print(app, renderApp);
    }),
  );

  for (const [action, description] of [
    ['disable', 'refuse the app’s sign-ins and its keys at once (nothing is deleted)'],
    ['enable', 'let a disabled app in again'],
  ] as const) {
    apps
      .command(action)
      .description(description)
      .argument('<client-id>')
      .action(
        act(async (ctx, clientId: string) => {
          const app = await ctx.api.post<AppView>(`${path(clientId)}/${action}`, {});
          ctx.print(app, (a) => `${a.client_id} is ${a.disabled ? 'disabled' : 'enabled'}`);
        }),
      );
  }

  const keys = apps.command('keys').description('an app’s API keys: create, list, revoke');

  keys
    .command('create')
    .description('a new key, printed this once: store it in the app’s secret store now')
    .argument('<client-id>')
    .option('--label <text>', 'what the key is for, e.g. production or rotation-2025-06')
    .option('--expires-in <duration>', 'the key stops working after this long, e.g. 90d (default: never)', seconds)
    .action(
      act(async (ctx, clientId: string, opts: { label?: string; expiresIn?: number }) => {
        const created = await ctx.api.post<{ key: string; info: AppKeyView }>(`${path(clientId)}/keys`, {
          label: opts.label,
          expires_in_seconds: opts.expiresIn,
        });
        ctx.print(created, (c) =>
          [
            c.key,
            '',
            fields([
              ['key id', c.info.id],
              ['label', c.info.label],
              ['expires', when(c.info.expires_at) ?? 'never'],
            ]),
            '',
            'This is the only time the key is shown; Warden keeps only its digest.',
          ].join('\n'),
        );
      }),
    );

  keys
    .command('list')
    .description('the app’s keys: hints, labels, expiry, last use, revocation')
    .argument('<client-id>')
    .action(
      act(async (ctx, clientId: string) => {
        const answer = await ctx.api.get<{ keys: AppKeyView[] }>(`${path(clientId)}/keys`);
        ctx.print(answer, (a) => renderKeys(a.keys) ?? `${clientId} has no keys`);
      }),
    );

  keys
    .command('revoke')
    .description('stop one key at once (the app’s other keys keep working)')
    .argument('<client-id>')
    .argument('<key-id>', 'as `apps keys list` shows it')
    .action(
      act(async (ctx, clientId: string, keyId: string) => {
        const revoked = await ctx.api.post<AppKeyView>(
          `${path(clientId)}/keys/${encodeURIComponent(keyId)}/revoke`,
          {},
        );
        ctx.print(revoked, (k) => `revoked key ${k.id} (${k.hint}…) of ${k.client_id}`);
      }),
    );
}
