/**
 * The `warden` CLI as an operator runs it: `node bin/warden.mjs …` in a child process, with
 * WARDEN_ADMIN_URL / WARDEN_TOKEN, against a Warden listening on real ports (its own database,
 * worker and task queue on the run's Temporal dev server). Outcomes are read back through the
 * admin API, not taken from the CLI's word.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Command } from 'commander';
import { EXIT } from '../../src/cli/command';
import { buildProgram, main } from '../../src/cli/main';
import { freePort, waitFor } from '../../src/dev/process';
import { databaseControlWorkflowId } from '../../src/shared/database';
import type { IncidentState } from '../../src/shared/incidents';
import type { RunbookState } from '../../src/shared/runbooks';
import { startHarness, type Harness } from '../helpers/harness';
import { operatorHeaders } from '../helpers/operators';

const ROOT = process.cwd();
const BIN = path.join(ROOT, 'bin', 'warden.mjs');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('warden CLI', () => {
  let h: Harness;
  let url: string;
  /** everything the CLI printed, to check that the token never shows */
  const printed: string[] = [];
  /** per-operator tokens, created through the admin API as an admin would */
  const tokens: Record<'ada' | 'rhea', string> = { ada: '', rhea: '' };

  beforeAll(async () => {
    h = await startHarness({ listen: true, env: { WARDEN_DB_WATCH_INTERVAL_MS: '300' } });
    url = h.servers!.urls.admin;
    for (const [name, role] of [
      ['ada', 'admin'],
      ['rhea', 'responder'],
    ] as const)
      tokens[name] = (await operatorHeaders(h, name, role)).authorization.replace(/^Bearer /, '');
  });
  afterAll(async () => {
    // db-failover keeps the database control workflow of the task queue running
    await h?.runtime.temporal.client.workflow
      .getHandle(databaseControlWorkflowId(h.config.temporal.taskQueue))
      .terminate('test over')
      .catch(() => {});
    await h?.close();
  });

  const envFor = (extra: Record<string, string>) => ({
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    WARDEN_ADMIN_URL: url,
    WARDEN_TOKEN: h.config.adminToken,
    ...extra,
  });

  function warden(args: string[], env: Record<string, string> = {}): Promise<Ran> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, ...args],
        { cwd: ROOT, env: envFor(env), timeout: 60_000 },
        (err, stdout, stderr) => {
          printed.push(stdout, stderr);
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
        },
      );
    });
  }
  /** runs a command that must succeed and returns its JSON */
  async function json<T>(args: string[]): Promise<T> {
    const ran = await warden([...args, '--json']);
    expect(ran.code, ran.stderr).toBe(EXIT.ok);
    return JSON.parse(ran.stdout) as T;
  }

  const api = (method: 'GET' | 'POST', route: string, payload?: Record<string, unknown>) =>
    h.admin.inject({ method, url: `/admin/api/v1${route}`, headers: h.adminHeaders, ...(payload ? { payload } : {}) });
  const incident = async (id: string) => (await api('GET', `/incidents/${id}`)).json<IncidentState>();
  const open = async (title: string) => {
    const res = await api('POST', '/incidents', { type: 'other', severity: 'P3', title });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ id: string }>().id;
  };

  it('lists its command groups in --help, and answers a wrong command line with the usage exit code', async () => {
    const help = await warden(['--help']);
    expect(help.code).toBe(EXIT.ok);
    for (const group of ['incidents', 'runbooks', 'routes', 'blocks', 'keys']) expect(help.stdout).toContain(group);
    const sub = await warden(['incidents', 'resolve', '--help']);
    expect(sub.code).toBe(EXIT.ok);
    expect(sub.stdout).toMatch(/--preventive-action/);
    expect(sub.stdout).toMatch(/--json/);

    const badChoice = await warden(['incidents', 'list', '--severity', 'P9']);
    expect(badChoice.code).toBe(EXIT.usage);
    expect(badChoice.stderr).toContain('P0, P1, P2, P3');
    const missing = await warden(['incidents', 'escalate', 'INC-2025-01-01-01']);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.stderr).toContain('--reason');
    const noToken = await warden(['blocks', 'list'], { WARDEN_TOKEN: '' });
    expect(noToken.code).toBe(EXIT.usage);
    expect(noToken.stderr).toContain('WARDEN_TOKEN');
  });

  it('lists, shows, acknowledges, notes and resolves an incident, and --follow ends when it closes', async () => {
    const id = await open('cli drill: codes arrive late');

    const listed = await json<{ incidents: Array<{ id: string; status: string }> }>(['incidents', 'list']);
    expect(listed.incidents.map((i) => i.id)).toContain(id);
    const filtered = await json<{ incidents: Array<{ id: string }> }>(['incidents', 'list', '--status', 'resolved']);
    expect(filtered.incidents.map((i) => i.id)).not.toContain(id);

    const ack = await warden(['incidents', 'ack', id, '--note', 'looking at the SMS provider']);
    expect(ack.code, ack.stderr).toBe(EXIT.ok);
    expect(ack.stdout).toContain(`${id} acknowledged`);
    const acked = await incident(id);
    expect(acked.acknowledgedAt).toBeTruthy();
    // the actor comes from the token (the bootstrap admin's name), not from anything the CLI sent
    expect(acked.owner).toBe('admin-api');
    expect(acked.timeline.some((e) => e.kind === 'acknowledged' && e.message === 'looking at the SMS provider')).toBe(
      true,
    );

    const note = await warden(['incidents', 'note', id, 'retries', 'look', 'normal']);
    expect(note.code, note.stderr).toBe(EXIT.ok);
    expect((await incident(id)).timeline.some((e) => e.kind === 'note' && e.message === 'retries look normal')).toBe(
      true,
    );

    const show = await warden(['incidents', 'show', id]);
    expect(show.code, show.stderr).toBe(EXIT.ok);
    expect(show.stdout).toMatch(new RegExp(`^id:\\s+${id}$`, 'm'));
    expect(show.stdout).toMatch(/^owner:\s+admin-api$/m);
    expect(show.stdout).toContain('retries look normal');

    // a responder tails the timeline while another resolves the incident
    const follow = spawn(process.execPath, [BIN, 'incidents', 'timeline', id, '--follow', '--interval', '1'], {
      cwd: ROOT,
      env: envFor({}),
    });
    let tailed = '';
    follow.stdout.on('data', (chunk: Buffer) => (tailed += chunk.toString()));
    const followed = new Promise<number | null>((resolve) => follow.on('exit', (code) => resolve(code)));
    try {
      await waitFor(
        'the tail to print the timeline so far',
        async () => {
          if (!tailed.includes('retries look normal')) throw new Error(tailed);
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );

      const resolve = await warden([
        'incidents',
        'resolve',
        id,
        '--resolution',
        'provider recovered',
        '--root-cause',
        'carrier congestion',
        '--preventive-action',
        'monitoring: alert on delivery latency',
        '--force',
        'drill: no recovery checks',
      ]);
      expect(resolve.code, resolve.stderr).toBe(EXIT.ok);
      const resolved = await incident(id);
      expect(resolved.status).toBe('resolved');
      expect(resolved.rootCause).toBe('carrier congestion');
      expect(resolved.preventiveActions).toMatchObject([
        { category: 'monitoring', description: 'alert on delivery latency' },
      ]);
      expect(resolved.forcedResolution?.reason).toBe('drill: no recovery checks');

      expect(await followed).toBe(EXIT.ok);
      printed.push(tailed);
      expect(tailed).toMatch(/resolved\s+admin-api\s+/);
      expect(tailed).toContain(`${id} is resolved`);
      // each entry once, though the tail polled the whole timeline several times
      expect(tailed.split('\n').filter((line) => line.includes('retries look normal'))).toHaveLength(1);
    } finally {
      follow.kill();
    }
  });

  it('prints the API refusal code on stderr and exits non-zero', async () => {
    const unknown = await warden(['incidents', 'ack', 'INC-1999-01-01-01']);
    expect(unknown.code).toBe(EXIT.refused);
    expect(unknown.stderr).toMatch(/^error: incident_not_found: /);
    expect(unknown.stdout).toBe('');

    const json = await warden(['incidents', 'show', 'INC-1999-01-01-01', '--json']);
    expect(json.code).toBe(EXIT.refused);
    expect(json.stderr).toContain('error: incident_not_found');
  });

  it('refuses a wrong token as unauthorized without echoing it, and names an unreachable URL plainly', async () => {
    const wrong = await warden(['incidents', 'list'], { WARDEN_TOKEN: 'not-the-operator-token-1234' });
    expect(wrong.code).toBe(EXIT.refused);
    expect(wrong.stderr).toMatch(/^error: unauthorized: /);
    expect(wrong.stderr + wrong.stdout).not.toContain('not-the-operator-token-1234');

    const port = await freePort();
    const down = await warden(['incidents', 'list'], { WARDEN_ADMIN_URL: `http://127.0.0.1:${port}` });
    expect(down.code).toBe(EXIT.unreachable);
    expect(down.stderr.trim()).toBe(
      `error: cannot reach the admin API at http://127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
    );
  });

  it('adds, lists and removes an IP block', async () => {
    const added = await warden(['blocks', 'add', '203.0.113.0/24', '--reason', 'cli drill', '--ttl', '1h']);
    expect(added.code, added.stderr).toBe(EXIT.ok);
    expect(added.stdout).toContain('blocked 203.0.113.0/24 until');

    const { entries } = await json<{ entries: Array<{ cidr: string; reason: string; expires_at: string }> }>([
      'blocks',
      'list',
    ]);
    const entry = entries.find((e) => e.cidr === '203.0.113.0/24');
    expect(entry?.reason).toBe('cli drill');
    const lasts = new Date(entry!.expires_at).getTime() - Date.now();
    expect(lasts).toBeGreaterThan(55 * 60_000);
    expect(lasts).toBeLessThanOrEqual(60 * 60_000);
    const table = await warden(['blocks', 'list']);
    expect(table.stdout).toMatch(/^BLOCKED\s+UNTIL\s+BY/m);
    expect(table.stdout).toMatch(/^203\.0\.113\.0\/24\s+\d{4}-/m);

    const removed = await warden(['blocks', 'remove', '203.0.113.0/24']);
    expect(removed.code, removed.stderr).toBe(EXIT.ok);
    const after = (await api('GET', '/blocklist/ip')).json<{ entries: Array<{ cidr: string }> }>();
    expect(after.entries.map((e) => e.cidr)).not.toContain('203.0.113.0/24');
    const again = await warden(['blocks', 'remove', '203.0.113.0/24']);
    expect(again.code).toBe(EXIT.refused);
    expect(again.stderr).toMatch(/^error: not_found: /);
  });

  it('shows the delivery routes and switches a channel to its backup provider and back', async () => {
    const show = await warden(['routes', 'show']);
    expect(show.code, show.stderr).toBe(EXIT.ok);
    expect(show.stdout).toMatch(/^sms\s+twilio\s+twilio\s+plivo\s+auto\s+yes/m);
    expect(show.stdout).toMatch(/^email\s+sendgrid\s+sendgrid\s+ses\s+auto\s+yes/m);
    const asJson = await json<{ routes: unknown[] }>(['routes', 'show']);
    expect(asJson).toEqual((await api('GET', '/delivery/routes')).json());

    const toBackup = await warden(['routes', 'switch', 'sms', 'plivo', '--reason', 'cli drill']);
    expect(toBackup.code, toBackup.stderr).toBe(EXIT.ok);
    expect(toBackup.stdout).toContain('sms now sends through plivo');
    const sms = (await api('GET', '/delivery/routes/sms')).json<{ mode: string; change_reason: string }>();
    expect(sms).toMatchObject({ mode: 'backup', change_reason: 'cli drill' });

    const notOnRoute = await warden(['routes', 'switch', 'sms', 'ses']);
    expect(notOnRoute.code).toBe(EXIT.refused);
    expect(notOnRoute.stderr).toMatch(/^error: not_on_route: /);

    const back = await warden(['routes', 'switch', 'sms', 'primary', '--reason', 'drill over']);
    expect(back.code, back.stderr).toBe(EXIT.ok);
    expect((await api('GET', '/delivery/routes/sms')).json()).toMatchObject({ mode: 'auto' });
  });

  it('starts a runbook, shows the step waiting for approval, and approves it', async () => {
    // an open challenge past its expiry whose workflow is gone: the run's cleanup step has work
    // to do, and at P1 that destructive step waits for a responder
    await h.sql(
      `INSERT INTO auth_challenges (id, user_id, method, status, max_attempts, expires_at, sealed_secret, delivery_provider)
       VALUES ($1, 'bob', 'sms_otp', 'open', 5, now() - interval '5 minutes', '\\x01', 'twilio')`,
      [randomUUID()],
    );
    const started = await json<{ workflow_id: string; runbook: string }>([
      'runbooks',
      'start',
      'db-failover',
      '--severity',
      'P1',
    ]);
    expect(started.runbook).toBe('db-failover');
    const id = started.workflow_id;

    await waitFor(
      'the cleanup to wait for approval',
      async () => {
        const run = (await api('GET', `/runbooks/runs/${id}`)).json<RunbookState>();
        const cleanup = run.steps?.find((s) => s.name === 'cleanup');
        if (cleanup?.status !== 'awaiting_approval') throw new Error(JSON.stringify(run).slice(0, 2000));
      },
      { timeoutMs: 40_000, intervalMs: 300 },
    );
    const show = await warden(['runbooks', 'show', id]);
    expect(show.stdout).toMatch(/^cleanup\s+awaiting_approval\s+WAITING/m);
    expect(show.stdout).toContain(`warden runbooks approve ${id} cleanup`);
    const listed = await json<{ runs: Array<{ workflow_id: string }> }>([
      'runbooks',
      'list',
      '--runbook',
      'db-failover',
    ]);
    expect(listed.runs.map((r) => r.workflow_id)).toContain(id);

    const approve = await warden(['runbooks', 'approve', id, 'cleanup', '--note', 'checked the replica lag']);
    expect(approve.code, approve.stderr).toBe(EXIT.ok);
    expect(approve.stdout).toContain('cleanup approved: the run goes on');
    const run = await waitFor(
      'the run to complete',
      async () => {
        const state = (await api('GET', `/runbooks/runs/${id}`)).json<RunbookState>();
        if (state.status !== 'completed') throw new Error(state.status);
        return state;
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    expect(run.steps.find((s) => s.name === 'cleanup')).toMatchObject({
      status: 'succeeded',
      approval: { how: 'responder', by: 'admin-api', note: 'checked the replica lag' },
    });

    const twice = await warden(['runbooks', 'approve', id, 'cleanup']);
    expect(twice.code).toBe(EXIT.refused);
    expect(twice.stderr).toMatch(/^error: (not_awaiting_approval|runbook_finished): /);
  });

  it('rotates the data key', async () => {
    const before = (await api('GET', '/keys')).json<{ keys: Array<{ id: string; status: string }> }>();
    const active = before.keys.find((k) => k.status === 'active')?.id;
    const rotated = await json<{ key_id: string; previous_key_id: string | null }>([
      'keys',
      'rotate',
      '--reason',
      'cli drill',
    ]);
    expect(rotated.previous_key_id).toBe(active);
    const after = (await api('GET', '/keys')).json<{ keys: Array<{ id: string; status: string }> }>();
    expect(after.keys.find((k) => k.status === 'active')?.id).toBe(rotated.key_id);
  });

  it('escalates an incident to the role it names, as the operator whose token it holds', async () => {
    const id = await open('cli drill: escalation');
    const ran = await warden(['incidents', 'escalate', id, '--role', 'dba', '--reason', 'replica lag'], {
      WARDEN_TOKEN: tokens.rhea,
    });
    expect(ran.code, ran.stderr).toBe(EXIT.ok);
    expect(ran.stdout).toContain(`${id} escalated to dba`);
    const s = await incident(id);
    expect(s.escalations.map((e) => e.role)).toContain('dba');
    expect(s.timeline.find((e) => e.kind === 'escalated' && e.role === 'dba')).toMatchObject({ by: 'rhea' });
  });

  /** a standalone P1 compromised-token run naming nobody: rotate_keys is the first step to wait */
  async function waitingRun(): Promise<string> {
    const started = await json<{ workflow_id: string }>(['runbooks', 'start', 'compromised-token', '--severity', 'P1']);
    const id = started.workflow_id;
    await waitFor(
      'rotate_keys to wait for approval',
      async () => {
        const run = (await api('GET', `/runbooks/runs/${id}`)).json<RunbookState>();
        if (run.steps?.find((s) => s.name === 'rotate_keys')?.status !== 'awaiting_approval')
          throw new Error(JSON.stringify(run).slice(0, 1000));
      },
      { timeoutMs: 40_000, intervalMs: 300 },
    );
    return id;
  }
  const runOf = async (id: string) => (await api('GET', `/runbooks/runs/${id}`)).json<RunbookState>();

  it("refuses a responder's step decision with `forbidden` on stderr; an admin's token rejects the step", async () => {
    const rotationsBefore = await h.sql('SELECT id FROM key_rotations');
    const id = await waitingRun();
    const refused = await warden(['runbooks', 'approve', id, 'rotate_keys'], { WARDEN_TOKEN: tokens.rhea });
    expect(refused.code).toBe(EXIT.refused);
    expect(refused.stderr).toMatch(/^error: forbidden: this needs the admin role; rhea is a responder/);
    expect(refused.stdout).toBe('');
    expect((await runOf(id)).steps.find((s) => s.name === 'rotate_keys')?.status).toBe('awaiting_approval');

    const rejected = await warden(['runbooks', 'reject', id, 'rotate_keys', '--note', 'rotated by hand'], {
      WARDEN_TOKEN: tokens.ada,
    });
    expect(rejected.code, rejected.stderr).toBe(EXIT.ok);
    expect(rejected.stdout).toContain('rotate_keys rejected: the run skips it');
    const run = await waitFor(
      'the run to complete without the step',
      async () => {
        const state = await runOf(id);
        if (state.status !== 'completed') throw new Error(state.status);
        return state;
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    expect(run.steps.find((s) => s.name === 'rotate_keys')).toMatchObject({
      status: 'rejected',
      approval: { how: 'responder', by: 'ada', note: 'rotated by hand' },
    });
    expect(await h.sql('SELECT id FROM key_rotations')).toEqual(rotationsBefore);
  });

  it('cancels a run with a responder’s token: it stops waiting and names who cancelled', async () => {
    const id = await waitingRun();
    const ran = await warden(['runbooks', 'cancel', id, '--reason', 'opened by mistake'], {
      WARDEN_TOKEN: tokens.rhea,
    });
    expect(ran.code, ran.stderr).toBe(EXIT.ok);
    expect(ran.stdout).toContain(`cancelling ${id} (undoing what can be undone)`);
    const run = await waitFor(
      'the run to be cancelled',
      async () => {
        const state = await runOf(id);
        if (state.status !== 'cancelled') throw new Error(state.status);
        return state;
      },
      { timeoutMs: 40_000, intervalMs: 300 },
    );
    expect(run.cancel).toMatchObject({ by: 'rhea', reason: 'opened by mistake', compensate: true });
    expect(run.steps.find((s) => s.name === 'rotate_keys')?.status).toBe('skipped');
    const again = await warden(['runbooks', 'cancel', id, '--reason', 'twice'], { WARDEN_TOKEN: tokens.rhea });
    expect(again.code).toBe(EXIT.refused);
    expect(again.stderr).toMatch(/^error: runbook_finished: /);
  });

  it('prints usage and exits 0 for --help on every command', async () => {
    const paths: string[][] = [];
    const walk = (command: Command, words: string[]) => {
      paths.push(words);
      for (const sub of command.commands) walk(sub, [...words, sub.name()]);
    };
    walk(buildProgram(), []);
    expect(paths.length).toBeGreaterThan(30);
    // in this process, through the same main() bin/warden.mjs runs (its result is the exit
    // code): a process per command would spend a minute starting tsx 37 times
    const failures: string[] = [];
    for (const words of paths) {
      let out = '';
      const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
      let code: number;
      try {
        code = await main(['node', 'warden', ...words, '--help']);
      } finally {
        write.mockRestore();
      }
      printed.push(out);
      const usage = new RegExp(`^Usage: warden${words.length ? ` ${words.join(' ')}` : ''}( |$)`, 'm');
      if (code !== EXIT.ok || !usage.test(out)) failures.push(`${words.join(' ') || '(root)'}: exit ${code}: ${out}`);
    }
    expect(failures).toEqual([]);
  });

  it('never printed the operator token', () => {
    expect(printed.length).toBeGreaterThan(0);
    for (const token of [h.config.adminToken, tokens.ada, tokens.rhea]) expect(printed.join('\n')).not.toContain(token);
  });
});
