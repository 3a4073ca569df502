import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSqliteVersion, compareVersions, openStore, walSyncer, MIN_SQLITE_VERSION, type Store } from '../core/store.js';
import { MIGRATIONS } from '../core/migrations.js';
import { OpsError } from '../core/errors.js';

const dirs: string[] = [];
const stores: Store[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'opscrew-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('store', () => {
  it('opens in WAL mode with synchronous=FULL and a busy timeout', () => {
    const s = openStore(join(tmp(), '.opscrew', 'opscrew.db'), { busyTimeoutMs: 1234 });
    stores.push(s);
    expect(s.db.get<{ journal_mode: string }>('PRAGMA journal_mode')?.journal_mode).toBe('wal');
    expect(s.db.get<{ synchronous: number }>('PRAGMA synchronous')?.synchronous).toBe(2); // 2 = FULL
    expect(s.db.get<{ timeout: number }>('PRAGMA busy_timeout')?.timeout).toBe(1234);
    expect(compareVersions(s.sqliteVersion, MIN_SQLITE_VERSION)).toBeGreaterThanOrEqual(0);
  });

  it('applies migrations once; reopening is idempotent', () => {
    const path = join(tmp(), 'x.db');
    const a = openStore(path);
    a.db.run("INSERT INTO fence (task_id, token) VALUES ('TASK-001', 7)");
    a.close();
    const b = openStore(path);
    stores.push(b);
    const versions = b.db.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(versions.map((v) => v.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(b.db.get<{ token: number }>("SELECT token FROM fence WHERE task_id = 'TASK-001'")?.token).toBe(7);
    const tables = b.db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['tasks', 'invalid_files', 'leases', 'fence', 'runs', 'events']));
  });

  it('migration 5 keeps every fence, lease and event of a version-4 database; events keep counting up', () => {
    const path = join(tmp(), 'v4.db');
    const v4 = openStore(path, { migrations: MIGRATIONS.filter((m) => m.version <= 4) });
    v4.db.run("INSERT INTO fence (task_id, token) VALUES ('TASK-001', 7), ('TASK-002', 2)");
    v4.db.run("INSERT INTO leases (task_id, token, holder, run_id, expires_ms) VALUES ('TASK-001', 7, 'h:1:a', 'run-1', 123)");
    for (let i = 0; i < 3; i++) v4.db.run("INSERT INTO events (ts_ms, task_id, run_id, kind, data) VALUES (?, 'TASK-001', 'run-1', 'claimed', '{}')", [i]);
    v4.close();
    const s = openStore(path);
    stores.push(s);
    expect(s.db.all('SELECT task_id, token FROM fence ORDER BY task_id')).toEqual([
      { task_id: 'TASK-001', token: 7 },
      { task_id: 'TASK-002', token: 2 },
    ]);
    expect(s.db.all('SELECT * FROM leases')).toEqual([{ task_id: 'TASK-001', token: 7, holder: 'h:1:a', run_id: 'run-1', expires_ms: 123 }]);
    expect(s.db.all<{ seq: number }>('SELECT seq FROM events ORDER BY seq').map((e) => e.seq)).toEqual([1, 2, 3]);
    const next = s.db.run("INSERT INTO events (ts_ms, task_id, run_id, kind) VALUES (9, 'TASK-001', 'run-1', 'completed')");
    expect(Number(next.lastInsertRowid)).toBe(4);
    const sql = (name: string): string => s.db.get<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [name])?.sql ?? '';
    expect(sql('fence')).toMatch(/WITHOUT ROWID/);
    expect(sql('leases')).toMatch(/WITHOUT ROWID/);
    expect(sql('events')).not.toMatch(/AUTOINCREMENT/);
    const indexes = s.db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name").map((r) => r.name);
    expect(indexes).toEqual(['events_run', 'events_task']);
  });

  it('immediate() rolls back on a throw and commits otherwise', () => {
    const s = openStore(join(tmp(), 'y.db'));
    stores.push(s);
    expect(() =>
      s.db.immediate(() => {
        s.db.run("INSERT INTO fence (task_id, token) VALUES ('A', 1)");
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(s.db.get("SELECT 1 FROM fence WHERE task_id = 'A'")).toBeUndefined();
    s.db.immediate(() => s.db.run("INSERT INTO fence (task_id, token) VALUES ('B', 1)"));
    expect(s.db.get<{ token: number }>("SELECT token FROM fence WHERE task_id = 'B'")?.token).toBe(1);
  });

  it('immediateAsync() commits, resolves after the sync, rolls back on a throw and leaves synchronous=FULL', async () => {
    const s = openStore(join(tmp(), 'z.db'));
    stores.push(s);
    const v = await s.db.immediateAsync(() => s.db.run("INSERT INTO fence (task_id, token) VALUES ('C', 3)").changes);
    expect(v).toBe(1);
    expect(s.db.get<{ token: number }>("SELECT token FROM fence WHERE task_id = 'C'")?.token).toBe(3);
    await expect(
      s.db.immediateAsync(() => {
        s.db.run("INSERT INTO fence (task_id, token) VALUES ('D', 1)");
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(s.db.get("SELECT 1 FROM fence WHERE task_id = 'D'")).toBeUndefined();
    expect(s.db.get<{ synchronous: number }>('PRAGMA synchronous')?.synchronous).toBe(2);
    // Nested in a synchronous transaction it joins it: rolled back with it.
    expect(() =>
      s.db.immediate(() => {
        void s.db.immediateAsync(() => s.db.run("INSERT INTO fence (task_id, token) VALUES ('E', 1)"));
        throw new Error('outer');
      }),
    ).toThrow('outer');
    expect(s.db.get("SELECT 1 FROM fence WHERE task_id = 'E'")).toBeUndefined();
    // Many at once all land.
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.db.immediateAsync(() => s.db.run('INSERT INTO fence (task_id, token) VALUES (?, ?)', [`G${i}`, i]))));
    expect(s.db.get<{ n: number }>("SELECT count(*) AS n FROM fence WHERE task_id LIKE 'G%'")?.n).toBe(20);
  });

  it('walSyncer: one fsync in flight; callers arriving meanwhile share the next one', async () => {
    const file = join(tmp(), 'db-wal');
    writeFileSync(file, 'x');
    const pending: Array<(err: NodeJS.ErrnoException | null) => void> = [];
    const w = walSyncer(file, (_fd, cb) => pending.push(cb));
    const order: string[] = [];
    const a = w.sync().then(() => order.push('a'));
    expect(pending).toHaveLength(1);
    // b and c commit while a's fsync runs: neither may ride on it, both share the next one.
    const b = w.sync().then(() => order.push('b'));
    const c = w.sync().then(() => order.push('c'));
    expect(pending).toHaveLength(1);
    pending[0]?.(null);
    await a;
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['a']);
    expect(pending).toHaveLength(2);
    pending[1]?.(null);
    await Promise.all([b, c]);
    expect(order).toEqual(['a', 'b', 'c']);
    // A failed fsync rejects its waiters with a coded error; the next call tries again.
    const d = w.sync();
    pending[2]?.(Object.assign(new Error('EIO'), { code: 'EIO' }));
    await expect(d).rejects.toMatchObject({ code: 'store-sync' });
    const e = w.sync();
    expect(pending).toHaveLength(4);
    pending[3]?.(null);
    await e;
    w.close();
    await expect(w.sync()).rejects.toMatchObject({ code: 'store-closed' });
  });

  it('refuses SQLite older than 3.51.3 with a clear message', () => {
    let err: unknown;
    try {
      checkSqliteVersion('3.51.2');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OpsError);
    expect((err as OpsError).code).toBe('sqlite-too-old');
    expect((err as OpsError).message).toMatch(/3\.51\.2 is older than 3\.51\.3/);
    expect((err as OpsError).message).toMatch(/WAL/);
    expect(() => checkSqliteVersion('3.51.3')).not.toThrow();
    expect(() => checkSqliteVersion('3.52.0')).not.toThrow();
    expect(() => checkSqliteVersion('3.9.9')).toThrow(OpsError);
  });
});
