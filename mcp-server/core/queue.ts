// The task queue: one small interface (DESIGN §4) and its first backend, folders + SQLite.
// Folders are the truth a person sees; SQLite mirrors them and holds leases and fencing tokens.
// Every state change happens inside BEGIN IMMEDIATE, and the file moves happen while that lock
// is held, so queue processes sharing a workspace are serialized and never see half a move.
import { existsSync, openSync, readFileSync, renameSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fail, ok, OpsError, type Issue, type Result } from './errors.js';
import type { Store } from './store.js';
import type { TaskUpdate } from './task-render.js';
import type { TaskStatus } from './task-types.js';
import { closeQuiet, createTempBesideAsync, fsyncFdAsync, unlinkQuiet, writeTempPending, writeTempSynced, type PendingTemp } from './durable-fs.js';
import { checkTaskGraph, type GraphNode } from './task-graph.js';
import { scanFolders, type ScanReport } from './queue-scan.js';
import { reconcileQueue, type ReconcileReport } from './queue-reconcile.js';
import {
  absFile,
  getLease,
  getRow,
  isoOf,
  READY_ORDER,
  READY_SQL,
  relFile,
  rowFromTask,
  sameStat,
  upsertRow,
  type QueueContext,
  type TaskModules,
  type TaskRow,
} from './queue-rows.js';
import type { TaskFolder, Workspace } from './workspace.js';

export type { ScanReport } from './queue-scan.js';
export type { ReconcileReport, Repair } from './queue-reconcile.js';
export type { TaskUpdate } from './task-render.js';

export const DEFAULT_LEASE_MS = 5 * 60_000;

export interface TaskLease {
  holder: string;
  token: number;
  runId: string;
  expiresMs: number;
}

/** A task as the store mirrors it (list/get/ready). */
export interface TaskRecord {
  id: string;
  folder: TaskFolder;
  /** Workspace-relative path, e.g. `tasks/backlog/fix-dns.md`. */
  file: string;
  title: string;
  priority: string;
  status: TaskStatus | null;
  agent: string | null;
  dependsOn: string[];
  resources: string[];
  tags: string[];
  /** False while another file claims the same id. */
  valid: boolean;
  warnings: string[];
  attempts: number;
  createdMs: number;
  updatedMs: number;
  lease: TaskLease | null;
}

export interface InvalidFile {
  file: string;
  reason: 'invalid' | 'duplicate';
  taskId: string | null;
  problems: Issue[];
}

/** Proof of a claim; every later write presents its fencing token. */
export interface Claim {
  taskId: string;
  runId: string;
  token: number;
  holder: string;
  attempt: number;
  /** Absolute path of the task file in `active/`. */
  file: string;
  leaseExpiresMs: number;
}

export type ListStatus = TaskFolder | TaskStatus | 'ready';

export type FencedCode = 'fenced' | 'task-missing' | 'render-failed';

export interface TaskQueue {
  /** Sync folders → store (re-parses only new or changed files). */
  scan(): Promise<ScanReport>;
  list(filter?: { status?: ListStatus }): Promise<TaskRecord[]>;
  /** `JSON.stringify(await list(filter))` in UTF-8, byte for byte, made by SQLite (for `tasks list --json`). */
  listJson(filter?: { status?: ListStatus }): Promise<Buffer>;
  get(id: string): Promise<TaskRecord | null>;
  /** Ready tasks in claim order; `limit` returns only the first ones (the crew's hot path). */
  ready(opts?: { limit?: number }): Promise<TaskRecord[]>;
  invalid(): Promise<InvalidFile[]>;
  /** Duplicate ids, missing dependencies and cycles across the workspace, each with file and line. */
  graphIssues(): Promise<Issue[]>;
  /** Take the first ready task (or the named one if it is ready); null when there is none or a race was lost. */
  /** `agent`: who will run it (the routed specialist), recorded on the run; default the task's `agent:`. */
  claim(opts?: { id?: string; holder?: string; runId?: string; agent?: string }): Promise<Claim | null>;
  /**
   * Resolves when the claim's front matter (status, run_id, attempts, started_at) is in the file:
   * `claim` returns once the move and the lease are durable and writes those fields after it.
   * complete/block/release wait for it themselves; read the file only after it.
   */
  settled(claim: Pick<Claim, 'taskId' | 'token'>): Promise<void>;
  /**
   * The claimed file's text with its run fields while that write is still landing (null once it
   * has, or when it could not be rendered): read it instead of waiting for `settled`.
   */
  claimedText(claim: Pick<Claim, 'taskId' | 'token'>): string | null;
  heartbeat(claim: Claim): Promise<Result<{ leaseExpiresMs: number }, FencedCode>>;
  complete(claim: Claim, update?: TaskUpdate): Promise<Result<{ file: string }, FencedCode>>;
  block(claim: Claim, reason: string, update?: TaskUpdate): Promise<Result<{ file: string }, FencedCode>>;
  /** Back to backlog, unblocked. `outcome: 'failed'` records the run as failed (it will be retried). */
  release(claim: Claim, reason: string, opts?: { outcome?: 'released' | 'failed' }): Promise<Result<{ file: string }, FencedCode>>;
  /** The task's latest run (any holder, any process): what a retry's backoff is counted from. */
  lastRun(id: string): Promise<{ runId: string; attempt: number; outcome: string | null; endedMs: number | null } | null>;
  /** Repair drift between folders and store, return expired leases' tasks to backlog. */
  reconcile(): Promise<ReconcileReport>;
}

export interface FolderQueueOptions {
  workspace: Workspace;
  store: Store;
  now?: () => number;
  /** Default holder identity for claims (host:pid:random). */
  holder?: string;
  leaseMs?: number;
  /** For tests and benches that want the parser injected instead of imported lazily. */
  modules?: TaskModules;
  /** How long after a claim its run fields are written into the file if the run is still going. Default 1 s. */
  frontMatterDelayMs?: number;
}

export function defaultHolder(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export function newRunId(nowMs: number): string {
  const d = new Date(nowMs);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const stamp = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  // Not a secret and re-drawn on a collision inside the write lock: no need for crypto's entropy,
  // whose call costs more than the rest of the id on the claim path.
  return `run-${stamp}-${Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, '0')}`;
}

function loadModules(): () => Promise<TaskModules> {
  let p: Promise<TaskModules> | undefined;
  return () =>
    (p ??= Promise.all([import('./task-parse.js'), import('./task-render.js')]).then(([a, b]) => ({
      parseTask: a.parseTask,
      updateTaskText: b.updateTaskText,
    })));
}

type LeasedRow = Omit<TaskRow, 'prio_rank' | 'size' | 'mtime_ms'> & Partial<{ l_holder: string | null; l_token: number | null; l_run: string | null; l_exp: number | null }>;

// Only the columns a record needs, in the order `recordOf` reads them: `list` over 10,000 tasks is
// on the CLI's hot path, and reads them as arrays (an object per row costs more than the record).
const WITH_LEASE = `SELECT t.id, t.folder, t.file, t.title, t.priority, t.status, t.agent, t.depends_on, t.resources, t.tags,
  t.valid, t.problems, t.attempts, t.created_ms, t.updated_ms, l.holder AS l_holder, l.token AS l_token, l.run_id AS l_run, l.expires_ms AS l_exp
  FROM tasks t LEFT JOIN leases l ON l.task_id = t.id`;

/**
 * The same records as WITH_LEASE + recordOf, as one JSON array in UTF-8 bytes made by SQLite:
 * `tasks list --json` over 10,000 tasks then makes no row arrays, record objects, JSON text
 * or string-to-bytes pass in JS (about a third of its time). Keys in TaskRecord's order;
 * SQLite escapes strings as JSON.stringify does and returns stored JSON arrays minified; a
 * test holds the two byte-identical.
 */
const RECORD_JSON = `json_object('id', t.id, 'folder', t.folder, 'file', t.file, 'title', t.title,
  'priority', t.priority, 'status', t.status, 'agent', t.agent, 'dependsOn', json(t.depends_on),
  'resources', json(t.resources), 'tags', json(t.tags), 'valid', json(CASE WHEN t.valid = 1 THEN 'true' ELSE 'false' END),
  'warnings', json(t.problems), 'attempts', t.attempts, 'createdMs', t.created_ms, 'updatedMs', t.updated_ms,
  'lease', CASE WHEN l.token IS NULL THEN NULL ELSE json_object('holder', coalesce(l.holder, ''), 'token', l.token,
    'runId', coalesce(l.run_id, ''), 'expiresMs', coalesce(l.expires_ms, 0)) END)`;
// Ordered in a subquery (which walks the ordering index) rather than by group_concat's own
// ORDER BY, which sorts every record's text again: 40 ms against 100 for 10,000 tasks. An
// aggregate over an ordered subquery is never flattened, so the rows arrive in that order.
const JSON_ARRAY = (where: string, order: string): string =>
  `SELECT CAST('[' || coalesce(group_concat(j, ','), '') || ']' AS BLOB)
   FROM (SELECT ${RECORD_JSON} AS j FROM tasks t LEFT JOIN leases l ON l.task_id = t.id${where} ORDER BY ${order})`;
// One filter and order for list() and listJson(), so the two cannot drift apart.
const ORDER_ALL = 't.folder, t.prio_rank, t.created_ms, t.id';
const ORDER_ONE = 't.prio_rank, t.created_ms, t.id';
const WHERE_ONE = ' WHERE t.folder = ? OR t.status = ?';
const LIST_ALL = ` ORDER BY ${ORDER_ALL}`;
const LIST_ONE = `${WHERE_ONE} ORDER BY ${ORDER_ONE}`;
const LIST_ALL_JSON = JSON_ARRAY('', ORDER_ALL);
const LIST_ONE_JSON = JSON_ARRAY(WHERE_ONE, ORDER_ONE);

/** A record from a WITH_LEASE row as an array, in its column order. */
function recordOf(a: readonly unknown[]): TaskRecord {
  const token = a[16] as number | null;
  return {
    id: a[0] as string,
    folder: a[1] as TaskFolder,
    file: a[2] as string,
    title: a[3] as string,
    priority: a[4] as TaskRecord['priority'],
    status: (a[5] ?? null) as TaskStatus | null,
    agent: a[6] as string | null,
    dependsOn: JSON.parse(a[7] as string) as string[],
    resources: JSON.parse(a[8] as string) as string[],
    tags: JSON.parse(a[9] as string) as string[],
    valid: a[10] === 1,
    warnings: JSON.parse(a[11] as string) as string[],
    attempts: a[12] as number,
    createdMs: a[13] as number,
    updatedMs: a[14] as number,
    lease: token !== null && token !== undefined ? { holder: (a[15] as string | null) ?? '', token, runId: (a[17] as string | null) ?? '', expiresMs: (a[18] as number | null) ?? 0 } : null,
  };
}

/** The same record from a row object (ready rows carry no lease columns). */
function toRecord(r: LeasedRow): TaskRecord {
  return recordOf([
    r.id,
    r.folder,
    r.file,
    r.title,
    r.priority,
    r.status,
    r.agent,
    r.depends_on,
    r.resources,
    r.tags,
    r.valid,
    r.problems,
    r.attempts,
    r.created_ms,
    r.updated_ms,
    r.l_holder ?? null,
    r.l_token ?? null,
    r.l_run ?? null,
    r.l_exp ?? null,
  ]);
}

/** Sentinel thrown inside a transaction to roll it back and report a lost race. */
class LostRace extends Error {}

export function createFolderQueue(opts: FolderQueueOptions): TaskQueue {
  const ws = opts.workspace;
  const db = opts.store.db;
  const now = opts.now ?? Date.now;
  const defaultHolderId = opts.holder ?? defaultHolder();
  const frontMatterDelayMs = Math.max(0, opts.frontMatterDelayMs ?? 1000);
  const fixed = opts.modules;
  const ctx: QueueContext = {
    ws,
    db,
    now,
    leaseMs: opts.leaseMs ?? DEFAULT_LEASE_MS,
    modules: fixed ? () => Promise.resolve(fixed) : loadModules(),
  };

  /** Destination in `folder` that does not overwrite another task's file (rename(2) would). */
  const destFor = (folder: TaskFolder, name: string, id: string): string => {
    const dir = ws[folder];
    let dest = join(dir, name);
    if (!existsSync(dest)) return dest;
    const stem = name.replace(/\.md$/, '');
    for (let i = 1; ; i++) {
      dest = join(dir, i === 1 ? `${stem}.${id}.md` : `${stem}.${id}.${i}.md`);
      if (!existsSync(dest)) return dest;
    }
  };

  /**
   * One claim attempt: inside the write lock, pick the row, move the file to active/ and record the
   * lease; the directory fsyncs start at the rename and run in the thread pool while this thread
   * commits, and the WAL sync joins them (group commit). Resolves once the move and the lease are
   * both durable. (Starting the directory fsyncs after the commit instead, so one journal commit
   * could carry the WAL too, measured about 0.1 ms slower here.)
   */
  const claimOnce = (
    mods: TaskModules,
    o: { id?: string; holder: string; runId?: string; agent?: string },
  ): Promise<{ claim: Claim; startedMs: number } | null | 'retry'> => {
    let syncs: Promise<void> | undefined;
    const dirs = dirSyncer([ws.active, ws.backlog]);
    const committed = db.immediateAsync((): { claim: Claim; startedMs: number } | null | 'retry' => {
      const t = ctx.now();
      const row = o.id
        ? db.get<TaskRow>(`${READY_SQL} AND t.id = ?`, [o.id])
        : db.get<TaskRow>(`${READY_SQL}${READY_ORDER} LIMIT 1`);
      if (!row) return null;
      const src = absFile(ws, row.file);
      // One stat keeps the claim honest without a re-scan: a changed file is re-read first.
      const st = statSync(src, { throwIfNoEntry: false });
      if (!st) {
        db.run('DELETE FROM tasks WHERE id = ?', [row.id]);
        return 'retry';
      }
      if (!sameStat(row, st)) {
        const text = readFileSync(src, 'utf8');
        const r = mods.parseTask(text, row.file);
        if (!r.ok || r.task.fm.id !== row.id) {
          db.run('UPDATE tasks SET size = -1 WHERE id = ?', [row.id]); // force the next scan to look
          db.run('UPDATE tasks SET valid = 0 WHERE id = ?', [row.id]);
          return 'retry';
        }
        upsertRow(db, rowFromTask(r.task, r.warnings, row.file, 'backlog', st, t));
        const still = db.get<TaskRow>(`${READY_SQL} AND t.id = ?`, [row.id]);
        if (!still) return 'retry';
      }
      const token =
        db.get<{ token: number }>(
          'INSERT INTO fence (task_id, token) VALUES (?, 1) ON CONFLICT(task_id) DO UPDATE SET token = token + 1 RETURNING token',
          [row.id],
        )?.token ?? 0;
      const attempt = row.attempts + 1;
      let runId = o.runId ?? newRunId(t);
      // Four hex digits collide within a busy second; inside the write lock a re-draw is race-free.
      while (!o.runId && db.get('SELECT 1 AS x FROM runs WHERE id = ?', [runId])) runId = newRunId(t);
      const dest = destFor('active', basename(src), row.id);
      try {
        renameSync(src, dest);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LostRace();
        throw e;
      }
      try {
        syncs = dirs.start();
        const expires = t + ctx.leaseMs;
        db.run('INSERT INTO leases (task_id, token, holder, run_id, expires_ms) VALUES (?, ?, ?, ?, ?)', [row.id, token, o.holder, runId, expires]);
        db.run('INSERT INTO runs (id, task_id, agent, attempt, token, holder, started_ms) VALUES (?, ?, ?, ?, ?, ?, ?)', [
          runId,
          row.id,
          o.agent ?? row.agent,
          attempt,
          token,
          o.holder,
          t,
        ]);
        // rename(2) keeps size and mtime: the row still matches the file until its front matter is written.
        db.run(`UPDATE tasks SET folder = 'active', file = ?, status = 'active', attempts = ?, size = ?, mtime_ms = ?, updated_ms = ? WHERE id = ?`, [
          relFile(ws, dest),
          attempt,
          st.size,
          st.mtimeMs,
          t,
          row.id,
        ]);
        // No 'claimed' event: the runs row above is the claim's record (who, when, token,
        // attempt), as it is the outcome's (finish); an event row would cost each commit three
        // more pages. Retrospectives read the run's timeline from both.
        return { claim: { taskId: row.id, runId, token, holder: o.holder, attempt, file: dest, leaseExpiresMs: expires }, startedMs: t };
      } catch (e) {
        // The transaction rolls back: the file goes back where the rows say it is.
        renameSync(dest, src);
        throw e;
      }
    });
    return Promise.all([committed, syncs]).then(
      ([c]) => {
        dirs.release();
        return c;
      },
      (e: unknown) => {
        dirs.release();
        syncs?.catch(() => undefined);
        throw e;
      },
    );
  };

  // The claim's front matter (status, run_id, attempts, started_at) is the claim's to show, not
  // its substance: the move and the lease are the claim. It is written a moment later, and only
  // if the run is still going then: a run that finishes first gets these fields written with its
  // outcome, in the finish's one rewrite of the file (a task that takes milliseconds costs one
  // file rewrite instead of two). `settled` writes them at once; `claimedText` renders them for
  // a caller that wants the text without waiting. A crash before they land leaves the original
  // text in active/, which the reconciler rewrites anyway.
  interface PendingFrontMatter {
    claim: Claim;
    mods: TaskModules;
    update: TaskUpdate;
    text: string | null;
    timer: NodeJS.Timeout | null;
    done: Promise<void> | null;
  }
  const frontMatterWrites = new Map<string, PendingFrontMatter>();
  const claimKey = (c: Pick<Claim, 'taskId' | 'token'>): string => `${c.taskId}\u0000${c.token}`;
  const renderClaimed = (mods: TaskModules, claim: Pick<Claim, 'file'>, p: PendingFrontMatter): string | null => {
    if (p.text === null) {
      const up = mods.updateTaskText(readFileSync(claim.file, 'utf8'), p.update, relFile(ws, claim.file));
      if (up.ok) p.text = up.value;
    }
    return p.text;
  };
  const writeClaimFrontMatter = async (mods: TaskModules, claim: Claim, p: PendingFrontMatter): Promise<void> => {
    const text = renderClaimed(mods, claim, p);
    if (text === null) return; // the finish renders the file again and reports what is wrong with it
    const pending = writeTempPending(claim.file, text);
    try {
      await fsyncFdAsync(pending.fd);
      // Under the write lock: the file is replaced only while this claim still holds the lease.
      // Nothing waits for this commit's fsync: the size/mtime it records only spare the next
      // scan a re-parse, and the finish's own commit makes it durable with everything before it.
      const rel = relFile(ws, claim.file);
      db.immediateDeferred(() => {
        if (getLease(db, claim.taskId)?.token !== claim.token) return;
        renameSync(pending.tmp, claim.file);
        db.run('UPDATE tasks SET size = ?, mtime_ms = ? WHERE id = ? AND file = ?', [pending.size, pending.mtimeMs, claim.taskId, rel]);
      });
    } finally {
      closeQuiet(pending.fd);
      unlinkQuiet(pending.tmp); // a no-op once renamed into place
    }
  };
  /** Starts the write now (once); resolves when it has landed or given up. */
  const flushFrontMatter = (mods: TaskModules, claim: Claim, p: PendingFrontMatter): Promise<void> => {
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    p.done ??= writeClaimFrontMatter(mods, claim, p).catch(() => undefined);
    return p.done;
  };
  const startFrontMatter = (mods: TaskModules, claim: Claim, startedMs: number): void => {
    const key = claimKey(claim);
    const p: PendingFrontMatter = {
      claim,
      mods,
      update: { set: { status: 'active', run_id: claim.runId, attempts: claim.attempt, started_at: isoOf(startedMs) }, unset: ['blocked_reason', 'blocked_at'] },
      text: null,
      timer: null,
      done: null,
    };
    frontMatterWrites.set(key, p);
    p.timer = setTimeout(() => {
      void flushFrontMatter(mods, claim, p).finally(() => {
        if (frontMatterWrites.get(key) === p) frontMatterWrites.delete(key);
      });
    }, frontMatterDelayMs);
    p.timer.unref();
  };
  /**
   * For the finish: the claim's fields if they were never written (the write is cancelled and
   * the finish writes them), after waiting for a write already under way.
   */
  const takeFrontMatter = async (claim: Claim): Promise<TaskUpdate | null> => {
    const key = claimKey(claim);
    const p = frontMatterWrites.get(key);
    if (!p) return null;
    if (p.done) {
      await p.done;
      return null;
    }
    if (p.timer) clearTimeout(p.timer);
    frontMatterWrites.delete(key);
    return p.update;
  };
  const settled = async (claim: Pick<Claim, 'taskId' | 'token'>): Promise<void> => {
    const key = claimKey(claim);
    const p = frontMatterWrites.get(key);
    if (!p) return;
    await flushFrontMatter(p.mods, p.claim, p);
    if (frontMatterWrites.get(key) === p) frontMatterWrites.delete(key);
  };


  /**
   * Directory descriptors for the fsyncs after a move, opened before the write lock is taken (the
   * open is the slow part, and other crews wait on the lock): `start` fsyncs them as thread-pool
   * jobs (inside the lock, awaited after the COMMIT) and closes them; `release` closes them unused.
   */
  const dirSyncer = (dirs: readonly string[]): { start(): Promise<void>; release(): void } => {
    const fds = [...new Set(dirs)].map((d) => openSync(d, 'r'));
    let started = false;
    return {
      start() {
        started = true;
        return Promise.all(fds.map((f) => fsyncFdAsync(f))).then(
          () => fds.forEach(closeQuiet),
          (e: unknown) => {
            fds.forEach(closeQuiet);
            throw e;
          },
        );
      },
      release() {
        if (!started) fds.forEach(closeQuiet);
        started = true;
      },
    };
  };

  interface Prepared {
    src: string;
    size: number;
    mtimeMs: number;
    tmp: string;
  }

  // The finish's temp file is created while the task runs (a thread-pool job started at the claim)
  // in .opscrew/tmp/, not when the finish is waited for: creating a file waits on the journal
  // behind other syncs. The finish renames it into the task's folder (same file system), and
  // writes a temp beside the file instead if that fails. Bounded, for callers that claim and never
  // finish (an agent that walks away); a dead process's are swept by reconcile.
  const finishTemps = new Map<string, Promise<{ tmp: string; fd: number } | null>>();
  const MAX_FINISH_TEMPS = 256;
  let tmpDirReady: Promise<unknown> | undefined;
  const prepareFinishTemp = (claim: Claim): void => {
    // Full: the oldest one goes (its claim most likely walked away); its finish makes its own.
    const oldest = finishTemps.size >= MAX_FINISH_TEMPS ? finishTemps.keys().next() : null;
    if (oldest && !oldest.done) void dropFinishTemp(oldest.value);
    tmpDirReady ??= mkdir(ws.tmpDir, { recursive: true });
    const made = tmpDirReady.then(() => createTempBesideAsync(join(ws.tmpDir, basename(claim.file))));
    finishTemps.set(
      claimKey(claim),
      made.catch(() => null),
    );
  };
  const dropFinishTemp = async (key: string): Promise<void> => {
    const p = finishTemps.get(key);
    if (!p) return;
    finishTemps.delete(key);
    const t = await p;
    if (!t) return;
    closeQuiet(t.fd);
    unlinkQuiet(t.tmp);
  };
  /** The claim's pre-created temp (null when there is none); `use: false` removes it. */
  const takeFinishTemp = async (claim: Claim, use: boolean): Promise<{ tmp: string; fd: number } | null> => {
    const key = claimKey(claim);
    const p = finishTemps.get(key);
    if (!p) return null;
    finishTemps.delete(key);
    const t = await p;
    if (t && !use) {
      closeQuiet(t.fd);
      unlinkQuiet(t.tmp);
      return null;
    }
    return t;
  };

  /**
   * Outside the lock: render the new text and write + fsync its temp file in the thread pool, so
   * the write lock is held only for the renames and the rows. Inside the lock the file is checked
   * unchanged (same path, size, mtime) before the prepared temp is used; otherwise it is redone.
   */
  const prepareFinish = async (claim: Claim, render: (text: string, file: string) => Result<string>): Promise<Prepared | null> => {
    // A claim that lost its lease gets its answer from the locked check, with no temp file beside
    // a file that is someone else's now.
    if (getLease(db, claim.taskId)?.token !== claim.token) {
      await takeFinishTemp(claim, false);
      return null;
    }
    const row = getRow(db, claim.taskId);
    const src = row ? absFile(ws, row.file) : claim.file;
    let made = await takeFinishTemp(claim, true);
    let pending: PendingTemp | undefined;
    try {
      const st = statSync(src, { throwIfNoEntry: false });
      if (!st) return null;
      const up = render(readFileSync(src, 'utf8'), row?.file ?? src);
      if (!up.ok) return null; // reported with the fencing check first, inside the lock
      const temp = made ?? undefined;
      made = null; // writeTempPending owns it now (and removes it if the write fails)
      pending = writeTempPending(src, up.value, temp);
      await fsyncFdAsync(pending.fd);
      return { src, size: st.size, mtimeMs: st.mtimeMs, tmp: pending.tmp };
    } catch {
      if (pending) unlinkQuiet(pending.tmp);
      return null; // the locked path redoes it and reports what went wrong
    } finally {
      if (pending) closeQuiet(pending.fd);
      else if (made) {
        // not used (the file was gone or did not render)
        closeQuiet(made.fd);
        unlinkQuiet(made.tmp);
      }
    }
  };

  /** complete / block / release: fencing check first, then file content, then the move. */
  const finish = async (
    mods: TaskModules,
    claim: Claim,
    to: 'completed' | 'backlog',
    outcome: 'completed' | 'blocked' | 'released' | 'failed',
    update: TaskUpdate,
    reason: string | null,
  ): Promise<Result<{ file: string }, FencedCode>> => {
    // The claim's own fields, if they were never written, go into this one rewrite of the file:
    // rendered first, exactly as `claimedText` showed them (criterion lines refer to that text),
    // then this update over them.
    const claimFields = await takeFrontMatter(claim);
    const render = (text: string, file: string): Result<string> => {
      if (!claimFields) return mods.updateTaskText(text, update, file);
      const first = mods.updateTaskText(text, claimFields, file);
      return first.ok ? mods.updateTaskText(first.value, update, file) : first;
    };
    const prep = await prepareFinish(claim, render);
    let syncs: Promise<void> | undefined;
    let committed: Promise<Result<{ file: string }, FencedCode>>;
    const dirs = dirSyncer([ws.active, ws[to]]);
    try {
      committed = db.immediateAsync((): Result<{ file: string }, FencedCode> => {
        const t = ctx.now();
        const lease = getLease(db, claim.taskId);
        if (!lease || lease.token !== claim.token) {
          return fail(
            'fenced',
            `${claim.taskId}: fencing token ${claim.token} is no longer valid (lease ${lease ? `now token ${lease.token}` : 'gone'}); nothing was changed`,
          );
        }
        const row = getRow(db, claim.taskId);
        const src = row ? absFile(ws, row.file) : claim.file;
        // Content first (in place), then the move: a crash between them leaves an active file whose
        // front matter already says where it goes, and reconcile rolls that forward.
        const cur = prep && prep.src === src ? statSync(src, { throwIfNoEntry: false }) : undefined;
        let inPlace = false;
        if (prep && cur && cur.size === prep.size && cur.mtimeMs === prep.mtimeMs) {
          try {
            renameSync(prep.tmp, src);
            inPlace = true;
          } catch {
            // the prepared temp is gone (swept after a very long run) or on another file system
          }
        }
        if (!inPlace) {
          let text: string;
          try {
            text = readFileSync(src, 'utf8');
          } catch (e) {
            return fail('task-missing', `${claim.taskId}: cannot read ${src}: ${String(e)}`);
          }
          const up = render(text, row?.file ?? src);
          if (!up.ok) return fail('render-failed', `${claim.taskId}: ${up.message}`);
          renameSync(writeTempSynced(src, up.value), src);
        }
        const dest = destFor(to, basename(src), claim.taskId);
        renameSync(src, dest);
        // The directory fsyncs run in the thread pool while this thread commits the WAL (as in
        // claim); the caller hears of the result only after both are done.
        syncs = dirs.start();
        const st = statSync(dest);
        const status = outcome === 'completed' ? 'completed' : outcome === 'blocked' ? 'blocked' : null;
        db.run('DELETE FROM leases WHERE task_id = ?', [claim.taskId]);
        db.run('UPDATE runs SET outcome = ?, reason = ?, ended_ms = ? WHERE id = ?', [outcome, reason, t, lease.run_id]);
        db.run('UPDATE tasks SET folder = ?, file = ?, status = ?, size = ?, mtime_ms = ?, updated_ms = ? WHERE id = ?', [
          to,
          relFile(ws, dest),
          status,
          st.size,
          st.mtimeMs,
          t,
          claim.taskId,
        ]);
        return ok({ file: dest });
      });
    } finally {
      if (prep) unlinkQuiet(prep.tmp); // a no-op once it was renamed into place
    }
    let r: Result<{ file: string }, FencedCode>;
    try {
      r = await committed;
    } catch (e) {
      syncs?.catch(() => {}); // the error below is the one to report
      throw e;
    } finally {
      dirs.release(); // unused when the transaction moved nothing (fenced, missing)
    }
    if (syncs) {
      try {
        await syncs;
      } catch (e) {
        throw new OpsError('finish-io', `${claim.taskId}: moved and recorded, but its folders could not be synced: ${String(e)}`, { cause: e });
      }
    }
    return r;
  };

  const mergeUpdate = (base: TaskUpdate | undefined, set: TaskUpdate['set'], unset: string[]): TaskUpdate => ({
    ...base,
    set: { ...base?.set, ...set },
    unset: [...(base?.unset ?? []), ...unset].filter((k) => !(set && k in set)),
  });

  return {
    scan: () => scanFolders(ctx),

    async list(filter = {}) {
      const s = filter.status;
      if (s === 'ready') return this.ready();
      const rows = db.read(() => (s === undefined ? db.rows(WITH_LEASE + LIST_ALL) : db.rows(WITH_LEASE + LIST_ONE, [s, s])));
      return rows.map(recordOf);
    },

    async listJson(filter = {}) {
      const s = filter.status;
      if (s === 'ready') return Buffer.from(JSON.stringify(await this.ready()));
      return (s === undefined ? db.column(LIST_ALL_JSON) : db.column(LIST_ONE_JSON, [s, s]))[0] as Buffer;
    },

    async get(id) {
      const r = db.rows(`${WITH_LEASE} WHERE t.id = ?`, [id])[0];
      return r ? recordOf(r) : null;
    },

    async ready(o = {}) {
      const limit = o.limit !== undefined && Number.isFinite(o.limit) ? Math.max(0, Math.floor(o.limit)) : null;
      return db
        .read(() => (limit === null ? db.all<TaskRow>(`${READY_SQL}${READY_ORDER}`) : db.all<TaskRow>(`${READY_SQL}${READY_ORDER} LIMIT ?`, [limit])))
        .map(toRecord);
    },

    async invalid() {
      return db
        .all<{ file: string; reason: 'invalid' | 'duplicate'; task_id: string | null; problems: string }>(
          'SELECT file, reason, task_id, problems FROM invalid_files ORDER BY file',
        )
        .map((r) => ({ file: r.file, reason: r.reason, taskId: r.task_id, problems: JSON.parse(r.problems) as Issue[] }));
    },

    async graphIssues() {
      const nodes: GraphNode[] = [];
      db.read(() => {
        for (const r of db.all<{ id: string; file: string; depends_on: string }>('SELECT id, file, depends_on FROM tasks ORDER BY file'))
          nodes.push({ id: r.id, file: r.file, dependsOn: JSON.parse(r.depends_on) as string[], path: absFile(ws, r.file) });
        for (const r of db.all<{ task_id: string; file: string }>(
          "SELECT task_id, file FROM invalid_files WHERE reason = 'duplicate' AND task_id IS NOT NULL ORDER BY file",
        ))
          nodes.push({ id: r.task_id, file: r.file, dependsOn: [], path: absFile(ws, r.file) });
      });
      return checkTaskGraph(nodes);
    },

    async claim(o = {}) {
      const mods = await ctx.modules();
      const holder = o.holder ?? defaultHolderId;
      for (let i = 0; i < 8; i++) {
        let r: Awaited<ReturnType<typeof claimOnce>>;
        try {
          r = await claimOnce(mods, { holder, ...(o.id ? { id: o.id } : {}), ...(o.runId ? { runId: o.runId } : {}), ...(o.agent ? { agent: o.agent } : {}) });
        } catch (e) {
          if (e instanceof LostRace) return null;
          throw e;
        }
        if (r === 'retry') continue;
        if (r === null) return null;
        startFrontMatter(mods, r.claim, r.startedMs);
        prepareFinishTemp(r.claim);
        return r.claim;
      }
      return null;
    },

    settled,

    claimedText(claim) {
      const p = frontMatterWrites.get(claimKey(claim));
      if (!p) return null;
      try {
        return renderClaimed(p.mods, p.claim, p);
      } catch {
        return null; // unreadable: the caller reads the file itself and reports it
      }
    },

    async heartbeat(claim) {
      const expires = ctx.now() + ctx.leaseMs;
      const n = await db.immediateAsync(
        () => db.run('UPDATE leases SET expires_ms = ? WHERE task_id = ? AND token = ?', [expires, claim.taskId, claim.token]).changes,
      );
      if (n === 0) {
        await dropFinishTemp(claimKey(claim)); // no finish will come for this claim
        return fail('fenced', `${claim.taskId}: lease with token ${claim.token} is gone; stop working on it`);
      }
      claim.leaseExpiresMs = expires;
      return ok({ leaseExpiresMs: expires });
    },

    async complete(claim, update) {
      const mods = await ctx.modules();
      const t = isoOf(ctx.now());
      return finish(mods, claim, 'completed', 'completed', mergeUpdate(update, { status: 'completed', completed_at: t }, ['blocked_reason', 'blocked_at']), null);
    },

    async block(claim, reason, update) {
      const mods = await ctx.modules();
      const t = isoOf(ctx.now());
      return finish(mods, claim, 'backlog', 'blocked', mergeUpdate(update, { status: 'blocked', blocked_reason: reason, blocked_at: t }, []), reason);
    },

    async release(claim, reason, o = {}) {
      const mods = await ctx.modules();
      return finish(mods, claim, 'backlog', o.outcome ?? 'released', { unset: ['status'] }, reason);
    },

    async lastRun(id) {
      const r = db.get<{ id: string; attempt: number; outcome: string | null; ended_ms: number | null }>(
        'SELECT id, attempt, outcome, ended_ms FROM runs WHERE task_id = ? ORDER BY started_ms DESC, rowid DESC LIMIT 1',
        [id],
      );
      return r ? { runId: r.id, attempt: r.attempt, outcome: r.outcome, endedMs: r.ended_ms } : null;
    },

    reconcile: () => reconcileQueue(ctx),
  };
}
