/**
 * `warden runbooks …`: runs of the incident runbooks. Start one by hand (standalone, or
 * attached to an open incident whose timeline then gets every step), see where it is, decide
 * the steps that wait for an admin, cancel it (undoing what can safely be undone).
 */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { plainName } from '../shared/format';
import { SEVERITIES } from '../shared/incidents';
import { RUNBOOK_NAMES } from '../shared/runbookRegistry';
import type { RunbookState, RunbookStepState } from '../shared/runbooks';
import { act, list } from './command';
import { fields, section, table, when } from './format';

interface RunRow {
  workflow_id: string;
  runbook: string;
  incident_id: string | null;
  severity: string;
  status: string;
  started_by: string | null;
  started_at: string | null;
  ended_at: string | null;
  summary: string | null;
}
/** A finished run whose workflow history is gone comes from its stored copy, in snake_case. */
type StoredRun = Partial<RunRow> & {
  from: 'projection';
  steps?: Array<{ step: string; status: string; summary?: string }>;
};
type Run = RunbookState | StoredRun;

const runPath = (id: string, action = '') => `/runbooks/runs/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;

function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('must be JSON, e.g. \'{"readOnly":"never"}\'');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError('must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** What the approval column says: waiting, who decided and how, or that the step will ask. */
function approvalOf(step: RunbookStepState): string {
  if (step.status === 'awaiting_approval') return 'WAITING';
  const { how, by } = step.approval;
  if (how && how !== 'not_required') return by ? `${how} (${plainName(by)})` : how;
  return step.approval.required && step.status === 'pending' ? 'will ask' : '';
}

function renderRun(run: Run): string {
  if ('from' in run) {
    return [
      fields([
        ['workflow', run.workflow_id],
        ['runbook', run.runbook],
        ['incident', run.incident_id],
        ['severity', run.severity],
        ['status', run.status],
        ['started', when(run.started_at)],
        ['ended', when(run.ended_at)],
        ['summary', run.summary],
        ['note', 'the run has ended and left Temporal: this is its stored record'],
      ]),
      section(
        'Steps',
        run.steps?.length
          ? table(run.steps, [
              { header: 'STEP', value: (s) => s.step },
              { header: 'STATUS', value: (s) => s.status },
              { header: 'SUMMARY', value: (s) => s.summary },
            ])
          : undefined,
      ),
    ].join('\n');
  }
  const waiting = run.steps.filter((s) => s.status === 'awaiting_approval');
  return [
    fields([
      ['workflow', run.workflowId],
      ['runbook', run.runbook],
      ['incident', run.incidentId],
      ['severity', run.severity],
      ['status', run.status],
      ['started', when(run.startedAt)],
      [
        'started by',
        run.startedBy && `${plainName(run.startedBy)}${run.startedByRole ? ` (${run.startedByRole})` : ''}`,
      ],
      ['ended', when(run.endedAt)],
      ['cancelled', run.cancel && `by ${plainName(run.cancel.by)}: ${run.cancel.reason}`],
    ]),
    section(
      'Steps',
      table(run.steps, [
        { header: 'STEP', value: (s) => s.name },
        { header: 'STATUS', value: (s) => s.status },
        { header: 'APPROVAL', value: approvalOf },
        { header: 'SUMMARY', value: (s) => s.error ?? s.summary ?? s.title, max: 80 },
      ]),
    ),
    ...waiting.map(
      (s) => `\nwaiting for an admin: ${s.title}\n  warden runbooks approve ${run.workflowId} ${s.name}   (or reject)`,
    ),
  ].join('\n');
}

export function registerRunbooks(program: Command): void {
  const runbooks = program
    .command('runbooks')
    .description('start, watch and steer runbook runs: approve or reject waiting steps, cancel a run');

  runbooks
    .command('list')
    .description('runbook runs, newest first, and the runbooks there are')
    .addOption(new Option('--runbook <name>', 'only runs of this runbook').choices(RUNBOOK_NAMES))
    .addOption(
      new Option('--status <status>', 'only runs in this state').choices([
        'running',
        'completed',
        'failed',
        'cancelled',
      ]),
    )
    .option('--incident <id>', 'only runs attached to this incident')
    .action(
      act(async (ctx, opts: { runbook?: string; status?: string; incident?: string }) => {
        const answer = await ctx.api.get<{ available: string[]; runs: RunRow[] }>('/runbooks', {
          runbook: opts.runbook,
          status: opts.status,
          incident_id: opts.incident,
        });
        ctx.print(answer, ({ available, runs }) =>
          [
            runs.length
              ? table(runs, [
                  { header: 'RUN', value: (r) => r.workflow_id },
                  { header: 'RUNBOOK', value: (r) => r.runbook },
                  { header: 'SEV', value: (r) => r.severity },
                  { header: 'STATUS', value: (r) => r.status },
                  { header: 'INCIDENT', value: (r) => r.incident_id },
                  { header: 'STARTED', value: (r) => when(r.started_at) },
                  { header: 'SUMMARY', value: (r) => r.summary, max: 60 },
                ])
              : 'no runs match',
            `\nrunbooks: ${available.join(', ')}`,
          ].join('\n'),
        );
      }),
    );

  runbooks
    .command('show')
    .description('one run: every step, its status and approval, and what waits for you')
    .argument('<run>', 'the run id (workflow id), as `runbooks list` and `runbooks start` print it')
    .action(
      act(async (ctx, id: string) => {
        ctx.print(await ctx.api.get<Run>(runPath(id)), renderRun);
      }),
    );

  runbooks
    .command('start')
    .description('start a runbook by hand; at P1-P3 its destructive steps wait for approval')
    .addArgument(new Argument('<name>', 'which runbook').choices(RUNBOOK_NAMES))
    .addOption(
      new Option('--severity <severity>', 'decides which steps wait for approval')
        .choices(SEVERITIES)
        .makeOptionMandatory(),
    )
    .option('--incident <id>', 'attach the run to this open incident (its timeline gets every step)')
    .option('--users <ids>', 'affected user ids, comma-separated', list)
    .option('--ips <addresses>', 'affected IPs or CIDR blocks, comma-separated', list)
    .option('--params <json>', "the runbook's parameters as a JSON object (docs/runbooks.md lists them)", jsonObject)
    .option('--approve <steps>', 'steps approved up front, comma-separated (needs the admin role)', list)
    .option('--request-id <id>', 'makes the start safe to retry: the same id names the same run')
    .action(
      act(
        async (
          ctx,
          name: string,
          opts: {
            severity: string;
            incident?: string;
            users?: string[];
            ips?: string[];
            params?: Record<string, unknown>;
            approve?: string[];
            requestId?: string;
          },
        ) => {
          const answer = await ctx.api.post<{ workflow_id: string; runbook: string; existing?: boolean }>(
            `/runbooks/${encodeURIComponent(name)}`,
            {
              severity: opts.severity,
              incident_id: opts.incident,
              users: opts.users,
              ips: opts.ips,
              params: opts.params,
              approve: opts.approve,
              request_id: opts.requestId,
            },
          );
          ctx.print(answer, (a) =>
            [
              `${a.existing ? 'already running' : 'started'}: ${a.runbook} as ${a.workflow_id}`,
              `  warden runbooks show ${a.workflow_id}`,
            ].join('\n'),
          );
        },
      ),
    );

  for (const [verb, approve] of [
    ['approve', true],
    ['reject', false],
  ] as const) {
    runbooks
      .command(verb)
      .description(
        approve ? 'let a step that waits for approval run' : 'refuse a step that waits for approval: it is skipped',
      )
      .argument('<run>', 'the run id (workflow id)')
      .argument('<step>', 'the step name, as `runbooks show` prints it')
      .option('--note <text>', 'why (recorded with the decision)')
      .action(
        act(async (ctx, id: string, step: string, opts: { note?: string }) => {
          const run = await ctx.api.post<RunbookState>(runPath(id, verb), { step, note: opts.note });
          ctx.print(
            run,
            (r) =>
              `${step} ${approve ? 'approved: the run goes on' : 'rejected: the run skips it'}; ` +
              `follow it with: warden runbooks show ${r.workflowId}`,
          );
        }),
      );
  }

  runbooks
    .command('cancel')
    .description('stop a run; by default undoes what it did that can safely be undone, newest first')
    .argument('<run>', 'the run id (workflow id)')
    .requiredOption('--reason <text>', 'why (recorded on the run and the incident)')
    .option('--no-compensate', 'stop without undoing anything')
    .action(
      act(async (ctx, id: string, opts: { reason: string; compensate: boolean }) => {
        const run = await ctx.api.post<RunbookState>(runPath(id, 'cancel'), {
          reason: opts.reason,
          compensate: opts.compensate,
        });
        ctx.print(
          run,
          (r) =>
            `cancelling ${r.workflowId} (${opts.compensate ? 'undoing what can be undone' : 'leaving everything in place'}); ` +
            `follow it with: warden runbooks show ${r.workflowId}`,
        );
      }),
    );
}
