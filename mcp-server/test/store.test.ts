import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSqliteVersion, compareVersions, openStore, MIN_SQLITE_VERSION, type Store } from '../core/store.js';
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
