// Write an imported plan's tasks into the backlog. Every task is rendered and parsed back before
// the first file is written; each file is created without ever replacing one (link(2) of a synced
// temp file fails with EEXIST, where rename(2) would overwrite), and if any write fails the files
// this import already created are removed again, so an import lands whole or not at all.
import { linkSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fsyncDir, unlinkQuiet, writeTempSynced } from './durable-fs.js';
import { fail, formatIssue, ok, type Issue, type Result } from './errors.js';
import { splitPlan } from './plan-import.js';
import { formatTaskId, titleSlug } from './queue-rows.js';
import { renderNewTask } from './task-render.js';
import { parseTask } from './task-parse.js';
import type { Priority } from './task-types.js';
import { TASK_FOLDERS, type Workspace } from './workspace.js';

/** Largest plan read: a planning document, not a data dump. */
export const PLAN_MAX_BYTES = 2 * 1024 * 1024;
/** How much of a task file is read to find its id (the id sits in the front matter). */
const ID_SCAN_BYTES = 20_000;

export interface ImportPlanOptions {
  workspace: Workspace;
  /** Absolute path of the plan. */
  planPath: string;
  /** How the plan is named in each task's Context and in warnings (default: its file name). */
  planName?: string;
  dryRun?: boolean;
  /** Lowest task number to hand out (e.g. the store's highest + 1); the task folders are scanned too. */
  firstNumber?: number;
}

export interface ImportedTask {
  id: string;
  /** Workspace-relative path (`tasks/backlog/TASK-007-….md`). */
  file: string;
  title: string;
  priority: Priority;
  dependsOn: string[];
  steps: number;
  criteria: { verify: number; manual: number; na: number };
  rollback: number;
  estimate?: string;
  /** Line of the section's heading in the plan. */
  sourceLine: number;
}

export interface ImportResult {
  plan: { file: string; title: string };
  dryRun: boolean;
  created: ImportedTask[];
  warnings: Issue[];
}

const ID_RE = /^id:[ \t]*["']?TASK-(\d{3,})["']?[ \t]*(?:#[^\r\n]*)?\r?$/m;
const NAME_RE = /^TASK-(\d{3,})\b/;

/**
 * Highest TASK-NNN number in the workspace's task folders, from each file's front-matter id (the
 * same line the parser reads, so invalid files count too) and from file names that start with an id.
 */
export function highestTaskNumber(ws: Workspace): number {
  let max = 0;
  for (const folder of TASK_FOLDERS) {
    let names: string[];
    try {
      names = readdirSync(ws[folder]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    for (const name of names) {
      if (!name.endsWith('.md') || name.startsWith('.')) continue;
      const byName = NAME_RE.exec(name);
      if (byName) max = Math.max(max, Number(byName[1]));
      let head: string;
      try {
        head = readHead(join(ws[folder], name));
      } catch {
        continue; // moved away meanwhile: its id is wherever it went, which we scan too
      }
      const m = ID_RE.exec(head);
      if (m) max = Math.max(max, Number(m[1]));
    }
  }
  return max;
}

function readHead(path: string): string {
  const text = readFileSync(path, 'utf8');
  return text.length > ID_SCAN_BYTES ? text.slice(0, ID_SCAN_BYTES) : text;
}


function readPlan(path: string, name: string): Result<string> {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return fail('PLAN_NOT_FOUND', `${name} is not a file`);
    size = st.size;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fail('PLAN_NOT_FOUND', code === 'ENOENT' ? `${name}: no such file` : `${name}: ${(e as Error).message}`, e);
  }
  if (size > PLAN_MAX_BYTES) return fail('PLAN_TOO_LARGE', `${name} is ${size} bytes; plans over ${PLAN_MAX_BYTES} bytes are refused`);
  try {
    return ok(readFileSync(path, 'utf8'));
  } catch (e) {
    return fail('PLAN_NOT_FOUND', `${name}: ${(e as Error).message}`, e);
  }
}

/**
 * Create every file durably in `dir`, none replacing an existing one; all or nothing: on a failure
 * the files created so far are removed and nothing else is touched.
 */
export function createFilesExclusive(files: ReadonlyArray<{ path: string; text: string; name: string }>, dir: string): Result<void> {
  const written: string[] = [];
  const undo = (): void => {
    for (const p of written) unlinkQuiet(p);
  };
  for (const f of files) {
    let tmp: string | null = null;
    try {
      tmp = writeTempSynced(f.path, f.text);
      linkSync(tmp, f.path);
      written.push(f.path);
    } catch (e) {
      undo();
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        return fail('PLAN_TARGET_EXISTS', `${f.name} already exists; nothing was imported (run the import again to get fresh ids)`);
      }
      return fail('PLAN_WRITE_FAILED', `cannot write ${f.name}: ${(e as Error).message}; nothing was imported`, e);
    } finally {
      if (tmp !== null) unlinkQuiet(tmp);
    }
  }
  try {
    fsyncDir(dir);
  } catch (e) {
    undo();
    return fail('PLAN_WRITE_FAILED', `cannot sync ${dir}: ${(e as Error).message}; nothing was imported`, e);
  }
  return ok(undefined);
}

/** Split the plan and (unless `dryRun`) create one backlog file per task. */
export function importPlan(opts: ImportPlanOptions): Result<ImportResult> {
  const name = opts.planName ?? basename(opts.planPath);
  const text = readPlan(opts.planPath, name);
  if (!text.ok) return text;
  let n = Math.max(opts.firstNumber ?? 1, highestTaskNumber(opts.workspace) + 1);
  const split = splitPlan(text.value, name, { nextId: () => formatTaskId(n++) });
  if (!split.ok) return split;

  const planned: Array<{ path: string; text: string; info: ImportedTask }> = [];
  const problems: Issue[] = [];
  for (const t of split.value.tasks) {
    const id = t.id ?? '';
    const fileName = `${id}-${titleSlug(t.title)}.md`;
    const rel = `tasks/backlog/${fileName}`;
    const out = renderNewTask(t);
    const parsed = parseTask(out, rel);
    if (!parsed.ok) {
      problems.push(...parsed.issues.map((i) => ({ ...i, message: `${i.message} (task from ${name} line ${t.sourceLine})` })));
      continue;
    }
    const kinds = { verify: 0, manual: 0, na: 0 };
    for (const c of parsed.task.criteria) kinds[c.kind] += 1;
    planned.push({
      path: join(opts.workspace.backlog, fileName),
      text: out,
      info: {
        id,
        file: rel,
        title: parsed.task.title,
        priority: parsed.task.fm.priority,
        dependsOn: parsed.task.fm.depends_on,
        steps: parsed.task.steps.length,
        criteria: kinds,
        rollback: parsed.task.rollback.length,
        ...(t.estimate !== undefined ? { estimate: t.estimate } : {}),
        sourceLine: t.sourceLine,
      },
    });
  }
  if (problems.length > 0) {
    // A bug in the splitter, not in the plan: refuse the whole import rather than write half of it.
    return fail('PLAN_TASK_INVALID', `the tasks made from ${name} would not be valid; nothing was written:\n${problems.map(formatIssue).join('\n')}`);
  }
  const result: ImportResult = {
    plan: { file: name, title: split.value.title },
    dryRun: opts.dryRun === true,
    created: planned.map((p) => p.info),
    warnings: split.value.warnings,
  };
  if (opts.dryRun) return ok(result);

  const wrote = createFilesExclusive(planned.map((p) => ({ path: p.path, text: p.text, name: p.info.file })), opts.workspace.backlog);
  if (!wrote.ok) return wrote;
  return ok(result);
}
