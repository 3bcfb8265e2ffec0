/**
 * `warden incidents …`: find, read and steer incidents through the admin API. Every change is
 * an update of the incident's workflow; the API answers with the new state, or with 202
 * `pending` when the workflow has not finished within its wait (the change still happens).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { plainName } from '../shared/format';
import {
  INCIDENT_STATUSES,
  INCIDENT_TYPES,
  INTERNAL_ROLES,
  SEVERITIES,
  type IncidentState,
  type PreventiveAction,
  type TimelineEntry,
} from '../shared/incidents';
import { act, type Context } from './command';
import { fields, section, table, when } from './format';
import { Refusal } from './http';

interface Summary {
  id: string;
  type: string;
  severity: string;
  status: string;
  title: string | null;
  started_at: string | null;
  closed: boolean;
}
interface Pending {
  id: string;
  status: 'pending';
  message: string;
}
type Answer = IncidentState | Pending;

const CATEGORIES = ['code', 'monitoring', 'process', 'infrastructure'] as const;
type Category = (typeof CATEGORIES)[number];
const RESOLVE_POLL_MS = 2_000;
const RESOLVE_WAIT_MS = 10 * 60_000;

const path = (id: string, action = '') => `/incidents/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;
const isPending = (answer: Answer): answer is Pending => answer.status === 'pending';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of 1 or more');
  return n;
}

/** `--preventive-action "monitoring: alert on the SMS failure rate"` */
function preventiveAction(value: string, previous: Array<{ category: Category; description: string }> = []) {
  const match = /^\s*([a-z]+)\s*:\s*(\S.*)$/s.exec(value);
  const category = match?.[1] as Category | undefined;
  if (!match || !category || !CATEGORIES.includes(category))
    throw new InvalidArgumentError(`write it as "<category>: <what>", category one of ${CATEGORIES.join(', ')}`);
  return [...previous, { category, description: match[2]!.trim() }];
}

/** Fixed widths: `--follow` prints it a few rows at a time, and the rows must still line up. */
function timelineTable(entries: readonly TimelineEntry[], header = true): string {
  const text = table(entries, [
    { header: 'WHEN', value: (e) => when(e.at), width: 23 },
    { header: 'KIND', value: (e) => e.kind, width: 17 },
    { header: 'BY', value: (e) => (e.by ? plainName(e.by) : e.role), max: 20, width: 20 },
    { header: 'MESSAGE', value: (e) => e.message },
  ]);
  return header ? text : text.slice(text.indexOf('\n') + 1);
}

const RECENT = 10;

function renderState(s: IncidentState): string {
  const affected = (names: string[]) =>
    names.length ? `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` (+${names.length - 5} more)` : ''}` : '';
  const head = fields([
    ['id', s.id],
    ['title', s.title],
    ['status', s.status],
    ['severity', s.severity],
    ['type', s.type],
    ['impact', s.impact],
    ['owner', s.owner ? plainName(s.owner) : 'nobody yet: `warden incidents ack` takes it'],
    ['opened by', `${plainName(s.openedBy)} (${s.source})`],
    ['detected', when(s.detectedAt)],
    ['acknowledged', s.acknowledgedAt && `${when(s.acknowledgedAt)} by ${plainName(s.acknowledgedBy ?? '?')}`],
    ['mitigating since', when(s.mitigatingAt)],
    ['resolved', when(s.resolvedAt)],
    ['data breach', s.dataBreach ? 'YES' : undefined],
    ['ddos', s.ddos ? 'yes' : undefined],
    ['affected users', affected(s.affected.users)],
    ['affected ips', affected(s.affected.ips)],
    ['affected providers', affected(s.affected.providers)],
    ['runbook', s.runbook && `${s.runbook.workflowId} (${s.runbook.status})`],
    ['root cause', s.rootCause],
    ['resolution', s.resolution],
    ['forced', s.forcedResolution && `by ${plainName(s.forcedResolution.by)}: ${s.forcedResolution.reason}`],
  ]);
  const open = s.tasks.filter((t) => t.status === 'open' || t.status === 'overdue');
  const parts = [
    head,
    section(
      'Escalations',
      s.escalations.length
        ? table(s.escalations, [
            { header: 'ROLE', value: (e) => e.role },
            { header: 'AT', value: (e) => when(e.at) },
            { header: 'REASON', value: (e) => e.reason },
          ])
        : undefined,
    ),
    section(
      'Open tasks',
      open.length
        ? table(open, [
            { header: 'TASK', value: (t) => t.id },
            { header: 'STATUS', value: (t) => t.status },
            { header: 'DUE', value: (t) => when(t.dueAt) },
            { header: 'WHAT', value: (t) => t.title },
          ])
        : undefined,
    ),
    section(
      'Preventive actions',
      s.preventiveActions.length
        ? table(s.preventiveActions, [
            { header: 'CATEGORY', value: (a) => a.category },
            { header: 'OWNER', value: (a) => a.owner },
            { header: 'DUE', value: (a) => a.due },
            { header: 'WHAT', value: (a) => a.description },
          ])
        : undefined,
      'none yet: resolving needs one',
    ),
    section(
      s.timeline.length > RECENT ? `Timeline (last ${RECENT} of ${s.timeline.length})` : 'Timeline',
      s.timeline.length ? timelineTable(s.timeline.slice(-RECENT)) : undefined,
    ),
  ];
  return parts.join('\n');
}

/** The state after a change, or the API's note that the change is still running. */
function printAnswer(ctx: Context, answer: Answer, done: (s: IncidentState) => string): void {
  ctx.print(answer, (a) => (isPending(a) ? `${a.id}: ${a.message}` : done(a)));
}

/** After resolve's 202: the checks run on; wait for the incident to close or the checks to end without it. */
async function awaitResolution(ctx: Context, id: string): Promise<IncidentState> {
  ctx.say('the recovery checks are still running; waiting for them (Ctrl-C stops waiting, not the checks)');
  const deadline = Date.now() + RESOLVE_WAIT_MS;
  for (;;) {
    await sleep(RESOLVE_POLL_MS);
    const s = await ctx.api.get<IncidentState>(path(id));
    if (s.status === 'resolved') return s;
    if (!s.checklistRunning) {
      const failed = s.checklist.filter((item) => item.status !== 'passed' && item.status !== 'not_applicable');
      throw new Refusal(
        'checklist_failed',
        `recovery validation checklist not passed: ${failed.map((i) => `${i.id} (${i.status})`).join(', ') || 'see the timeline'}`,
      );
    }
    if (Date.now() > deadline)
      throw new Refusal(
        'still_running',
        `the checks are still running after ${RESOLVE_WAIT_MS / 60_000} min: see warden incidents show ${id}`,
      );
  }
}

export function registerIncidents(program: Command): void {
  const incidents = program
    .command('incidents')
    .description('find, read and steer incidents: acknowledge, escalate, note, resolve, follow the timeline');

  incidents
    .command('list')
    .description('incidents, newest first (open and closed; filter with the flags)')
    .addOption(new Option('--status <status>', 'only this status').choices(INCIDENT_STATUSES))
    .addOption(new Option('--type <type>', 'only this type').choices(INCIDENT_TYPES))
    .addOption(new Option('--severity <severity>', 'only this severity').choices(SEVERITIES))
    .option('--limit <n>', 'at most this many (API maximum 200)', positiveInt)
    .action(
      act(async (ctx, opts: { status?: string; type?: string; severity?: string; limit?: number }) => {
        const answer = await ctx.api.get<{ incidents: Summary[] }>('/incidents', {
          status: opts.status,
          type: opts.type,
          severity: opts.severity,
          limit: opts.limit?.toString(),
        });
        ctx.print(answer, ({ incidents: rows }) =>
          rows.length
            ? table(rows, [
                { header: 'ID', value: (r) => r.id },
                { header: 'SEV', value: (r) => r.severity },
                { header: 'STATUS', value: (r) => r.status },
                { header: 'TYPE', value: (r) => r.type },
                { header: 'STARTED', value: (r) => when(r.started_at) },
                { header: 'TITLE', value: (r) => r.title, max: 60 },
              ])
            : 'no incidents match',
        );
      }),
    );

  incidents
    .command('show')
    .description('one incident: who owns it, what is open, its latest timeline entries')
    .argument('<id>', 'the incident id, e.g. INC-2025-01-15-01')
    .action(
      act(async (ctx, id: string) => {
        ctx.print(await ctx.api.get<IncidentState>(path(id)), renderState);
      }),
    );

  incidents
    .command('ack')
    .description('acknowledge the incident: you own it, and the escalation clock stops')
    .argument('<id>', 'the incident id')
    .option('--note <text>', 'what you are doing about it (goes on the timeline)')
    .action(
      act(async (ctx, id: string, opts: { note?: string }) => {
        const answer = await ctx.api.post<Answer>(path(id, 'ack'), { note: opts.note });
        printAnswer(ctx, answer, (s) => `${s.id} acknowledged; owner ${plainName(s.owner ?? '?')}, status ${s.status}`);
      }),
    );

  incidents
    .command('escalate')
    .description('page the next role of the escalation path now (or a role you name)')
    .argument('<id>', 'the incident id')
    .requiredOption('--reason <text>', 'why you need them (they read it in the page)')
    .addOption(new Option('--role <role>', 'page this role rather than the next one').choices(INTERNAL_ROLES))
    .action(
      act(async (ctx, id: string, opts: { reason: string; role?: string }) => {
        const answer = await ctx.api.post<Answer>(path(id, 'escalate'), { reason: opts.reason, role: opts.role });
        printAnswer(ctx, answer, (s) => {
          const last = s.escalations.at(-1);
          return last ? `${s.id} escalated to ${last.role} at ${when(last.at)}` : `${s.id} escalated`;
        });
      }),
    );

  incidents
    .command('note')
    .description('add a note to the timeline (what you saw, what you tried)')
    .argument('<id>', 'the incident id')
    .argument('<text...>', 'the note; quoting is optional')
    .action(
      act(async (ctx, id: string, words: string[]) => {
        const answer = await ctx.api.post<Answer>(path(id, 'notes'), { text: words.join(' ') });
        printAnswer(ctx, answer, (s) => `note added to ${s.id} (${s.timeline.length} timeline entries)`);
      }),
    );

  incidents
    .command('resolve')
    .description(
      'close the incident: records the root cause and preventive actions you give, then resolves ' +
        '(needs at least one preventive action, open tasks done and the recovery checks passed)',
    )
    .argument('<id>', 'the incident id')
    .requiredOption('--resolution <text>', 'what fixed it')
    .option('--root-cause <text>', 'why it happened (recorded first, once)')
    .option(
      '--preventive-action <category: what>',
      `what keeps it from happening again; repeatable; category ${CATEGORIES.join(', ')}`,
      preventiveAction,
    )
    .option('--impact <text>', 'the impact, for the report')
    .option('--went-well <text>', 'for the report')
    .option('--to-improve <text>', 'for the report')
    .option(
      '--force <reason>',
      'skip the recovery checklist (not the preventive action); the reason goes in the report',
    )
    .action(
      act(
        async (
          ctx,
          id: string,
          opts: {
            resolution: string;
            rootCause?: string;
            preventiveAction?: Array<{ category: Category; description: string }>;
            impact?: string;
            wentWell?: string;
            toImprove?: string;
            force?: string;
          },
        ) => {
          // what is already recorded is not sent again, so the command can simply be rerun
          const before = await ctx.api.get<IncidentState>(path(id));
          if (opts.rootCause && before.rootCause !== opts.rootCause) {
            await ctx.api.post(path(id, 'root-cause'), { text: opts.rootCause });
            ctx.say('root cause recorded');
          }
          const known = (a: { category: string; description: string }) =>
            before.preventiveActions.some(
              (p: PreventiveAction) => p.category === a.category && p.description === a.description,
            );
          for (const action of opts.preventiveAction ?? []) {
            if (known(action)) continue;
            await ctx.api.post(path(id, 'preventive-actions'), action);
            ctx.say(`preventive action recorded (${action.category})`);
          }
          let answer = await ctx.api.post<Answer>(path(id, 'resolve'), {
            resolution: opts.resolution,
            impact: opts.impact,
            went_well: opts.wentWell,
            to_improve: opts.toImprove,
            ...(opts.force ? { force: true, reason: opts.force } : {}),
          });
          if (isPending(answer)) answer = await awaitResolution(ctx, id);
          printAnswer(ctx, answer, (s) => `${s.id} resolved at ${when(s.resolvedAt)}`);
        },
      ),
    );

  incidents
    .command('timeline')
    .description('the incident timeline; with --follow, keep printing new entries until it is resolved (Ctrl-C stops)')
    .argument('<id>', 'the incident id')
    .option('-f, --follow', 'keep polling and print entries as they arrive')
    .option('--interval <seconds>', 'how often --follow polls', positiveInt, 3)
    .action(
      act(async (ctx, id: string, opts: { follow?: boolean; interval: number }) => {
        let s = await ctx.api.get<IncidentState>(path(id));
        if (!opts.follow) {
          ctx.print(s.timeline, (entries) => (entries.length ? timelineTable(entries) : 'no timeline entries'));
          return;
        }
        // the timeline only grows (entries are appended, never rewritten), so a count is a cursor
        let shown = 0;
        const show = (entries: TimelineEntry[]) => {
          const fresh = entries.slice(shown);
          shown = entries.length;
          if (ctx.json) for (const entry of fresh) process.stdout.write(`${JSON.stringify(entry)}\n`);
          else if (fresh.length) process.stdout.write(`${timelineTable(fresh, false)}\n`);
        };
        if (!ctx.json) process.stdout.write(`${timelineTable([])}\n`);
        show(s.timeline);
        while (s.status !== 'resolved') {
          await sleep(opts.interval * 1000);
          s = await ctx.api.get<IncidentState>(path(id));
          show(s.timeline);
        }
        ctx.say(`${s.id} is resolved`);
      }),
    );
}
