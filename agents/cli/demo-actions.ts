// What `opscrew demo` does (loaded lazily): the main job end to end on a fresh machine, with
// nothing but Node. It builds a throwaway workspace from examples/demo/, starts the demo app
// (agents/runtime/demo-target.ts) on 127.0.0.1, runs the crew once with the runbook brain,
// writes the retrospectives, and checks that each example task ended the way its Context says.
// It is a smoke test of the product: any other ending is reported and exits 1.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { loadConfig } from '../../mcp-server/core/config.js';
import { createFolderQueue, type TaskRecord } from '../../mcp-server/core/queue.js';
import { recordRunKnowledge } from '../../mcp-server/core/retro.js';
import { openStore } from '../../mcp-server/core/store.js';
import { parseTask } from '../../mcp-server/core/task-parse.js';
import { resolveWorkspace, type Workspace } from '../../mcp-server/core/workspace.js';
import { createSecretBroker } from '../../tools/secret-broker.js';
import { runCrew, type CrewSummary } from '../runtime/crew.js';
import { startDemoTarget, type DemoRequest, type DemoTarget } from '../runtime/demo-target.js';
import { createProgressPrinter, type CrewEvent } from '../runtime/progress.js';
import { initWorkspace } from './cmd-init.js';
import { CliError } from './context.js';
import { EXIT } from './exit-codes.js';
import { printJson, printLines, renderTable, type CliIO } from './output.js';
import { packageRoot } from './paths.js';

export interface DemoOptions {
  dir?: string;
  json?: boolean;
  /** The demo set to use (config, srv/, tasks/); default the package's examples/demo. */
  demoDir?: string;
}

type Expected = 'completed' | 'refused' | 'rolled-back' | 'after-dependency';

/** How each shipped demo task must end (its Context says the same to a reader). */
const EXPECTED: Readonly<Record<string, Expected>> = {
  'TASK-001': 'completed',
  'TASK-002': 'refused',
  'TASK-003': 'after-dependency',
  'TASK-004': 'rolled-back',
};

const EXPECTED_TEXT: Readonly<Record<Expected, string>> = {
  completed: 'completed with evidence',
  refused: 'refused by policy, blocked',
  'rolled-back': 'fails verification, rolled back, blocked after max_attempts',
  'after-dependency': 'waits for its dependency, then completed',
};

/** Quick retries: the demo shows the backoff without making anyone wait for it. */
const DEMO_BACKOFF = { baseMs: 250, maxMs: 1000 };
/** The whole crew run may not take longer than this (the demo normally needs a few seconds). */
const DEMO_DEADLINE_MS = 60_000;

/** Paths that go into command lines unquoted must be plain. */
const PLAIN_PATH = /^[A-Za-z0-9._/+@,:=-]+$/;

export interface DemoTaskResult {
  id: string;
  title: string;
  /** Workspace-relative path where the task file ended. */
  file: string;
  specialist: string;
  expected: Expected;
  /** completed | refused | failed | blocked | (not run) — the last run's outcome. */
  outcome: string;
  /** Where the file ended: completed, or backlog with status blocked, ... */
  state: string;
  attempts: number;
  reason: string;
  /** Why the task could not start at once, before the crew ran (dependencies). */
  waitedFor: string[];
  /** Rollback commands run across attempts, and how many passed. */
  rollback: { ran: number; passed: number };
  ok: boolean;
  problems: string[];
}

export interface DemoReport {
  ok: boolean;
  workspace: string;
  url: string;
  elapsedMs: number;
  tasks: DemoTaskResult[];
  problems: string[];
  service: { url: string; finalVersion: string | null; requests: DemoRequest[]; stopped: boolean };
  retrospectives: { dir: string; files: string[]; error?: string };
  logs: string;
  crew: CrewSummary;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Copies a template, filling in `{{DEMO_URL}}` and `{{DEMO_SRV}}`; any other `{{DEMO_…}}` is a bug. */
function fillTemplate(text: string, file: string, values: Record<string, string>): string {
  const out = text.replace(/\{\{(DEMO_[A-Z_]+)\}\}/g, (m, name: string) => values[name] ?? m);
  const left = /\{\{DEMO_[A-Z_]+\}\}/.exec(out);
  if (left) throw new CliError(EXIT.INTERNAL, `${file}: unknown placeholder ${left[0]} (the demo fills in ${Object.keys(values).join(', ')})`);
  return out;
}

function pickRoot(io: CliIO, dir: string | undefined): string {
  if (dir === undefined) return mkdtempSync(join(tmpdir(), 'opscrew-demo-'));
  const root = resolve(io.cwd, dir);
  if (existsSync(root)) throw new CliError(EXIT.USAGE, `--dir ${root} exists already; name a new folder`);
  if (!PLAIN_PATH.test(root)) {
    throw new CliError(EXIT.USAGE, `--dir ${root}: the demo's task commands name this path unquoted; use a path of letters, digits and . _ - / only`);
  }
  return root;
}

/** Lays out the workspace: `opscrew init`'s folders, the demo config and the app's files root. */
function buildWorkspace(ws: Workspace, demo: string): void {
  initWorkspace(ws, join(demo, 'opscrew.config.yaml'));
  cpSync(join(demo, 'srv'), join(ws.root, 'srv'), { recursive: true, errorOnExist: true, force: false });
}

/** The example tasks into the backlog, with the app's address and files root filled in. */
function writeTasks(ws: Workspace, demo: string, url: string): string[] {
  const values = { DEMO_URL: url, DEMO_SRV: join(ws.root, 'srv') };
  const names = readdirSync(join(demo, 'tasks')).filter((n) => n.endsWith('.md')).sort();
  for (const n of names) {
    const src = join(demo, 'tasks', n);
    writeFileSync(join(ws.backlog, n), fillTemplate(readFileSync(src, 'utf8'), src, values), { flag: 'wx' });
  }
  return names;
}

interface TaskTrace {
  claims: Array<{ ts: number; attempt: number; specialist: string }>;
  finished: Array<{ ts: number; outcome: string }>;
  rollback: { ran: number; passed: number };
}

function traceEvents(events: readonly CrewEvent[]): Map<string, TaskTrace> {
  const out = new Map<string, TaskTrace>();
  const get = (id: string): TaskTrace => {
    let t = out.get(id);
    if (!t) out.set(id, (t = { claims: [], finished: [], rollback: { ran: 0, passed: 0 } }));
    return t;
  };
  for (const e of events) {
    if (!e.taskId) continue;
    const t = get(e.taskId);
    if (e.type === 'claimed') t.claims.push({ ts: e.ts, attempt: e.attempt ?? 1, specialist: e.specialist ?? '?' });
    if (e.type === 'finished') t.finished.push({ ts: e.ts, outcome: e.outcome ?? '' });
    if (e.type === 'command-done' && e.section === 'rollback') {
      t.rollback.ran++;
      if (e.passed) t.rollback.passed++;
    }
  }
  return out;
}

interface CheckInput {
  rec: TaskRecord | undefined;
  trace: TaskTrace | undefined;
  crew: CrewSummary;
  fileText: string;
  waitedFor: string[];
  traces: Map<string, TaskTrace>;
  requests: DemoRequest[];
  finalVersion: string | null;
  calls: Array<{ decision: string; rule: string; canonical: string }>;
  maxAttempts: number;
}

/** What went differently from the task's expected ending (empty = as expected). */
function checkTask(id: string, expected: Expected, x: CheckInput): string[] {
  const p: string[] = [];
  const runs = x.crew.runs.filter((r) => r.taskId === id);
  const last = runs[runs.length - 1];
  if (!x.rec) return [`${id} is missing from the queue`];
  if (!last) return [`${id} never ran`];
  const blocked = x.rec.folder === 'backlog' && x.rec.status === 'blocked';
  switch (expected) {
    case 'completed':
    case 'after-dependency':
      if (x.rec.folder !== 'completed') p.push(`${id} should be in completed/ but is in ${x.rec.folder}/ (${last.outcome}: ${last.reason})`);
      if (!/^## Verification Evidence$/m.test(x.fileText)) p.push(`${id}'s file has no "## Verification Evidence" section`);
      if (!/^\s*- \[x\]/m.test(x.fileText)) p.push(`${id}'s criteria are not ticked`);
      if (expected === 'after-dependency') {
        if (x.waitedFor.length === 0) p.push(`${id} was ready before the crew started; it should have waited for its dependency`);
        const firstClaim = x.trace?.claims[0]?.ts;
        for (const dep of x.waitedFor) {
          const depDone = x.traces.get(dep)?.finished.find((f) => f.outcome === 'completed')?.ts;
          if (depDone === undefined) p.push(`${id}'s dependency ${dep} never completed`);
          else if (firstClaim === undefined || firstClaim < depDone) p.push(`${id} was claimed before its dependency ${dep} completed`);
        }
      }
      break;
    case 'refused': {
      if (!blocked) p.push(`${id} should be blocked in backlog/ but is ${x.rec.folder}/${x.rec.status ?? ''}`);
      if (last.outcome !== 'refused') p.push(`${id}'s run ended ${last.outcome}, not refused (${last.reason})`);
      if (!/refused by policy \([^)]+\)/.test(last.reason)) p.push(`${id}'s reason does not name the policy rule: ${last.reason}`);
      if (runs.length !== 1) p.push(`${id} ran ${runs.length} times; a refusal is not retried`);
      const deny = x.calls.findIndex((c) => c.decision === 'deny');
      if (deny === -1) p.push(`${id}: no refused call in the audit log`);
      else if (deny !== x.calls.length - 1) p.push(`${id}: ${x.calls.length - 1 - deny} call(s) ran after the refusal`);
      if (x.requests.some((r) => r.method === 'POST')) p.push('the demo app received a POST although the policy refused it');
      break;
    }
    case 'rolled-back': {
      const max = x.maxAttempts;
      if (!blocked) p.push(`${id} should be blocked in backlog/ but is ${x.rec.folder}/${x.rec.status ?? ''}`);
      if (runs.length !== max || runs.some((r) => r.outcome !== 'failed')) {
        p.push(`${id} should fail ${max} attempts; its runs ended ${runs.map((r) => r.outcome).join(', ') || 'never'}`);
      }
      if (!/verification failed/.test(last.reason)) p.push(`${id}'s reason is not a verification failure: ${last.reason}`);
      if (!/Rollback ran \d+ command\(s\), all passed/.test(last.reason)) p.push(`${id}'s rollback did not run cleanly: ${last.reason}`);
      if ((x.trace?.rollback.ran ?? 0) === 0) p.push(`${id}: no Rollback command ran`);
      if (x.finalVersion !== '1.1.0') p.push(`the demo app serves ${x.finalVersion ?? 'nothing'} after the rollback, not 1.1.0`);
      if (x.rec.attempts !== max) p.push(`${id} records ${x.rec.attempts} attempts, not ${max}`);
      break;
    }
  }
  return p;
}

/** The part of a long reason a person needs in the summary table (the JSON keeps it whole). */
function shortReason(reason: string): string {
  for (const key of ['refused by policy (', 'verification failed']) {
    const i = reason.indexOf(key);
    if (i > 0) return reason.slice(i);
  }
  return reason;
}

function outcomeText(t: DemoTaskResult): string {
  switch (t.expected) {
    case 'after-dependency':
      return `waited for ${t.waitedFor.join(', ') || '-'}, then ${t.outcome}`;
    case 'rolled-back':
      return `${t.outcome} ×${t.attempts}, rolled back (${t.rollback.passed}/${t.rollback.ran} ok) → ${t.state}`;
    case 'refused':
      return `${t.outcome} → ${t.state}`;
    case 'completed':
      return t.outcome;
  }
}

export async function runDemo(io: CliIO, opts: DemoOptions): Promise<number> {
  const started = io.now();
  const demo = opts.demoDir ?? join(packageRoot(), 'examples', 'demo');
  if (!existsSync(join(demo, 'tasks'))) throw new CliError(EXIT.FAILED, `no tasks/ in ${demo}`);
  const root = pickRoot(io, opts.dir);
  const ws = resolveWorkspace(root);
  const say = (...lines: string[]): void => {
    if (!opts.json) printLines(io, lines);
  };

  buildWorkspace(ws, demo);
  // The app first: the tasks name its address, which is known once it listens.
  let target: DemoTarget | null = await startDemoTarget({ appDir: join(root, 'srv', 'demo-app'), now: io.now });
  const events: CrewEvent[] = [];
  try {
    const url = target.url;
    const names = writeTasks(ws, demo, url);
    say(`opscrew demo — the crew works ${names.length} example tasks against a local app, with no API key`);
    say(`workspace:  ${root}`);
    say(`demo app:   ${url}  (GET /health, GET /version, POST /deploy; serves srv/demo-app/current.json)`);

    const env = { ...io.env };
    const c = loadConfig({ workspaceDir: root, env });
    if (!c.ok) throw new CliError(EXIT.CONFIG, `examples/demo/opscrew.config.yaml: ${c.message}`);
    const config = c.value;

    // The queue before the crew starts: who is ready, who waits for what.
    const store = openStore(ws.dbPath);
    let before: TaskRecord[];
    let readyIds: Set<string>;
    try {
      const q = createFolderQueue({ workspace: ws, store, now: io.now });
      await q.scan();
      before = await q.list();
      readyIds = new Set((await q.ready()).map((r) => r.id));
    } finally {
      store.close();
    }
    const completedBefore = new Set(before.filter((r) => r.folder === 'completed').map((r) => r.id));
    const waiting = new Map(before.map((r) => [r.id, r.dependsOn.filter((d) => !completedBefore.has(d))] as const));
    say('', 'backlog before the crew starts:');
    for (const l of renderTable(before, [
      { header: 'TASK', get: (r) => r.id },
      { header: 'PRIORITY', get: (r) => r.priority },
      { header: 'STATE', get: (r) => (readyIds.has(r.id) ? 'ready' : (waiting.get(r.id) ?? []).length ? `waits for ${(waiting.get(r.id) ?? []).join(', ')}` : 'not ready') },
      { header: 'EXPECTED', get: (r) => EXPECTED_TEXT[EXPECTED[r.id] ?? 'completed'] },
      { header: 'TITLE', get: (r) => r.title, max: 60 },
    ]))
      say(`  ${l}`);
    say('', `the crew (runbook brain, ${config.concurrency} workers; progress on stderr):`);

    // The crew, once: until nothing is ready and no worker runs. A deadline keeps a broken run bounded.
    const broker = createSecretBroker();
    const printer = createProgressPrinter({ write: (t) => io.err(t), isTTY: process.stderr.isTTY === true });
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error('demo deadline')), DEMO_DEADLINE_MS);
    let crew: CrewSummary;
    try {
      crew = await runCrew({
        workspace: ws,
        config,
        specialistsDir: join(packageRoot(), 'agents', 'specialists'),
        once: true,
        brain: 'runbook',
        env,
        broker,
        now: io.now,
        backoff: DEMO_BACKOFF,
        signal: deadline.signal,
        graceMs: 2000,
        onProgress: (e) => {
          events.push(e);
          printer(e);
        },
      });
    } finally {
      clearTimeout(timer);
    }
    const timedOut = deadline.signal.aborted;

    // What happened, from the queue, the audit log and the app's own request log.
    const requests = target.requests();
    const finalVersion = target.currentVersion();
    await target.close();
    target = null;

    const retros: DemoReport['retrospectives'] = { dir: ws.retrospectives, files: [] };
    const results: DemoTaskResult[] = [];
    const traces = traceEvents(events);
    const store2 = openStore(ws.dbPath);
    try {
      const q = createFolderQueue({ workspace: ws, store: store2, now: io.now });
      await q.scan();
      const after = new Map((await q.list()).map((r) => [r.id, r] as const));
      // One retrospective per run, written from the store's facts (the retrospective agent's job).
      try {
        for (const run of crew.runs) {
          const rec = after.get(run.taskId);
          const text = rec ? readFileSync(join(root, rec.file), 'utf8') : null;
          const parsed = text !== null && rec ? parseTask(text, rec.file) : null;
          const out = recordRunKnowledge(
            { db: store2.db, root, retrospectivesDir: ws.retrospectives, now: io.now, scrub: (s) => broker.scrub(s), env },
            { runId: run.runId, task: parsed?.ok ? parsed.task : null },
          );
          if (out) retros.files.push(relative(root, out.retroFile));
        }
      } catch (e) {
        retros.error = `could not write the retrospectives: ${errText(e)}`;
      }
      for (const id of Object.keys(EXPECTED).sort()) {
        const expected = EXPECTED[id] ?? 'completed';
        const rec = after.get(id);
        const runs = crew.runs.filter((r) => r.taskId === id);
        const last = runs[runs.length - 1];
        const fileText = rec ? readFileSync(join(root, rec.file), 'utf8') : '';
        const calls = store2.db.all<{ decision: string; rule: string; canonical: string }>(
          'SELECT decision, rule, canonical FROM tool_calls WHERE task_id = ? ORDER BY seq',
          [id],
        );
        const parsed = rec ? parseTask(fileText, rec.file) : null;
        const maxAttempts = (parsed?.ok ? parsed.task.fm.max_attempts : undefined) ?? config.max_attempts;
        const x: CheckInput = { rec, trace: traces.get(id), crew, fileText, waitedFor: waiting.get(id) ?? [], traces, requests, finalVersion, calls, maxAttempts };
        const problems = checkTask(id, expected, x);
        const blockedReason = crew.blocked.find((b) => b.id === id)?.reason;
        results.push({
          id,
          title: rec?.title ?? '?',
          file: rec?.file ?? '?',
          specialist: last?.specialist ?? '-',
          expected,
          outcome: last?.outcome ?? '(not run)',
          state: rec ? (rec.folder === 'backlog' && rec.status ? `${rec.status}` : rec.folder) : '?',
          attempts: rec?.attempts ?? runs.length,
          reason: blockedReason ?? last?.reason ?? '',
          waitedFor: waiting.get(id) ?? [],
          rollback: traces.get(id)?.rollback ?? { ran: 0, passed: 0 },
          ok: problems.length === 0,
          problems,
        });
      }
    } finally {
      store2.close();
    }

    const problems = results.flatMap((r) => r.problems);
    if (timedOut) problems.unshift(`the crew did not finish within ${DEMO_DEADLINE_MS / 1000} s and was stopped`);
    if (retros.error) problems.push(retros.error);
    else if (retros.files.length !== crew.runs.length) problems.push(`${retros.files.length} retrospective(s) written for ${crew.runs.length} run(s)`);
    const report: DemoReport = {
      ok: problems.length === 0,
      workspace: root,
      url,
      elapsedMs: io.now() - started,
      tasks: results,
      problems,
      service: { url, finalVersion, requests, stopped: true },
      retrospectives: retros,
      logs: ws.logsDir,
      crew,
    };
    if (opts.json) printJson(io, report);
    else printSummary(io, report);
    if (!report.ok) io.err(`opscrew demo: FAILED — ${problems.length} check(s) did not hold:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return report.ok ? EXIT.OK : EXIT.FAILED;
  } finally {
    await target?.close();
  }
}

function printSummary(io: CliIO, r: DemoReport): void {
  const out: string[] = ['', 'summary:'];
  out.push(
    ...renderTable(r.tasks, [
      { header: 'TASK', get: (t) => t.id },
      { header: 'SPECIALIST', get: (t) => t.specialist },
      { header: 'OUTCOME', get: (t) => outcomeText(t) },
      { header: 'ATTEMPTS', get: (t) => String(t.attempts) },
      { header: 'AS EXPECTED', get: (t) => (t.ok ? 'yes' : 'NO') },
      { header: 'REASON', get: (t) => shortReason(t.reason) || '-', max: 160 },
    ]).map((l) => `  ${l}`),
  );
  const posts = r.service.requests.filter((q) => q.method === 'POST').length;
  out.push(
    '',
    `the demo app got ${r.service.requests.length} requests (${posts} POST), serves ${r.service.finalVersion ?? 'nothing'} now, and is stopped.`,
    `${r.ok ? 'all four outcomes happened as expected' : `${r.problems.length} check(s) FAILED`} in ${(r.elapsedMs / 1000).toFixed(1)} s.`,
    '',
    'where to look:',
    `  workspace        ${r.workspace}  (kept; rm -rf it when done)`,
    `  completed tasks  ${join(r.workspace, 'tasks', 'completed')}  (ticked criteria + "## Verification Evidence")`,
    `  blocked tasks    ${join(r.workspace, 'tasks', 'backlog')}  (status: blocked + blocked_reason in the front matter)`,
    r.retrospectives.error
      ? `  retrospectives   ${r.retrospectives.dir}  (${r.retrospectives.error})`
      : `  retrospectives   ${r.retrospectives.dir}  (${r.retrospectives.files.length} written, one per run)`,
    `  crew logs        ${r.logs}`,
    `  node bin/opscrew.js --workspace ${r.workspace} tasks show TASK-004`,
    `  node bin/opscrew.js --workspace ${r.workspace} audit`,
  );
  printLines(io, out);
}
