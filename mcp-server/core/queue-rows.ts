// Row-level helpers shared by the folder queue's scan, claim and reconcile code: how a parsed
// task becomes a `tasks` row, and the SQL that reads and writes those rows.
import type { Stats } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import type { Db } from './store.js';
import type { Issue } from './errors.js';
import { formatIssue } from './errors.js';
import type { ParseResult } from './task-parse.js';
import type { TaskUpdate } from './task-render.js';
import type { Result } from './errors.js';
import { PRIORITIES, type Priority, type Task, type TaskStatus } from './task-types.js';
import { TASK_FOLDERS, type TaskFolder, type Workspace } from './workspace.js';

export interface TaskModules {
  parseTask: (text: string, file: string) => ParseResult;
  updateTaskText: (text: string, update: TaskUpdate, file?: string) => Result<string>;
}

export interface QueueContext {
  ws: Workspace;
  db: Db;
  now: () => number;
  leaseMs: number;
  /** The parser is loaded on first need: a `tasks list` with nothing changed never pays for it. */
  modules: () => Promise<TaskModules>;
}

export interface TaskRow {
  id: string;
  folder: TaskFolder;
  file: string;
  title: string;
  priority: string;
  prio_rank: number;
  status: string | null;
  agent: string | null;
  depends_on: string;
  resources: string;
  tags: string;
  valid: number;
  problems: string;
  attempts: number;
  created_ms: number;
  size: number;
  mtime_ms: number;
  updated_ms: number;
}

export interface LeaseRow {
  task_id: string;
  token: number;
  holder: string;
  run_id: string;
  expires_ms: number;
}

export const DEFAULT_MAX_ATTEMPTS = 3;

/** Workspace-relative path with forward slashes: how files are named in rows and reports. */
export function relFile(ws: Workspace, abs: string): string {
  return relative(ws.root, abs).split(sep).join('/');
}

export function absFile(ws: Workspace, rel: string): string {
  return join(ws.root, ...rel.split('/'));
}

export function folderOf(rel: string): TaskFolder | null {
  const parts = rel.split('/');
  const f = parts[parts.length - 2];
  return (TASK_FOLDERS as readonly string[]).includes(f ?? '') ? (f as TaskFolder) : null;
}

export function folderRel(folder: TaskFolder, name: string): string {
  return `tasks/${folder}/${basename(name)}`;
}

export function prioRank(p: string): number {
  const i = (PRIORITIES as readonly string[]).indexOf(p);
  return i < 0 ? PRIORITIES.indexOf('medium') : i;
}

export function sameStat(row: { size: number; mtime_ms: number }, st: Pick<Stats, 'size' | 'mtimeMs'>): boolean {
  return row.size === st.size && row.mtime_ms === st.mtimeMs;
}

/** Age used for ordering: the front matter's created_at, else the file's birth (or mtime). */
export function createdMsOf(task: Task, st: Pick<Stats, 'birthtimeMs' | 'mtimeMs'>): number {
  const fromFm = task.fm.created_at ? Date.parse(task.fm.created_at) : Number.NaN;
  if (Number.isFinite(fromFm)) return fromFm;
  return Math.floor(st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs);
}

export function rowFromTask(
  task: Task,
  warnings: Issue[],
  rel: string,
  folder: TaskFolder,
  st: Pick<Stats, 'size' | 'mtimeMs' | 'birthtimeMs'>,
  now: number,
): TaskRow {
  const id = task.fm.id;
  if (!id) throw new Error(`rowFromTask: ${rel} has no id`);
  return {
    id,
    folder,
    file: rel,
    title: task.title,
    priority: task.fm.priority,
    prio_rank: prioRank(task.fm.priority),
    status: task.fm.status ?? null,
    agent: task.fm.agent ?? null,
    depends_on: JSON.stringify(task.fm.depends_on),
    resources: JSON.stringify(task.fm.resources),
    tags: JSON.stringify(task.fm.tags),
    valid: 1,
    problems: JSON.stringify(warnings.map(formatIssue)),
    attempts: task.fm.attempts ?? 0,
    created_ms: createdMsOf(task, st),
    size: st.size,
    mtime_ms: st.mtimeMs,
    updated_ms: now,
  };
}

/** Insert or refresh a row by id; keeps the first-seen age. The file path moves with the id. */
export function upsertRow(db: Db, row: TaskRow): void {
  db.run('DELETE FROM tasks WHERE file = ? AND id <> ?', [row.file, row.id]);
  db.run(
    `INSERT INTO tasks (id, folder, file, title, priority, prio_rank, status, agent, depends_on, resources, tags,
                        valid, problems, attempts, created_ms, size, mtime_ms, updated_ms)
     VALUES (@id, @folder, @file, @title, @priority, @prio_rank, @status, @agent, @depends_on, @resources, @tags,
             @valid, @problems, @attempts, @created_ms, @size, @mtime_ms, @updated_ms)
     ON CONFLICT(id) DO UPDATE SET folder = excluded.folder, file = excluded.file, title = excluded.title,
       priority = excluded.priority, prio_rank = excluded.prio_rank, status = excluded.status, agent = excluded.agent,
       depends_on = excluded.depends_on, resources = excluded.resources, tags = excluded.tags,
       problems = excluded.problems, attempts = excluded.attempts, size = excluded.size,
       mtime_ms = excluded.mtime_ms, updated_ms = excluded.updated_ms`,
    { ...row },
  );
}

export function getRow(db: Db, id: string): TaskRow | undefined {
  return db.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]);
}

export function getLease(db: Db, id: string): LeaseRow | undefined {
  return db.get<LeaseRow>('SELECT * FROM leases WHERE task_id = ?', [id]);
}

/**
 * The ready set: backlog, valid, not blocked or awaiting approval, not leased, every dependency
 * completed, no resource shared with an active task. Ordered by priority, then age.
 */
export const READY_SQL = `
SELECT t.* FROM tasks t
WHERE t.folder = 'backlog' AND t.valid = 1
  AND (t.status IS NULL OR t.status NOT IN ('blocked', 'awaiting-approval'))
  AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = t.id)
  AND NOT EXISTS (SELECT 1 FROM json_each(t.depends_on) d
                  WHERE NOT EXISTS (SELECT 1 FROM tasks x WHERE x.id = d.value AND x.folder = 'completed'))
  AND NOT EXISTS (SELECT 1 FROM json_each(t.resources) r, tasks a, json_each(a.resources) ar
                  WHERE a.folder = 'active' AND ar.value = r.value)`;

export const READY_ORDER = ' ORDER BY t.prio_rank, t.created_ms, t.id';

export function maxTaskNumber(db: Db): number {
  const r = db.get<{ m: number | null }>(
    `SELECT MAX(n) AS m FROM (
       SELECT CAST(substr(id, 6) AS INTEGER) AS n FROM tasks WHERE id GLOB 'TASK-[0-9]*'
       UNION ALL
       SELECT CAST(substr(task_id, 6) AS INTEGER) FROM invalid_files WHERE task_id GLOB 'TASK-[0-9]*')`,
  );
  return r?.m ?? 0;
}

/** A file-name slug for a title: lower-case words joined by dashes, at most 48 characters. */
export function titleSlug(title: string): string {
  const s = title
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48)
    .replace(/-+$/, '');
  return s || 'task';
}

export function formatTaskId(n: number): string {
  return `TASK-${String(n).padStart(3, '0')}`;
}

export function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}

export function addEvent(db: Db, ts: number, kind: string, taskId: string | null, runId: string | null, data: object = {}): void {
  db.run('INSERT INTO events (ts_ms, task_id, run_id, kind, data) VALUES (?, ?, ?, ?, ?)', [
    ts,
    taskId,
    runId,
    kind,
    JSON.stringify(data),
  ]);
}

export type { Priority, TaskStatus };
