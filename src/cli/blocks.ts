/**
 * `warden blocks …`: the IP blocklist. A blocked address or CIDR block gets 403 on every public
 * auth route from its next request on; a block can lapse on its own (`--ttl`) or be lifted.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { BlocklistEntry } from '../auth/blocklist';
import { durationMs } from '../shared/format';
import { act } from './command';
import { table, when } from './format';

type Entry = BlocklistEntry;

/** `30m`, `24h`, `7d` */
function ttl(value: string): number {
  const ms = durationMs(value);
  if (!ms) throw new InvalidArgumentError('must be a duration like 30m, 24h or 7d');
  return ms;
}

function renderEntries(entries: Entry[], all: boolean): string {
  if (!entries.length) return all ? 'the blocklist has never had an entry' : 'nothing is blocked';
  return table(entries, [
    { header: 'BLOCKED', value: (e) => e.cidr },
    ...(all ? [{ header: 'ACTIVE', value: (e: Entry) => (e.active ? 'yes' : 'no') }] : []),
    { header: 'UNTIL', value: (e) => when(e.removed_at ?? e.expires_at) ?? 'lifted by hand' },
    { header: 'BY', value: (e) => e.created_by },
    { header: 'INCIDENT', value: (e) => e.incident_id },
    { header: 'SINCE', value: (e) => when(e.created_at) },
    { header: 'REASON', value: (e) => e.reason, max: 60 },
  ]);
}

export function registerBlocks(program: Command): void {
  const blocks = program.command('blocks').description('the IP blocklist: who is refused on every public auth route');

  blocks
    .command('list')
    .description('what is blocked now')
    .option('--all', 'also blocks that expired or were lifted')
    .action(
      act(async (ctx, opts: { all?: boolean }) => {
        const answer = await ctx.api.get<{ entries: Entry[] }>('/blocklist/ip', { all: opts.all ? 'true' : undefined });
        ctx.print(answer, (a) => renderEntries(a.entries, Boolean(opts.all)));
      }),
    );

  blocks
    .command('add')
    .description('block an address or CIDR block (blocking it again refreshes the reason and expiry)')
    .argument('<ip-or-cidr>', 'e.g. 203.0.113.7, 198.51.100.0/24 or 2001:db8::/48')
    .requiredOption('--reason <text>', 'why (kept with the block and in the audit trail)')
    .option('--ttl <duration>', 'lift it automatically after this long: 30m, 24h, 7d (default: until removed)', ttl)
    .option('--incident <id>', 'the incident this is for')
    .action(
      act(async (ctx, ip: string, opts: { reason: string; ttl?: number; incident?: string }) => {
        const answer = await ctx.api.post<{ entry: Entry }>('/blocklist/ip', {
          ip,
          reason: opts.reason,
          expires_at: opts.ttl ? new Date(Date.now() + opts.ttl).toISOString() : undefined,
          incident_id: opts.incident,
        });
        ctx.print(answer, ({ entry }) => `blocked ${entry.cidr} until ${when(entry.expires_at) ?? 'removed'}`);
      }),
    );

  blocks
    .command('remove')
    .description('lift a block (name it as it was added)')
    .argument('<ip-or-cidr>', 'the blocked address or CIDR block')
    .action(
      act(async (ctx, ip: string) => {
        const answer = await ctx.api.delete<{ removed: Entry[] }>('/blocklist/ip', { ip });
        ctx.print(answer, (a) => `lifted ${a.removed.map((e) => e.cidr).join(', ')}`);
      }),
    );
}
