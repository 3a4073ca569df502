// The reconciler: after a crash (or any time) it makes folders and store agree again.
// Folders win. A task whose lease expired or is missing goes back to backlog (blocked after
// max_attempts), unless its front matter shows the holder had already finished it, in which
// case the move is rolled forward. Invalid files are reported by scan and never touched.
import { readFileSync, readdirSync, renameSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fsyncDir, tempFilePid, unlinkQuiet, writeTempSynced } from './durable-fs.js';
import { scanFolders, type ScanReport } from './queue-scan.js';
import {
  absFile,
  addEvent,
  DEFAULT_MAX_ATTEMPTS,
  getLease,
  getRow,
  isoOf,
  relFile,
  type QueueContext,
  type TaskModules,
  type TaskRow,
} from './queue-rows.js';
import type { TaskUpdate } from './task-render.js';
import { TASK_FOLDERS, type TaskFolder } from './workspace.js';

export type RepairKind =
  | 'temp-removed'
  | 'duplicate-removed'
  | 'lease-lost'
  | 'blocked-after-losses'
  | 'rolled-forward'
  | 'orphan-lease'
  | 'run-lost'
  | 'status-fixed';

export interface Repair {
  kind: RepairKind;
  id?: string;
  file: string;
  detail: string;
}

export interface ReconcileReport {
  scan: ScanReport;
  repairs: Repair[];
}

/** A temp file is stale when its writer is dead, or (other host, pid reuse) it is old. */
const STALE_TEMP_MS = 10 * 60_000;
const STALE_MADE_AHEAD_MS = 24 * 3600_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Text after the front matter: the author's body, which must never be lost. */
export function bodyOf(text: string): string {
  const m = /^\uFEFF?---\r?\n[\s\S]*?\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/.exec(text);
  return m ? text.slice(m[0].length) : text;
}

/** A folder's entries; none when it cannot be read (a missing folder has nothing to repair). */
function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Temp files of dead writers in the task folders, in retrospectives/ and in .opscrew/tmp/. */
function removeStaleTemps(ctx: QueueContext, repairs: Repair[]): void {
  for (const dir of [...TASK_FOLDERS.map((f) => ctx.ws[f]), ctx.ws.retrospectives, ctx.ws.tmpDir]) {
    for (const name of namesIn(dir)) {
      const pid = tempFilePid(name);
      if (pid === null) continue;
      const abs = join(dir, name);
      const st = statSync(abs, { throwIfNoEntry: false });
      if (!st) continue;
      // .opscrew/tmp/ holds files made at a claim for its finish: a live writer keeps them as long
      // as its task runs (up to a day here; past that its finish writes one beside the file).
      const staleMs = dir === ctx.ws.tmpDir ? STALE_MADE_AHEAD_MS : STALE_TEMP_MS;
      if (pid !== process.pid && pidAlive(pid) && ctx.now() - st.mtimeMs < staleMs) continue;
      if (pid === process.pid && ctx.now() - st.mtimeMs < staleMs) continue;
      unlinkQuiet(abs);
      repairs.push({ kind: 'temp-removed', file: relFile(ctx.ws, abs), detail: `stale temp file of pid ${pid}` });
    }
  }
}

/**
 * The same file name in two folders with identical bytes is a copy a crashed move left behind
 * (rename-based moves cannot, but a person's copy or another tool can). Removing a byte-identical
 * copy loses nothing; keep the one the store points at, else the one furthest along. Copies that
 * differ in any byte are left alone: scan reports them as duplicate ids for a person to resolve.
 */
function removeCrashCopies(ctx: QueueContext, repairs: Repair[]): void {
  // Under the write lock: no queue operation (another crew thread, another daemon) moves a file
  // between the folder listings, so a task caught mid-move never looks like two copies.
  ctx.db.immediate(() => removeCrashCopiesLocked(ctx, repairs));
}

function removeCrashCopiesLocked(ctx: QueueContext, repairs: Repair[]): void {
  const where = new Map<string, TaskFolder[]>();
  for (const folder of TASK_FOLDERS) {
    for (const n of namesIn(ctx.ws[folder])) {
      if (!n.endsWith('.md') || n.startsWith('.')) continue;
      const l = where.get(n);
      if (l) l.push(folder);
      else where.set(n, [folder]);
    }
  }
  const rank: Record<TaskFolder, number> = { backlog: 0, active: 1, completed: 2 };
  for (const [name, folders] of where) {
    if (folders.length < 2) continue;
    const copies = folders.flatMap((f) => {
      const abs = join(ctx.ws[f], name);
      const rel = relFile(ctx.ws, abs);
      const inStore = ctx.db.get('SELECT 1 AS x FROM tasks WHERE file = ?', [rel]) !== undefined;
      let bytes: Buffer;
      try {
        bytes = readFileSync(abs);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []; // moved by something outside the queue
        throw e;
      }
      return [{ f, abs, rel, inStore, bytes }];
    });
    if (copies.length < 2 || !copies.every((c) => c.bytes.equals(copies[0]!.bytes))) continue;
    copies.sort((a, b) => Number(b.inStore) - Number(a.inStore) || rank[b.f] - rank[a.f]);
    const keep = copies[0]!;
    for (const c of copies.slice(1)) {
      unlinkQuiet(c.abs);
      fsyncDir(ctx.ws[c.f]);
      repairs.push({ kind: 'duplicate-removed', file: c.rel, detail: `byte-identical copy of ${keep.rel}; kept that one` });
    }
  }
}

export async function reconcileQueue(ctx: QueueContext): Promise<ReconcileReport> {
  const repairs: Repair[] = [];
  removeStaleTemps(ctx, repairs);
  removeCrashCopies(ctx, repairs);
  const scan = await scanFolders(ctx);
  const mods = await ctx.modules();
  const { db } = ctx;

  const active = db.all<{ id: string }>("SELECT id FROM tasks WHERE folder = 'active' ORDER BY id");
  for (const { id } of active) {
    db.immediate(() => repairActive(ctx, mods, id, repairs));
  }

  db.immediate(() => {
    const t = ctx.now();
    // A lease whose task is no longer active: the holder crashed after moving the file but before
    // its commit (or a person moved it). The folder says how the run ended.
    for (const l of db.all<{ task_id: string; run_id: string; folder: string | null; status: string | null; file: string | null }>(
      `SELECT l.task_id, l.run_id, t.folder, t.status, t.file FROM leases l LEFT JOIN tasks t ON t.id = l.task_id
        WHERE t.id IS NULL OR t.folder <> 'active'`,
    )) {
      db.run('DELETE FROM leases WHERE task_id = ?', [l.task_id]);
      const outcome = l.folder === 'completed' && l.status === 'completed' ? 'completed' : l.folder === 'backlog' && l.status === 'blocked' ? 'blocked' : null;
      if (outcome) db.run('UPDATE runs SET outcome = ?, ended_ms = ? WHERE id = ? AND outcome IS NULL', [outcome, t, l.run_id]);
      repairs.push({
        kind: 'orphan-lease',
        id: l.task_id,
        file: l.file ?? '',
        detail: `lease of run ${l.run_id} without an active task${outcome ? `; run ${outcome}` : ''}`,
      });
    }
    for (const r of db.all<{ id: string; task_id: string }>(
      'SELECT r.id, r.task_id FROM runs r WHERE r.outcome IS NULL AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = r.id)',
    )) {
      db.run("UPDATE runs SET outcome = 'lost', reason = 'lease lost', ended_ms = ? WHERE id = ?", [t, r.id]);
      addEvent(db, t, 'lost', r.task_id, r.id);
      repairs.push({ kind: 'run-lost', id: r.task_id, file: '', detail: `run ${r.id} ended without its holder` });
    }
  });

  // A backlog file still saying `status: active` is a claim that never finished.
  for (const row of db.all<TaskRow>("SELECT * FROM tasks WHERE folder = 'backlog' AND status = 'active'")) {
    db.immediate(() => {
      const cur = getRow(db, row.id);
      if (!cur || cur.folder !== 'backlog' || cur.status !== 'active') return;
      const abs = absFile(ctx.ws, cur.file);
      const up = mods.updateTaskText(readFileSync(abs, 'utf8'), { unset: ['status'] }, cur.file);
      if (!up.ok) return;
      const tmp = writeTempSynced(abs, up.value);
      renameSync(tmp, abs);
      fsyncDir(ctx.ws.backlog);
      const st = statSync(abs);
      db.run('UPDATE tasks SET status = NULL, size = ?, mtime_ms = ?, updated_ms = ? WHERE id = ?', [st.size, st.mtimeMs, ctx.now(), cur.id]);
      repairs.push({ kind: 'status-fixed', id: cur.id, file: cur.file, detail: 'removed a stale status: active in backlog' });
    });
  }
  return { scan, repairs };
}

function repairActive(ctx: QueueContext, mods: TaskModules, id: string, repairs: Repair[]): void {
  const { db, ws } = ctx;
  const t = ctx.now();
  const row = getRow(db, id);
  if (!row || row.folder !== 'active') return;
  const lease = getLease(db, id);
  if (lease && lease.expires_ms > t) return; // alive
  const src = absFile(ws, row.file);
  let text: string;
  try {
    text = readFileSync(src, 'utf8');
  } catch {
    return; // gone since the scan; the next scan drops the row
  }
  const parsed = mods.parseTask(text, row.file);
  if (!parsed.ok) return; // invalid now: reported by scan, never moved
  const fm = parsed.task.fm;
  const run = lease
    ? db.get<{ id: string; attempt: number }>('SELECT id, attempt FROM runs WHERE id = ?', [lease.run_id])
    : db.get<{ id: string; attempt: number }>('SELECT id, attempt FROM runs WHERE task_id = ? AND outcome IS NULL ORDER BY started_ms DESC LIMIT 1', [id]);

  let to: 'backlog' | 'completed';
  let kind: RepairKind;
  let outcome: string;
  let status: string | null;
  let text2: string;
  let attempts = Math.max(fm.attempts ?? 0, row.attempts);
  if (fm.status === 'completed') {
    to = 'completed';
    kind = 'rolled-forward';
    outcome = 'completed';
    status = 'completed';
    text2 = text;
  } else if (fm.status === 'blocked') {
    to = 'backlog';
    kind = 'rolled-forward';
    outcome = 'blocked';
    status = 'blocked';
    text2 = text;
  } else {
    // The lost run counts as an attempt: the claim recorded it, or (no run row) it is added now.
    attempts = Math.max(attempts, run ? run.attempt : (fm.attempts ?? 0) + 1);
    const max = fm.max_attempts ?? DEFAULT_MAX_ATTEMPTS;
    outcome = 'lost';
    to = 'backlog';
    const update: TaskUpdate =
      attempts >= max
        ? {
            set: {
              status: 'blocked',
              attempts,
              blocked_reason: `worker lost ${attempts} time(s); max_attempts ${max} reached`,
              blocked_at: isoOf(t),
            },
          }
        : { set: { attempts }, unset: ['status'] };
    kind = attempts >= max ? 'blocked-after-losses' : 'lease-lost';
    status = attempts >= max ? 'blocked' : null;
    const up = mods.updateTaskText(text, update, row.file);
    if (!up.ok) return;
    text2 = up.value;
  }
  if (text2 !== text) {
    const tmp = writeTempSynced(src, text2);
    renameSync(tmp, src);
  }
  let dest = join(ws[to], basename(src));
  const exists = statSync(dest, { throwIfNoEntry: false });
  if (exists) dest = join(ws[to], basename(src).replace(/\.md$/, `.${id}.md`));
  renameSync(src, dest);
  fsyncDir(ws.active);
  fsyncDir(ws[to]);
  const st = statSync(dest);
  if (lease) db.run('DELETE FROM leases WHERE task_id = ?', [id]);
  if (run) db.run('UPDATE runs SET outcome = ?, reason = ?, ended_ms = ? WHERE id = ? AND outcome IS NULL', [outcome, 'lease expired', t, run.id]);
  db.run('UPDATE tasks SET folder = ?, file = ?, status = ?, attempts = ?, size = ?, mtime_ms = ?, updated_ms = ? WHERE id = ?', [
    to,
    relFile(ws, dest),
    status,
    attempts,
    st.size,
    st.mtimeMs,
    t,
    id,
  ]);
  addEvent(db, t, kind, id, run?.id ?? null, { to, attempts });
  repairs.push({
    kind,
    id,
    file: relFile(ws, dest),
    detail:
      kind === 'rolled-forward'
        ? `holder had finished (${outcome}); move completed`
        : `lease ${lease ? 'expired' : 'missing'}; back to backlog${status === 'blocked' ? ' blocked' : ''} after ${attempts} attempt(s)`,
  });
}
