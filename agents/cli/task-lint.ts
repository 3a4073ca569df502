// The work behind `opscrew tasks lint` (and the demo): parse every task file, run the
// cross-file checks, and vet every command line. Reads files only — never writes, moves or
// assigns an id.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Issue } from '../../mcp-server/core/errors.js';
import { parseTask } from '../../mcp-server/core/task-parse.js';
import { checkTaskGraph, type GraphNode } from '../../mcp-server/core/task-graph.js';
import type { Task } from '../../mcp-server/core/task-types.js';

export interface LintedFile {
  /** As shown in messages: relative to the current directory when inside it. */
  file: string;
  path: string;
  id?: string;
  valid: boolean;
  task?: Task;
  problems: Issue[];
  warnings: Issue[];
}

export interface LintReport {
  files: LintedFile[];
  /** Count of problems over all files (each makes the lint fail). */
  problemCount: number;
  warningCount: number;
  /** Remarks about the run itself (e.g. policy checks skipped). */
  notes: string[];
}

/** Vets one command line of a task; returns problems (unparseable, refused) located at `line`. */
export type LineChecker = (task: Task, line: TaskLine) => Issue[];

export interface LintOptions {
  cwd: string;
  /** Tasks the linted files may depend on without being linted (id, workspace file). */
  knownTasks?: ReadonlyArray<{ id: string; path: string; dependsOn: string[] }>;
  checkLine?: LineChecker;
}

const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** Expands files and folders (recursively, skipping dot-folders) into sorted `.md` paths. */
export function collectTaskFiles(paths: readonly string[], cwd: string): { files: string[]; missing: string[] } {
  const files: string[] = [];
  const missing: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 8) return;
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.md')) files.push(p);
    }
  };
  for (const raw of paths) {
    const p = resolve(cwd, raw);
    if (!existsSync(p)) {
      missing.push(raw);
      continue;
    }
    if (statSync(p).isDirectory()) walk(p, 0);
    else files.push(p);
  }
  return { files: [...new Set(files)], missing };
}

export function displayPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel !== '' && !rel.startsWith('..') ? rel : path;
}

export function lintFiles(paths: readonly string[], opts: LintOptions): LintReport {
  const files: LintedFile[] = paths.map((path) => lintOne(path, displayPath(path, opts.cwd)));
  const notes: string[] = [];

  // Cross-file: duplicate ids, missing dependencies, cycles — over the linted files plus the
  // tasks they may depend on; only problems of linted files are reported.
  const nodes: GraphNode[] = [];
  const linted = new Set(paths);
  for (const f of files) {
    if (f.id === undefined) continue;
    nodes.push({ file: f.file, path: f.path, id: f.id, dependsOn: f.task?.fm.depends_on ?? [] });
  }
  for (const k of opts.knownTasks ?? []) {
    if (!linted.has(k.path)) nodes.push({ file: displayPath(k.path, opts.cwd), path: k.path, id: k.id, dependsOn: k.dependsOn });
  }
  const byFile = new Map(files.map((f) => [f.file, f]));
  for (const issue of checkTaskGraph(nodes)) byFile.get(issue.file)?.problems.push(issue);

  if (opts.checkLine) {
    for (const f of files) if (f.task) f.problems.push(...commandLineProblems(f.task, opts.checkLine));
  }
  for (const f of files) {
    f.problems.sort((a, b) => a.line - b.line);
    f.valid = f.problems.length === 0;
  }
  return {
    files,
    problemCount: files.reduce((n, f) => n + f.problems.length, 0),
    warningCount: files.reduce((n, f) => n + f.warnings.length, 0),
    notes,
  };
}

function lintOne(path: string, file: string): LintedFile {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_FILE_BYTES) {
      return { file, path, valid: false, warnings: [], problems: [{ file, line: 0, message: `file is ${size} bytes; a task file may have at most ${MAX_FILE_BYTES}`, fix: 'split it into several tasks' }] };
    }
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    return { file, path, valid: false, warnings: [], problems: [{ file, line: 0, message: `cannot read: ${String(cause)}` }] };
  }
  const r = parseTask(text, file);
  if (!r.ok) return { file, path, valid: false, problems: [...r.issues], warnings: [], ...(r.id !== undefined ? { id: r.id } : {}) };
  return {
    file,
    path,
    valid: true,
    task: r.task,
    problems: [],
    warnings: [...r.warnings],
    ...(r.task.fm.id !== undefined ? { id: r.task.fm.id } : {}),
  };
}

export interface TaskLine {
  section: string;
  line: number;
  text: string;
  /** `export NAME=value` variables set by earlier lines of the task. */
  vars: Record<string, string>;
  /** A file block (written through the files tool); `text` is then `write PATH`. */
  fileBlock?: { path: string; content: string };
}

/** Every runnable command line of a task in document order, with the variables in force. */
export function taskCommandLines(task: Task): TaskLine[] {
  const out: TaskLine[] = [];
  let vars: Record<string, string> = {};
  const add = (section: string, items: Task['steps']): void => {
    for (const it of items) {
      if (it.kind === 'export') vars = { ...vars, [it.name]: it.value };
      else if (it.kind === 'command') out.push({ section, line: it.line, text: it.text, vars });
      else out.push({ section, line: it.line, text: `write ${it.path}`, vars, fileBlock: { path: it.path, content: it.content } });
    }
  };
  add('preflight', task.preflight);
  add('steps', task.steps);
  for (const c of task.criteria) if (c.kind === 'verify') add('acceptance', c.items);
  add('rollback', task.rollback);
  return out;
}

function commandLineProblems(task: Task, check: LineChecker): Issue[] {
  return taskCommandLines(task).flatMap((c) => check(task, c));
}
