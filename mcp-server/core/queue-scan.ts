// Folder → database sync. Cheap when nothing changed: readdir + stat per file and one read of
// the stored (file, size, mtime); only new or changed files are read and parsed. Everything
// found outside the write lock is re-checked inside BEGIN IMMEDIATE, because other processes
// move files only while holding that lock.
import { existsSync, readFileSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Issue } from './errors.js';
import type { ParseResult } from './task-parse.js';
import { frontMatterLine } from './task-graph.js';
import { writeFileDurable } from './durable-fs.js';
import {
  absFile,
  folderOf,
  formatTaskId,
  isoOf,
  maxTaskNumber,
  rowFromTask,
  upsertRow,
  type QueueContext,
  type TaskModules,
  type TaskRow,
} from './queue-rows.js';

export interface ScanReport {
  /** Task files (`*.md`) found in the three folders. */
  files: number;
  /** Files read and parsed because they were new or changed. */
  parsed: number;
  added: string[];
  updated: string[];
  removed: string[];
  assigned: Array<{ file: string; id: string }>;
  /** Files currently recorded as invalid (never moved, never modified). */
  invalid: number;
}

const STAT_OPTS = { throwIfNoEntry: false } as const;

/** Known files: path → [file, size, mtime] as the store has them. */
type Known = Map<string, readonly unknown[]>;

/**
 * Walks the queue folders (active first, so a leased task keeps its row on a duplicate id) and
 * stats each task file against what the store knows. Returns the new or changed files in that
 * order and the file count; what is left in `known` afterwards vanished. No object per file is
 * kept: at 10,000 files those cost real memory and GC time.
 */
function changedFiles(ctx: QueueContext, known: Known): { changed: string[]; files: number } {
  const changed: string[] = [];
  let files = 0;
  for (const folder of ['active', 'completed', 'backlog'] as const) {
    const dir = ctx.ws[folder];
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    names.sort();
    // join(dir, name) per file is a measurable share of a 10,000-file scan; a readdir name holds
    // no separator, so the normalized folder prefix plus the name is the same path.
    const prefix = join(dir, '_').slice(0, -1);
    const relDir = `tasks/${folder}/`;
    for (const name of names) {
      if (!name.endsWith('.md') || name.startsWith('.')) continue;
      const st = statSync(prefix + name, STAT_OPTS);
      if (!st?.isFile()) continue;
      files++;
      const rel = relDir + name;
      const k = known.get(rel);
      if (k) known.delete(rel);
      if (!k || k[1] !== st.size || k[2] !== st.mtimeMs) changed.push(rel);
    }
  }
  return { changed, files };
}

interface Parsed {
  st: Stats;
  text: string;
  result: ParseResult;
}

function readParse(mods: TaskModules, abs: string, rel: string, st: Stats): Parsed {
  const text = readFileSync(abs, 'utf8');
  return { st, text, result: mods.parseTask(text, rel) };
}

export async function scanFolders(ctx: QueueContext): Promise<ScanReport> {
  const { db, ws } = ctx;
  // What the store knows of each file: [file, size, mtime] (arrays, not row objects: 10,000 of them).
  const known: Known = new Map();
  let waitingDup = 0;
  db.read(() => {
    for (const sql of ['SELECT file, size, mtime_ms FROM tasks', 'SELECT file, size, mtime_ms FROM invalid_files']) {
      for (const r of db.rows(sql)) known.set(r[0] as string, r);
    }
    waitingDup =
      db.get<{ n: number }>(
        `SELECT count(*) AS n FROM invalid_files i WHERE reason = 'duplicate'
           AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = i.task_id)`,
      )?.n ?? 0;
  });
  const { changed, files } = changedFiles(ctx, known);
  const vanished = [...known.keys()];
  const report: ScanReport = { files, parsed: 0, added: [], updated: [], removed: [], assigned: [], invalid: 0 };
  if (changed.length === 0 && vanished.length === 0 && waitingDup === 0) {
    report.invalid = db.get<{ n: number }>('SELECT count(*) AS n FROM invalid_files')?.n ?? 0;
    return report;
  }

  const mods = await ctx.modules();
  // Parse outside the write lock; inside it only files that changed again are re-read.
  const pre = new Map<string, Parsed>();
  for (const rel of changed) {
    const abs = absFile(ws, rel);
    const st = statSync(abs, { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    try {
      pre.set(rel, readParse(mods, abs, rel, st));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  db.immediate(() => {
    const now = ctx.now();
    const needId: Array<{ rel: string; abs: string; parsed: Parsed }> = [];
    for (const rel of vanished) {
      if (existsSync(absFile(ws, rel))) continue; // came back (another process moved it meanwhile)
      const a = db.run('DELETE FROM tasks WHERE file = ?', [rel]).changes;
      const b = db.run('DELETE FROM invalid_files WHERE file = ?', [rel]).changes;
      if (a + b > 0) report.removed.push(rel);
    }
    const apply = (rel: string): void => {
      const abs = absFile(ws, rel);
      const folder = folderOf(rel);
      const st = statSync(abs, { throwIfNoEntry: false });
      if (!folder || !st?.isFile()) {
        db.run('DELETE FROM tasks WHERE file = ?', [rel]);
        db.run('DELETE FROM invalid_files WHERE file = ?', [rel]);
        return;
      }
      let p = pre.get(rel);
      if (!p || p.st.size !== st.size || p.st.mtimeMs !== st.mtimeMs) p = readParse(mods, abs, rel, st);
      report.parsed++;
      const existed =
        db.get('SELECT 1 AS x FROM tasks WHERE file = ?', [rel]) ?? db.get('SELECT 1 AS x FROM invalid_files WHERE file = ?', [rel]);
      (existed ? report.updated : report.added).push(rel);
      db.run('DELETE FROM invalid_files WHERE file = ?', [rel]);
      const r = p.result;
      if (!r.ok) {
        db.run('DELETE FROM tasks WHERE file = ?', [rel]);
        recordInvalid(ctx, rel, p.st, r.issues, r.id ?? null, 'invalid');
        return;
      }
      const id = r.task.fm.id;
      if (!id) {
        db.run('DELETE FROM tasks WHERE file = ?', [rel]);
        needId.push({ rel, abs, parsed: p });
        return;
      }
      const other = db.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]);
      if (other && other.file !== rel && existsSync(absFile(ws, other.file))) {
        db.run('DELETE FROM tasks WHERE file = ?', [rel]);
        const issue: Issue = {
          file: rel,
          line: frontMatterLine(p.text, 'id'),
          field: 'id',
          message: `duplicate id ${id}: ${other.file} already has it`,
          fix: 'give one of the files another id, or delete its id line so the next free id is assigned',
        };
        recordInvalid(ctx, rel, p.st, [issue], id, 'duplicate');
        return;
      }
      const row = rowFromTask(r.task, r.warnings, rel, folder, p.st, now);
      if (other) row.created_ms = other.created_ms;
      upsertRow(db, row);
    };
    for (const rel of changed) apply(rel);
    // A duplicate whose rival is gone takes the id over.
    const promote = db.all<{ file: string }>(
      `SELECT file FROM invalid_files i WHERE reason = 'duplicate'
         AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = i.task_id) ORDER BY file`,
    );
    for (const { file } of promote) apply(file);

    if (needId.length > 0) {
      let next = maxTaskNumber(db);
      for (const item of needId) {
        const id = formatTaskId(++next);
        const r = item.parsed.result;
        if (!r.ok) continue;
        const created = isoOf(Math.floor(item.parsed.st.birthtimeMs > 0 ? item.parsed.st.birthtimeMs : item.parsed.st.mtimeMs));
        const set: Record<string, string> = { id };
        if (!r.task.fm.created_at) set['created_at'] = created;
        const out = mods.updateTaskText(item.parsed.text, { set }, item.rel);
        if (!out.ok) {
          next--;
          recordInvalid(ctx, item.rel, item.parsed.st, [{ file: item.rel, line: 0, field: 'id', message: `cannot write an id back: ${out.message}` }], null, 'invalid');
          continue;
        }
        const again = mods.parseTask(out.value, item.rel);
        if (!again.ok || again.task.fm.id !== id) {
          throw new Error(`id write-back of ${item.rel} did not round-trip (renderer bug)`);
        }
        writeFileDurable(item.abs, out.value);
        const st = statSync(item.abs);
        const folder = folderOf(item.rel);
        if (!folder) continue;
        upsertRow(db, rowFromTask(again.task, again.warnings, item.rel, folder, st, now));
        report.assigned.push({ file: item.rel, id });
      }
    }
    // A task whose id another file also claims is not runnable until a person resolves it.
    db.run(
      `UPDATE tasks SET valid = 0 WHERE valid = 1
         AND id IN (SELECT task_id FROM invalid_files WHERE reason = 'duplicate' AND task_id IS NOT NULL)`,
    );
    db.run(
      `UPDATE tasks SET valid = 1 WHERE valid = 0
         AND id NOT IN (SELECT task_id FROM invalid_files WHERE reason = 'duplicate' AND task_id IS NOT NULL)`,
    );
    report.invalid = db.get<{ n: number }>('SELECT count(*) AS n FROM invalid_files')?.n ?? 0;
  });
  return report;
}

function recordInvalid(
  ctx: QueueContext,
  rel: string,
  st: Stats,
  issues: Issue[],
  taskId: string | null,
  reason: 'invalid' | 'duplicate',
): void {
  ctx.db.run(
    `INSERT INTO invalid_files (file, problems, size, mtime_ms, task_id, reason) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT(file) DO UPDATE SET problems = excluded.problems, size = excluded.size, mtime_ms = excluded.mtime_ms,
       task_id = excluded.task_id, reason = excluded.reason`,
    [rel, JSON.stringify(issues), st.size, st.mtimeMs, taskId, reason],
  );
}
