/**
 * The responders' saved views (docs/observability.md) as Temporal visibility queries on the dev
 * server: each query of the doc's table parses and finds the workflows it promises, and a
 * runbook run's RunbookStatus follows it from waiting for an admin to completed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/authClient';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

/** The rows of the doc's saved-views table: the view's name and its query (the first code span). */
function savedViews(): Array<{ view: string; query: string }> {
  const doc = readFileSync(path.join(process.cwd(), 'docs', 'observability.md'), 'utf8');
  const section = doc.split('### Saved views for responders')[1]!.split(/\n#{2,3} /)[0]!;
  return section
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| view '))
    .map((line) => {
      const [, view = '', rest = ''] = line.split('|').map((cell) => cell.trim());
      return { view, query: /`([^`]+)`/.exec(rest)?.[1] ?? '' };
    });
}

describe('saved views and the RunbookStatus search attribute', () => {
  let h: Harness;
  let pat: { authorization: string };
  /** a P1 compromised-token incident opened by pat, whose runbook waits at rotate_keys */
  let urgent: string;
  let urgentRun: string;
  /** a P3 incident without a runbook, opened by the bootstrap admin */
  let minor: string;

  const call = (headers: { authorization: string }, method: 'GET' | 'POST', url: string, payload?: unknown) =>
    h.admin.inject({
      method,
      url: `/admin/api/v1${url}`,
      headers,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  /** the workflow ids of this file's task queue that `query` finds */
  const found = async (query: string): Promise<string[]> => {
    const ids: string[] = [];
    for await (const wf of h.runtime.temporal.client.workflow.list({
      query: `(${query}) AND TaskQueue = "${h.config.temporal.taskQueue}"`,
    }))
      ids.push(wf.workflowId);
    return ids.sort();
  };
  const finds = (query: string, expected: string[]) =>
    waitFor(
      `${query} to find ${expected.join(', ') || 'nothing'}`,
      async () => {
        const ids = await found(query);
        return JSON.stringify(ids) === JSON.stringify([...expected].sort()) ? ids : undefined;
      },
      20_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; found ${JSON.stringify(await found(query))}`);
    });

  beforeAll(async () => {
    h = await startHarness();
    pat = await operatorHeaders(h, 'pat', 'responder');
    const open = async (headers: { authorization: string }, body: Record<string, unknown>) => {
      const res = await call(headers, 'POST', '/incidents', body);
      expect(res.statusCode, res.body).toBe(201);
      return res.json<{ id: string }>().id;
    };
    urgent = await open(pat, { type: 'compromised_token', severity: 'P1', title: 'saved views: tokens in a ticket' });
    minor = await open(h.adminHeaders, { type: 'other', severity: 'P3', title: 'saved views: a slow page' });
    urgentRun = `${urgent}-runbook`;
    await waitFor('rotate_keys to wait for an admin', async () => {
      const res = await call(h.adminHeaders, 'GET', `/runbooks/runs/${urgentRun}`);
      const step = res
        .json<{ steps?: Array<{ name: string; status: string }> }>()
        .steps?.find((s) => s.name === 'rotate_keys');
      return step?.status === 'awaiting_approval' ? step : undefined;
    });
  });
  afterAll(async () => h?.close());

  it('runs every saved view of docs/observability.md and gets the workflows it promises', async () => {
    const views = savedViews();
    // what each view finds among this file's workflows, while the runbook waits for an admin
    const expected: Record<string, string[]> = {
      'Open incidents': [urgent, minor],
      'Open P0 and P1': [urgent],
      'Still investigating (not yet mitigating)': [urgent, minor],
      'Everything about one incident': [urgent, urgentRun],
      'Runbooks under way': [urgentRun],
      'Runbook steps waiting for an admin': [urgentRun],
      'Runbooks undoing what they did': [],
      'Compromised-token runs': [urgentRun],
      'What I touched': [urgent, urgentRun],
    };
    expect(views.map((v) => v.view).sort()).toEqual(Object.keys(expected).sort());
    for (const { view, query } of views) {
      const real = query.replace(/INC-\d{4}-\d{2}-\d{2}-\d{2,4}/, urgent);
      await finds(real, expected[view]!);
    }
  });

  it('finds a run waiting for an admin by RunbookStatus, and follows it to completed', async () => {
    await finds('RunbookStatus = "awaiting_approval"', [urgentRun]);
    await finds('RunbookStatus = "running"', []);

    const approved = await call(h.adminHeaders, 'POST', `/runbooks/runs/${urgentRun}/approve`, {
      step: 'rotate_keys',
    });
    expect(approved.statusCode, approved.body).toBe(200);
    // notify_users waits at P1 too, but this incident names no users: the run completes
    await waitFor(
      'the run to complete',
      async () => {
        const res = await call(h.adminHeaders, 'GET', `/runbooks/runs/${urgentRun}`);
        return res.json<{ status: string }>().status === 'completed' ? true : undefined;
      },
      60_000,
    );
    await finds('RunbookStatus = "completed"', [urgentRun]);
    await finds('RunbookStatus = "awaiting_approval"', []);
  });
});
