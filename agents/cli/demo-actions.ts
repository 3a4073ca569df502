// What `opscrew demo` does (loaded lazily).
import { copyFileSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatIssue } from '../../mcp-server/core/errors.js';
import { checkLine } from '../../mcp-server/core/gate.js';
import { openStore } from '../../mcp-server/core/store.js';
import { createFolderQueue } from '../../mcp-server/core/queue.js';
import { resolveWorkspace } from '../../mcp-server/core/workspace.js';
import { initWorkspace } from './cmd-init.js';
import { CliError } from './context.js';
import { EXIT } from './exit-codes.js';
import { exitForCheck } from './gate-actions.js';
import { PERSON, policyLineChecker, requireConfig } from './lint-context.js';
import { printJson, printLines, renderTable, type CliIO } from './output.js';
import { packageRoot } from './paths.js';
import { collectTaskFiles, lintFiles, taskCommandLines } from './task-lint.js';

interface DemoLine {
  task: string;
  file: string;
  line: number;
  section: string;
  text: string;
  tool: string | null;
  class: string | null;
  decision: string;
  rule: string;
  preApproved: boolean;
  exitCode: number;
}

export async function runDemo(io: CliIO, opts: { dir?: string; json?: boolean }): Promise<number> {
  const examples = join(packageRoot(), 'examples');
  const exampleTasks = join(examples, 'tasks');
  if (!existsSync(exampleTasks)) throw new CliError(EXIT.FAILED, `no examples/tasks/ in ${packageRoot()}`);
  let root: string;
  if (opts.dir !== undefined) {
    root = resolve(io.cwd, opts.dir);
    if (existsSync(root)) throw new CliError(EXIT.USAGE, `--dir ${root} exists already; name a new folder`);
  } else root = mkdtempSync(join(tmpdir(), 'opscrew-demo-'));
  const ws = resolveWorkspace(root);

  // 1. A workspace like `opscrew init` makes, with the example config and tasks in the backlog.
  initWorkspace(ws, join(examples, 'opscrew.config.yaml'));
  openStore(ws.dbPath).close();
  const names = readdirSync(exampleTasks).filter((n) => n.endsWith('.md')).sort();
  for (const n of names) copyFileSync(join(exampleTasks, n), join(ws.backlog, n));
  const config = await requireConfig(ws, io);

  // 2. `tasks lint`: every file, cross-file checks, every command line against tools and policy.
  const checker = await policyLineChecker(ws, io);
  const { files } = collectTaskFiles([ws.backlog, ws.active, ws.completed], root);
  const lint = lintFiles(files, { cwd: root, ...(checker.check ? { checkLine: checker.check } : {}) });
  const lintProblems = [...checker.configIssues, ...lint.files.flatMap((f) => f.problems)];

  // 3. `tasks list`: the queue's scan assigns ids to files that have none, then lists from the store.
  const store = openStore(ws.dbPath);
  let tasks;
  let assigned;
  try {
    const queue = createFolderQueue({ workspace: ws, store });
    assigned = (await queue.scan()).assigned;
    tasks = await queue.list();
  } finally {
    store.close();
  }

  // 4. `check-command` over every command line of every task, as a person (the whole config).
  const idByFile = new Map(tasks.map((t) => [t.file, t.id]));
  const lines: DemoLine[] = [];
  for (const f of lint.files) {
    const task = f.task;
    if (!task) continue;
    const approved = new Set<string>();
    for (const a of task.fm.approve) {
      const r = checkLine({ config, env: { ...io.env }, now: io.now }, { line: a, agent: PERSON, scope: 'person' });
      if (r.call) approved.add(r.call.canonical);
    }
    for (const l of taskCommandLines(task)) {
      const r = checkLine({ config, env: { ...io.env }, now: io.now }, { line: l.text, vars: l.vars, agent: PERSON, scope: 'person' });
      lines.push({
        task: idByFile.get(`tasks/backlog/${f.file.split('/').pop() ?? ''}`) ?? task.fm.id ?? '?',
        file: f.file,
        line: l.line,
        section: l.section,
        text: l.text,
        tool: r.call?.tool ?? null,
        class: r.call?.class ?? null,
        decision: r.decision.verdict,
        rule: r.decision.rule,
        preApproved: r.decision.verdict === 'needs-approval' && r.call !== undefined && approved.has(r.call.canonical),
        exitCode: exitForCheck(r),
      });
    }
  }
  const count = (p: (l: DemoLine) => boolean): number => lines.filter(p).length;
  const summary = {
    tasks: tasks.length,
    lintProblems: lintProblems.length,
    commandLines: lines.length,
    allowed: count((l) => l.decision === 'allow'),
    needsApproval: count((l) => l.decision === 'needs-approval'),
    preApproved: count((l) => l.preApproved),
    refused: count((l) => l.exitCode === EXIT.REFUSED),
    unparseable: count((l) => l.exitCode === EXIT.UNPARSEABLE),
  };
  const code = lintProblems.length > 0 ? EXIT.FAILED : EXIT.OK;

  if (opts.json) {
    printJson(io, { workspace: root, mode: config.mode, summary, lint: lintProblems, assigned, tasks, lines });
    return code;
  }
  const out: string[] = [];
  out.push(`opscrew demo — a throwaway workspace built from examples/ (mode: ${config.mode})`, `workspace: ${root}`, '');
  out.push(`1. tasks lint: ${lint.files.length} file(s), ${lintProblems.length} problem(s)`);
  for (const p of lintProblems) out.push(`   ${formatIssue(p)}`);
  out.push('', `2. tasks list: ${tasks.length} task(s)${assigned.length ? `; ids assigned on intake: ${assigned.map((a) => a.id).join(', ')}` : ''}`);
  out.push(
    ...renderTable(tasks, [
      { header: 'ID', get: (t) => t.id },
      { header: 'PRIORITY', get: (t) => t.priority },
      { header: 'AGENT', get: (t) => t.agent ?? '(routed)' },
      { header: 'DEPENDS', get: (t) => (t.dependsOn.length ? t.dependsOn.join(',') : '-') },
      { header: 'TITLE', get: (t) => t.title, max: 60 },
    ]).map((l) => `   ${l}`),
  );
  out.push('', `3. check-command over every command line (${lines.length}), as a person:`);
  out.push(
    ...renderTable(lines, [
      { header: 'TASK', get: (l) => l.task },
      { header: 'LINE', get: (l) => String(l.line) },
      { header: 'SECTION', get: (l) => l.section },
      { header: 'TOOL', get: (l) => l.tool ?? '-' },
      { header: 'CLASS', get: (l) => l.class ?? '-' },
      { header: 'DECISION', get: (l) => (l.preApproved ? 'needs-approval (pre-approved in the task)' : l.decision) },
      { header: 'COMMAND', get: (l) => l.text, max: 70 },
    ]).map((l) => `   ${l}`),
  );
  out.push(
    '',
    `summary: ${summary.tasks} tasks, ${summary.lintProblems} lint problem(s); ${summary.commandLines} command lines: ` +
      `${summary.allowed} allowed, ${summary.needsApproval} need approval (${summary.preApproved} pre-approved by their task), ` +
      `${summary.refused} refused, ${summary.unparseable} not vetted`,
    '',
    'Nothing was run. Look around:',
    `  node bin/opscrew.js --workspace ${root} tasks show ${tasks[0]?.id ?? 'TASK-001'}`,
    `  node bin/opscrew.js --workspace ${root} check-command 'kubectl --context staging -n orders delete pod x'`,
    `  rm -rf ${root}    # when done`,
  );
  printLines(io, out);
  return code;
}
