// What `opscrew tasks …` does, imported lazily by cmd-tasks.ts so each command loads only what it uses.
import { existsSync } from 'node:fs';
import { formatIssue, type Issue } from '../../mcp-server/core/errors.js';
import type { Task } from '../../mcp-server/core/task-types.js';
import { resolveWorkspace, type Workspace } from '../../mcp-server/core/workspace.js';
import { CliError } from './context.js';
import { EXIT } from './exit-codes.js';
import { printJson, printLines, renderTable, type CliIO } from './output.js';

export function requireWorkspace(dir: string): Workspace {
  const ws = resolveWorkspace(dir);
  if (!existsSync(ws.tasksDir)) {
    throw new CliError(EXIT.CONFIG, `${ws.root} is not an opscrew workspace (no tasks/ folder): run \`opscrew init ${ws.root}\` or pass --workspace DIR`);
  }
  return ws;
}

// ------------------------------------------------------------------------------------ lint

export async function lintCommand(io: CliIO, dir: string, paths: string[], opts: { json?: boolean }): Promise<number> {
  const { collectTaskFiles, lintFiles } = await import('./task-lint.js');
  const { knownWorkspaceTasks, policyLineChecker } = await import('./lint-context.js');
  const ws = resolveWorkspace(dir);
  const explicit = paths.length > 0;
  if (!explicit) requireWorkspace(dir);
  const targets = explicit ? paths : [ws.backlog, ws.active, ws.completed];
  const { files, missing } = collectTaskFiles(targets, io.cwd);
  if (missing.length > 0) throw new CliError(EXIT.FAILED, `no such file or folder: ${missing.join(', ')}`);

  const checker = await policyLineChecker(ws, io);
  const report = lintFiles(files, {
    cwd: io.cwd,
    knownTasks: explicit ? knownWorkspaceTasks(ws) : [],
    ...(checker.check ? { checkLine: checker.check } : {}),
  });
  const configProblems: Issue[] = checker.configIssues;
  report.notes.push(...checker.notes);
  const problems = report.problemCount + configProblems.length;

  if (opts.json) {
    printJson(io, {
      ok: problems === 0,
      files: report.files.map((f) => ({ file: f.file, id: f.id ?? null, valid: f.valid, problems: f.problems, warnings: f.warnings })),
      config: configProblems,
      problems,
      warnings: report.warningCount,
      notes: report.notes,
    });
  } else {
    const lines: string[] = [];
    for (const i of configProblems) lines.push(formatIssue(i));
    for (const f of report.files) {
      for (const p of f.problems) lines.push(formatIssue(p));
      for (const w of f.warnings) lines.push(formatIssue({ ...w, message: `warning: ${w.message}` }));
    }
    printLines(io, lines);
    for (const n of report.notes) io.err(`note: ${n}\n`);
    const bad = report.files.filter((f) => !f.valid).length;
    io.err(`${report.files.length} file(s) checked, ${bad} with problems (${problems} problem(s), ${report.warningCount} warning(s))\n`);
  }
  return problems > 0 ? EXIT.FAILED : EXIT.OK;
}

// ------------------------------------------------------------------------------------ list

type ListStatus = 'backlog' | 'active' | 'completed' | 'blocked' | 'ready' | 'invalid';

async function openQueue(ws: Workspace) {
  const [{ openStore }, { createFolderQueue }] = await Promise.all([
    import('../../mcp-server/core/store.js'),
    import('../../mcp-server/core/queue.js'),
  ]);
  const store = openStore(ws.dbPath);
  return { store, queue: createFolderQueue({ workspace: ws, store }) };
}

export async function listTasks(io: CliIO, dir: string, opts: { status?: ListStatus; json?: boolean }): Promise<number> {
  const ws = requireWorkspace(dir);
  const { store, queue } = await openQueue(ws);
  try {
    const scan = await queue.scan();
    const filter = opts.status !== undefined && opts.status !== 'invalid' ? { status: opts.status } : {};
    const invalid = opts.status === undefined || opts.status === 'invalid' ? await queue.invalid() : [];
    if (opts.json) {
      // Compact: a script parses this, and 10,000 tasks must list in well under a second. The
      // task records come as JSON bytes from the store; the whole is what stringifying
      // { workspace, tasks, invalid, assigned } would give.
      const tasks = opts.status === 'invalid' ? Buffer.from('[]') : await queue.listJson(filter);
      const head = `{"workspace":${JSON.stringify(ws.root)},"tasks":`;
      const tail = `,"invalid":${JSON.stringify(invalid)},"assigned":${JSON.stringify(scan.assigned)}}\n`;
      io.out(Buffer.concat([Buffer.from(head), tasks, Buffer.from(tail)]));
      return EXIT.OK;
    }
    const tasks = opts.status === 'invalid' ? [] : await queue.list(filter);
    for (const a of scan.assigned) io.err(`assigned ${a.id} to ${a.file}\n`);
    const lines = renderTable(tasks, [
      { header: 'ID', get: (t) => t.id },
      { header: 'FOLDER', get: (t) => t.folder },
      { header: 'STATUS', get: (t) => t.status ?? (t.valid ? '-' : 'duplicate-id') },
      { header: 'PRIORITY', get: (t) => t.priority },
      { header: 'AGENT', get: (t) => t.agent ?? '-' },
      { header: 'DEPENDS', get: (t) => (t.dependsOn.length ? t.dependsOn.join(',') : '-'), max: 24 },
      { header: 'TITLE', get: (t) => t.title, max: 72 },
    ]);
    if (tasks.length > 0) printLines(io, lines);
    for (const f of invalid) {
      const first = f.problems[0];
      io.out(`INVALID  ${f.file}: ${first ? formatIssue(first) : f.reason}${f.problems.length > 1 ? ` (+${f.problems.length - 1} more)` : ''}\n`);
    }
    if (tasks.length === 0 && invalid.length === 0) io.err(`no tasks${opts.status ? ` with status ${opts.status}` : ''} in ${ws.root}\n`);
    else if (invalid.length > 0) io.err(`${invalid.length} invalid file(s): run \`opscrew tasks lint\` for every problem\n`);
    return EXIT.OK;
  } finally {
    store.close();
  }
}

// ------------------------------------------------------------------------------------ show

export async function showTask(io: CliIO, dir: string, ref: string, opts: { json?: boolean }): Promise<number> {
  const { readFileSync } = await import('node:fs');
  const { isAbsolute, resolve } = await import('node:path');
  const { parseTask } = await import('../../mcp-server/core/task-parse.js');
  const looksLikePath = ref.endsWith('.md') || ref.includes('/');
  let file: string;
  let abs: string;
  let record: unknown = null;
  let graph: Issue[] = [];
  if (looksLikePath) {
    abs = isAbsolute(ref) ? ref : resolve(io.cwd, ref);
    if (!existsSync(abs)) throw new CliError(EXIT.FAILED, `no such task file: ${ref}`);
    file = ref;
  } else {
    const ws = requireWorkspace(dir);
    const { store, queue } = await openQueue(ws);
    try {
      await queue.scan();
      const rec = await queue.get(ref);
      if (rec) {
        record = rec;
        file = rec.file;
        graph = (await queue.graphIssues()).filter((i) => i.file === rec.file);
      } else {
        const bad = (await queue.invalid()).find((f) => f.taskId === ref);
        if (!bad) throw new CliError(EXIT.FAILED, `no task ${ref} in ${ws.root} (try \`opscrew tasks list\`)`);
        file = bad.file;
      }
      abs = resolve(ws.root, file);
    } finally {
      store.close();
    }
  }
  const parsed = parseTask(readFileSync(abs, 'utf8'), file);
  const problems = parsed.ok ? graph : [...parsed.issues, ...graph];
  const warnings = parsed.ok ? parsed.warnings : [];
  if (opts.json) {
    printJson(io, parsed.ok ? { file, valid: problems.length === 0, record, task: parsed.task, problems, warnings } : { file, valid: false, record, task: null, problems, warnings });
    return problems.length > 0 ? EXIT.FAILED : EXIT.OK;
  }
  const lines: string[] = [];
  if (parsed.ok) lines.push(...describeTask(parsed.task, record as { folder?: string; status?: string | null } | null));
  else lines.push(`${file}: not a valid task`);
  lines.push(problems.length ? 'Problems:' : 'Problems: none');
  for (const p of problems) lines.push(`  ${formatIssue(p)}`);
  for (const w of warnings) lines.push(`  ${formatIssue({ ...w, message: `warning: ${w.message}` })}`);
  printLines(io, lines);
  return problems.length > 0 ? EXIT.FAILED : EXIT.OK;
}

function describeTask(t: Task, rec: { folder?: string; status?: string | null } | null): string[] {
  const fm = t.fm;
  const list = (xs: readonly string[]): string => (xs.length ? xs.join(', ') : '-');
  const out = [
    `${fm.id ?? '(no id yet)'}  ${t.title}`,
    `  file:        ${t.file}`,
    `  folder:      ${rec?.folder ?? '-'}    status: ${fm.status ?? rec?.status ?? '-'}    priority: ${fm.priority}    agent: ${fm.agent ?? '(routed)'}`,
    `  tags:        ${list(fm.tags)}`,
    `  depends on:  ${list(fm.depends_on)}`,
    `  resources:   ${list(fm.resources)}`,
  ];
  if (fm.timeout_ms !== undefined) out.push(`  timeout:     ${Math.round(fm.timeout_ms / 1000)}s`);
  if (fm.max_attempts !== undefined) out.push(`  max attempts: ${fm.max_attempts}`);
  if (fm.approve.length) out.push('  pre-approved:', ...fm.approve.map((a) => `    ${a}`));
  if (fm.blocked_reason) out.push(`  blocked:     ${fm.blocked_reason}`);
  const items = (title: string, xs: Task['steps']): void => {
    if (xs.length === 0) return;
    out.push(`${title}:`);
    for (const it of xs) out.push(`  ${stepLine(it)}`, ...expectLines(it, '        '));
  };
  items('Preflight', t.preflight);
  items('Steps', t.steps);
  if (t.criteria.length) {
    out.push('Acceptance criteria:');
    for (const c of t.criteria) {
      out.push(`  L${c.line}  [${c.kind === 'na' ? 'n/a' : c.kind}]${c.checked ? ' (checked)' : ''} ${c.text}`);
      if (c.kind === 'verify') for (const it of c.items) out.push(`        ${stepLine(it)}`, ...expectLines(it, '              '));
    }
  }
  items('Rollback', t.rollback);
  return out;
}

type StepItem = Task['steps'][number];

function stepLine(it: StepItem): string {
  if (it.kind === 'command') return `L${it.line}  ${it.text}`;
  if (it.kind === 'export') return `L${it.line}  export ${it.name}=${it.value}`;
  return `L${it.line}  write file ${it.path}${it.mode ? ` (mode ${it.mode})` : ''}: ${it.content.replace(/\n$/, '').split('\n').length} line(s)`;
}

function expectLines(it: StepItem, indent: string): string[] {
  if (it.kind !== 'command') return [];
  return it.expects.map((e) =>
    e.kind === 'contains' ? `${indent}expect: output contains ${JSON.stringify(e.text)}` : e.kind === 'regex' ? `${indent}expect: output matches /${e.source}/${e.flags}` : `${indent}expect: exit ${e.code}`,
  );
}

// ------------------------------------------------------------------------------------ new

export interface NewOptions {
  title: string;
  priority: 'critical' | 'high' | 'medium' | 'low';
  agent?: string;
  tag?: string[];
  dependsOn?: string[];
  resource?: string[];
  step?: string[];
  criterion?: string[];
  json?: boolean;
}


export async function newTask(io: CliIO, dir: string, opts: NewOptions): Promise<number> {
  const { statSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const [{ renderNewTask }, { parseTask }, rows] = await Promise.all([
    import('../../mcp-server/core/task-render.js'),
    import('../../mcp-server/core/task-parse.js'),
    import('../../mcp-server/core/queue-rows.js'),
  ]);
  if (opts.title.trim() === '') throw new CliError(EXIT.USAGE, '--title must not be empty');
  const ws = requireWorkspace(dir);
  const criteria = (opts.criterion ?? []).map((c) => {
    const i = c.indexOf(' :: ');
    return i < 0 ? { text: c.trim() } : { text: c.slice(0, i).trim(), command: c.slice(i + 4).trim() };
  });
  const { store, queue } = await openQueue(ws);
  try {
    await queue.scan();
    // Pick the id, write the file and record its row under one write lock, so two `tasks new`
    // (or a daemon's intake) can never hand out the same id.
    const out = store.db.immediate(() => {
      const id = rows.formatTaskId(rows.maxTaskNumber(store.db) + 1);
      const text = renderNewTask({
        id,
        title: opts.title.trim(),
        priority: opts.priority,
        ...(opts.agent !== undefined ? { agent: opts.agent } : {}),
        tags: opts.tag ?? [],
        depends_on: opts.dependsOn ?? [],
        resources: opts.resource ?? [],
        steps: opts.step ?? [],
        criteria,
      });
      const name = `${id}-${rows.titleSlug(opts.title)}.md`;
      const rel = `tasks/backlog/${name}`;
      const parsed = parseTask(text, rel);
      if (!parsed.ok) {
        return { ok: false as const, issues: parsed.issues };
      }
      const abs = join(ws.backlog, name);
      writeFileSync(abs, text, { flag: 'wx' });
      const st = statSync(abs);
      rows.upsertRow(store.db, rows.rowFromTask(parsed.task, parsed.warnings, rel, 'backlog', st, io.now()));
      return { ok: true as const, id, file: rel, path: abs };
    });
    if (!out.ok) {
      for (const i of out.issues) io.err(`${formatIssue(i)}\n`);
      throw new CliError(EXIT.FAILED, 'the new task would not be valid; nothing was written');
    }
    if (opts.json) printJson(io, { id: out.id, file: out.file, path: out.path });
    else io.out(`created ${out.id} ${out.file}\n`);
    return EXIT.OK;
  } finally {
    store.close();
  }
}
