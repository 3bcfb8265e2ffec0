/**
 * `warden routes …`: which provider sends each channel's codes and links, the circuits in
 * front of them, and the switch to the backup and back (a provider outage's first move).
 */
import { Argument, Command } from 'commander';
import { CHANNELS, PROVIDERS } from '../shared/delivery';
import { act } from './command';
import { section, table, when } from './format';
import { Refusal } from './http';

interface Circuit {
  provider: string;
  state: string;
  consecutive_failures: number;
  opened_at: string | null;
  probe_after: string | null;
}
interface Route {
  channel: string;
  primary_provider: string;
  backup_provider: string | null;
  failover_threshold: number;
  enabled: boolean;
  mode: string;
  updated_at: string;
  updated_by: string;
  change_reason: string | null;
  incident_id: string | null;
  circuits: Circuit[];
}

/** Which provider is sending now: the backup when switched to it, otherwise the primary. */
const sending = (r: Route) =>
  !r.enabled ? 'nobody (channel off)' : r.mode === 'backup' ? r.backup_provider : r.primary_provider;

function renderRoutes(routes: Route[]): string {
  return [
    table(routes, [
      { header: 'CHANNEL', value: (r) => r.channel },
      { header: 'SENDING', value: sending },
      { header: 'PRIMARY', value: (r) => r.primary_provider },
      { header: 'BACKUP', value: (r) => r.backup_provider },
      { header: 'MODE', value: (r) => r.mode },
      { header: 'ENABLED', value: (r) => (r.enabled ? 'yes' : 'NO') },
      { header: 'FAILOVER AT', value: (r) => `${r.failover_threshold} failures` },
      { header: 'CHANGED', value: (r) => `${when(r.updated_at)} by ${r.updated_by}` },
      { header: 'WHY', value: (r) => r.change_reason, max: 50 },
    ]),
    section(
      'Circuits',
      table(
        routes.flatMap((r) => r.circuits.map((c) => ({ channel: r.channel, ...c }))),
        [
          { header: 'CHANNEL', value: (c) => c.channel },
          { header: 'PROVIDER', value: (c) => c.provider },
          { header: 'STATE', value: (c) => c.state },
          { header: 'FAILURES', value: (c) => c.consecutive_failures },
          { header: 'OPENED', value: (c) => when(c.opened_at) },
          { header: 'PROBE AFTER', value: (c) => when(c.probe_after) },
        ],
      ),
    ),
  ].join('\n');
}

export function registerRoutes(program: Command): void {
  const routes = program
    .command('routes')
    .description('delivery routes: which provider sends SMS and email, and the switch to the backup and back');

  routes
    .command('show')
    .description('every channel: who is sending, primary and backup, circuits, last change')
    .addArgument(new Argument('[channel]', 'only this channel').choices(CHANNELS))
    .action(
      act(async (ctx, channel: string | undefined) => {
        if (channel) {
          ctx.print(await ctx.api.get<Route>(`/delivery/routes/${channel}`), (r) => renderRoutes([r]));
          return;
        }
        ctx.print(await ctx.api.get<{ routes: Route[] }>('/delivery/routes'), (a) => renderRoutes(a.routes));
      }),
    );

  routes
    .command('switch')
    .description(
      'send a channel through its backup (or back through its primary); name the target as ' +
        '`backup` / `primary` or as the provider, e.g. `routes switch sms plivo`',
    )
    .addArgument(new Argument('<channel>', 'the channel').choices(CHANNELS))
    .addArgument(
      new Argument('<to>', 'backup, primary, or the provider that should send').choices([
        'backup',
        'primary',
        ...PROVIDERS,
      ]),
    )
    .option('--reason <text>', 'why (recorded with the change)')
    .option('--incident <id>', 'the incident this is for')
    .action(
      act(async (ctx, channel: string, to: string, opts: { reason?: string; incident?: string }) => {
        let target = to;
        if (to !== 'backup' && to !== 'primary') {
          const route = await ctx.api.get<Route>(`/delivery/routes/${channel}`);
          if (to === route.backup_provider) target = 'backup';
          else if (to === route.primary_provider) target = 'primary';
          else
            throw new Refusal(
              'not_on_route',
              `${to} is neither the primary (${route.primary_provider}) nor the backup (${route.backup_provider ?? 'none'}) of ${channel}`,
            );
        }
        const route = await ctx.api.post<Route>(`/delivery/routes/${channel}/switch`, {
          to: target,
          reason: opts.reason,
          incident_id: opts.incident,
        });
        ctx.print(
          route,
          (r) => `${r.channel} now sends through ${sending(r)} (mode ${r.mode})\n\n${renderRoutes([r])}`,
        );
      }),
    );
}
