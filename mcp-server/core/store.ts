// The store: the ONE module that imports better-sqlite3. Everything else uses the `Db`
// interface below, so a different backend can replace this file without touching callers.
import Database from 'better-sqlite3';
import { closeSync, fdatasync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { OpsError } from './errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';

/** SQLite before 3.51.3 can corrupt a WAL database when the WAL is reset under concurrent writers. */
export const MIN_SQLITE_VERSION = '3.51.3';

export type SqlValue = string | number | bigint | null | Buffer;
export type SqlParams = readonly SqlValue[] | Record<string, SqlValue>;

export interface RunInfo {
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface Db {
  run(sql: string, params?: SqlParams): RunInfo;
  get<T = Record<string, unknown>>(sql: string, params?: SqlParams): T | undefined;
  all<T = Record<string, unknown>>(sql: string, params?: SqlParams): T[];
  /** `all` with each row an array in column order: for big result sets, where an object per row costs. */
  rows(sql: string, params?: SqlParams): unknown[][];
  /** The first column of every row: no array or object per row at all. */
  column(sql: string, params?: SqlParams): unknown[];
  /** Many statements, no parameters (DDL). */
  exec(sql: string): void;
  /** Read-then-write: BEGIN IMMEDIATE ... COMMIT, durable (synchronous=FULL) on commit. */
  immediate<T>(fn: () => T): T;
  /**
   * The same transaction, but the commit's WAL fsync runs in the thread pool instead of blocking
   * this thread, shared with other commits waiting at the same time (group commit). The promise
   * resolves once the transaction is as durable as an `immediate` commit; act on it only then.
   * Nested inside another transaction it joins that one (durable when the outer one commits).
   */
  immediateAsync<T>(fn: () => T): Promise<T>;
  /**
   * `immediateAsync` in two parts: a failed transaction throws here (rolled back), and `durable()`
   * starts (or joins) the WAL fsync and settles with it (a rejection means committed but perhaps
   * not on disk). A caller that never calls it leaves the commit to ride on the next one's fsync.
   */
  immediateDeferred<T>(fn: () => T): { value: T; durable: () => Promise<void> };
  /** Read-only snapshot: BEGIN DEFERRED ... COMMIT. */
  read<T>(fn: () => T): T;
  /** Rows one at a time, so a caller can stop early (row and time limits); throws on a statement that returns no rows. */
  iterate<T = Record<string, unknown>>(sql: string, params?: SqlParams): IterableIterator<T>;
  /** Compiles one statement (a string holding several throws) and says whether it only reads. */
  statementInfo(sql: string): { readonly: boolean; returnsRows: boolean };
}

export interface Store {
  readonly db: Db;
  readonly path: string;
  readonly sqliteVersion: string;
  close(): void;
}

export interface OpenStoreOptions {
  /** Milliseconds a writer waits for the lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
  readonly?: boolean;
  migrations?: readonly Migration[];
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Refuses SQLite versions with the WAL-reset bug; returns the version otherwise. */
export function checkSqliteVersion(version: string): void {
  if (compareVersions(version, MIN_SQLITE_VERSION) < 0) {
    throw new OpsError(
      'sqlite-too-old',
      `SQLite ${version} is older than ${MIN_SQLITE_VERSION}, which fixes a WAL-reset corruption bug; ` +
        `opscrew refuses to open its database with it. Fix: reinstall with a better-sqlite3 that bundles ` +
        `SQLite >= ${MIN_SQLITE_VERSION} (npm ci in a clean checkout does).`,
    );
  }
}

export function openStore(path: string, options: OpenStoreOptions = {}): Store {
  if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
  let raw: Database.Database;
  try {
    raw = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (cause) {
    throw new OpsError('store-open', `cannot open the opscrew database at ${path}: ${String(cause)}`, { cause });
  }
  const version = (raw.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  try {
    checkSqliteVersion(version);
  } catch (e) {
    raw.close();
    throw e;
  }
  const busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 10_000));
  raw.pragma(`busy_timeout = ${busyTimeoutMs}`);
  if (!options.readonly) {
    raw.pragma('journal_mode = WAL');
    // FULL: every state-changing commit is on disk before we act on it (move a file, report done).
    raw.pragma('synchronous = FULL');
    raw.pragma('foreign_keys = OFF');
  }
  const walMode = !options.readonly && String(raw.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal';
  const wal = walMode ? walSyncer(`${path}-wal`) : null;
  const db = wrap(raw, wal, busyTimeoutMs);
  if (!options.readonly) migrate(db, options.migrations ?? MIGRATIONS);
  return {
    db,
    path,
    sqliteVersion: version,
    close: () => {
      raw.close();
      wal?.close();
    },
  };
}

export interface WalSyncer {
  /** Resolves after an fsync of the WAL that started after this call. */
  sync(): Promise<void>;
  close(): void;
}

/**
 * Group commit for the WAL: one fsync in flight at a time; callers arriving while it runs share the
 * next one. A sync of the WAL file after a synchronous=NORMAL commit is what synchronous=FULL does
 * inside the commit (SQLite never replaces the WAL file while a connection is open); checkpoints
 * keep their own syncs under NORMAL. The sync is fdatasync, as SQLite's own where the platform has
 * it: the WAL's data and its size when it grew, without the mtime, whose journal commit would
 * otherwise come with every sync once a checkpoint has the WAL reused in place.
 */
export function walSyncer(walPath: string, fsyncFd: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void = fdatasync): WalSyncer {
  let fd: number | null = null;
  let closed = false;
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const once = (): Promise<void> =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new OpsError('store-closed', 'the store was closed before its last commit was synced'));
      try {
        fd ??= openSync(walPath, 'r');
      } catch (cause) {
        return reject(new OpsError('store-sync', `cannot open ${walPath} to sync it: ${String(cause)}`, { cause }));
      }
      fsyncFd(fd, (err) => (err ? reject(new OpsError('store-sync', `fsync of ${walPath} failed: ${err.message}`, { cause: err })) : resolve()));
    });
  const start = (): Promise<void> => {
    const p = once().finally(() => {
      if (running === p) running = null;
    });
    running = p;
    return p;
  };
  return {
    sync() {
      if (!running) return start();
      queued ??= running
        .catch(() => undefined)
        .then(() => {
          queued = null;
          return start();
        });
      return queued;
    },
    close() {
      closed = true;
      const f = fd;
      fd = null;
      if (f === null) return;
      // An fsync may still be in flight on this descriptor: close it only after that settles.
      void Promise.all([running, queued].map((p) => p?.catch(() => undefined))).then(() => {
        try {
          closeSync(f);
        } catch {
          // already closed
        }
      });
    },
  };
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT';
}

function wrap(raw: Database.Database, wal: WalSyncer | null, busyTimeoutMs: number): Db {
  // Statement cache: the same SQL text is prepared once per connection, once per row shape
  // (`rows`: arrays; `column`: the first column only).
  const cache = new Map<string, Database.Statement>();
  const stmt = (sql: string, shape: 'object' | 'rows' | 'column' = 'object'): Database.Statement => {
    const key = shape === 'object' ? sql : `\u0000${shape}\u0000${sql}`;
    let s = cache.get(key);
    if (!s) {
      s = shape === 'rows' ? raw.prepare(sql).raw(true) : shape === 'column' ? raw.prepare(sql).pluck(true) : raw.prepare(sql);
      cache.set(key, s);
    }
    return s;
  };
  const bind = (params: SqlParams | undefined): unknown[] =>
    params === undefined ? [] : Array.isArray(params) ? [...params] : [params];
  // Switched around an immediateAsync commit only (no I/O: the setting is per connection).
  const setNormal = wal ? raw.prepare('PRAGMA synchronous = NORMAL') : null;
  const setFull = wal ? raw.prepare('PRAGMA synchronous = FULL') : null;
  // Waiting for the write lock: SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries,
  // which stalls a crew thread for milliseconds behind a transaction that holds the lock for a
  // fraction of one. BEGIN IMMEDIATE instead retries after 20 µs, doubling to 1 ms, until the
  // same busy timeout; statements outside a transaction keep SQLite's handler.
  const noBusyWait = raw.prepare('PRAGMA busy_timeout = 0');
  const busyWait = raw.prepare(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const beginImmediate = (): void => {
    noBusyWait.get();
    try {
      const deadline = Date.now() + busyTimeoutMs;
      for (let pause = 0.02; ; pause = Math.min(1, pause * 2)) {
        try {
          raw.exec('BEGIN IMMEDIATE');
          return;
        } catch (e) {
          if (!isBusy(e) || Date.now() >= deadline) throw e;
        }
        Atomics.wait(sleeper, 0, 0, pause);
      }
    } finally {
      busyWait.get();
    }
  };
  let depth = 0;
  const tx = <T>(begin: string, fn: () => T): T => {
    if (depth > 0) return fn(); // nested: join the outer transaction
    if (begin === 'BEGIN IMMEDIATE') beginImmediate();
    else raw.exec(begin);
    depth++;
    try {
      const out = fn();
      raw.exec('COMMIT');
      return out;
    } catch (e) {
      if (raw.inTransaction) raw.exec('ROLLBACK');
      throw e;
    } finally {
      depth--;
    }
  };
  const immediateDeferred = <T>(fn: () => T): { value: T; durable: () => Promise<void> } => {
    if (depth > 0 || !wal || !setNormal || !setFull) return { value: tx('BEGIN IMMEDIATE', fn), durable: () => Promise.resolve() };
    setNormal.run();
    let value: T;
    try {
      value = tx('BEGIN IMMEDIATE', fn);
    } finally {
      setFull.run();
    }
    return { value, durable: () => wal.sync() };
  };
  return {
    run: (sql, params) => {
      const r = stmt(sql).run(...bind(params));
      return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
    },
    get: <T>(sql: string, params?: SqlParams) => stmt(sql).get(...bind(params)) as T | undefined,
    all: <T>(sql: string, params?: SqlParams) => stmt(sql).all(...bind(params)) as T[],
    rows: (sql, params) => stmt(sql, 'rows').all(...bind(params)) as unknown[][],
    column: (sql, params) => stmt(sql, 'column').all(...bind(params)),
    exec: (sql) => {
      raw.exec(sql);
    },
    immediate: (fn) => tx('BEGIN IMMEDIATE', fn),
    immediateDeferred,
    immediateAsync: <T>(fn: () => T): Promise<T> => {
      try {
        const r = immediateDeferred(fn);
        return r.durable().then(() => r.value);
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    },
    read: (fn) => tx('BEGIN DEFERRED', fn),
    iterate: <T>(sql: string, params?: SqlParams) => stmt(sql).iterate(...bind(params)) as IterableIterator<T>,
    statementInfo: (sql) => {
      const s = stmt(sql);
      return { readonly: s.readonly, returnsRows: s.reader };
    },
  };
}

function migrate(db: Db, migrations: readonly Migration[]): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)');
  for (const m of migrations) {
    db.immediate(() => {
      const done = db.get<{ version: number }>('SELECT version FROM schema_migrations WHERE version = ?', [m.version]);
      if (done) return;
      db.exec(m.sql);
      db.run('INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
    });
  }
}
