// knowledge_query: read-only SQL on a read-only connection, with row and time limits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { checkReadOnlySql, knowledgeQuery } from '../core/knowledge-query.js';
import { openStore, type Store } from '../core/store.js';

let dir: string;
let store: Store;
let dbPath: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opscrew-kq-'));
  dbPath = join(dir, 'state', 'opscrew.db');
  store = openStore(dbPath);
  store.db.immediate(() => {
    for (let i = 0; i < 50; i++) store.db.run("INSERT INTO entities (kind, name) VALUES ('host', ?)", [`h${i}`]);
  });
});
afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const count = (): number => store.db.get<{ n: number }>('SELECT count(*) AS n FROM entities')?.n ?? -1;

describe('knowledgeQuery', () => {
  it('runs a SELECT and a WITH ... SELECT', () => {
    const r = knowledgeQuery(dbPath, "SELECT kind, count(*) AS n FROM entities GROUP BY kind");
    expect(r.ok && r.value.rows).toEqual([{ kind: 'host', n: 50 }]);
    const w = knowledgeQuery(dbPath, 'WITH x AS (SELECT name FROM entities ORDER BY id LIMIT 2) SELECT name FROM x;');
    expect(w.ok && w.value.rows).toEqual([{ name: 'h0' }, { name: 'h1' }]);
    expect(w.ok && w.value.timeLimit).toBe('iterate-deadline');
    // Functions whose names look like keywords are fine.
    const f = knowledgeQuery(dbPath, "SELECT replace(name, 'h', 'host-') AS n FROM entities WHERE name = 'h3'");
    expect(f.ok && f.value.rows).toEqual([{ n: 'host-3' }]);
  });

  it('refuses writes, schema changes, ATTACH, PRAGMA writes and multiple statements', () => {
    const attempts = [
      "INSERT INTO entities (kind, name) VALUES ('host', 'x')",
      "UPDATE entities SET name = 'x'",
      'DELETE FROM entities',
      "REPLACE INTO entities (kind, name) VALUES ('host', 'y')",
      'DROP TABLE entities',
      "ATTACH DATABASE '/tmp/evil.db' AS evil",
      'PRAGMA journal_mode = DELETE',
      'PRAGMA user_version = 7',
      "SELECT 1; DELETE FROM entities",
      "SELECT 1; SELECT 2",
      "WITH x AS (SELECT 1) DELETE FROM entities",
      "WITH x AS (SELECT 1) INSERT INTO entities (kind, name) SELECT 'host', 'z' FROM x",
      'VACUUM',
      'BEGIN IMMEDIATE',
      "SELECT * FROM entities /* ; */ ; DELETE FROM entities",
      '',
    ];
    for (const sql of attempts) {
      const r = knowledgeQuery(dbPath, sql);
      expect(r.ok, sql).toBe(false);
      if (!r.ok) expect(r.code, sql).toBe('query-refused');
    }
    expect(count()).toBe(50);
  });

  it('the connection itself is read-only (a write that passed the checks would still fail)', () => {
    const ro = openStore(dbPath, { readonly: true });
    try {
      expect(() => ro.db.run("INSERT INTO entities (kind, name) VALUES ('host', 'q')")).toThrow(/readonly/i);
    } finally {
      ro.close();
    }
    expect(count()).toBe(50);
    expect(checkReadOnlySql("SELECT ';' AS semi, 'delete' AS word").ok).toBe(true);
  });

  it('reports invalid SQL as such', () => {
    const r = knowledgeQuery(dbPath, 'SELECT nope FROM nowhere');
    expect(!r.ok && r.code).toBe('query-invalid');
  });

  it('enforces the row limit', () => {
    const r = knowledgeQuery(dbPath, 'SELECT id FROM entities ORDER BY id', { maxRows: 7 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.rows.length).toBe(7);
    expect(r.value.truncated).toBe(true);
    const all = knowledgeQuery(dbPath, 'SELECT id FROM entities', { maxRows: 50 });
    expect(all.ok && all.value.truncated).toBe(false);
    expect(all.ok && all.value.rows.length).toBe(50);
  });

  it('enforces the time limit on a slow recursive CTE', () => {
    // Each row costs a sub-scan, so the query runs for minutes unless stopped.
    const slow = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000)
      SELECT x, (SELECT count(*) FROM entities a, entities b, entities d WHERE a.id + x % 2 <= b.id + d.id) AS n FROM c`;
    const t0 = performance.now();
    const r = knowledgeQuery(dbPath, slow, { timeoutMs: 150, maxRows: 5000 });
    const took = performance.now() - t0;
    expect(took).toBeLessThan(1500);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.timedOut).toBe(true);
    expect(r.value.rows.length).toBeLessThan(5000);
    // An endless producer is stopped by the row limit first when that is lower.
    const rows = knowledgeQuery(dbPath, 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c', { maxRows: 10, timeoutMs: 5000 });
    expect(rows.ok && rows.value.rows.length).toBe(10);
  });

  it('fails cleanly on a missing database', () => {
    const r = knowledgeQuery(join(dir, 'nope.db'), 'SELECT 1');
    expect(!r.ok && r.code).toBe('store-open');
  });
});
