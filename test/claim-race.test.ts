// At least 4 OS processes claim from one backlog of 1,000 tasks until it is empty: every task is
// claimed exactly once and none is lost. Needs the compiled worker (`npm test` builds first).
import { describe, it, expect, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openStore } from '../mcp-server/core/store.js';
import { createFolderQueue } from '../mcp-server/core/queue.js';
import { ensureWorkspace, resolveWorkspace } from '../mcp-server/core/workspace.js';
import { taskText } from './fixtures/task-files.js';

const WORKER = resolve(import.meta.dirname, '..', 'dist', 'test', 'fixtures', 'claim-worker.js');
const TASKS = 1000;
const WORKERS = 4;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('claim race', () => {
  it(`${WORKERS} processes claim ${TASKS} tasks: each exactly once, none lost`, async () => {
    expect(existsSync(WORKER), `${WORKER} missing: run npm run build`).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-race-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ws = resolveWorkspace(dir);
    ensureWorkspace(ws);
    const ids: string[] = [];
    for (let i = 1; i <= TASKS; i++) {
      const id = `TASK-${String(i).padStart(4, '0')}`;
      ids.push(id);
      writeFileSync(join(ws.backlog, `t${i}.md`), taskText({ id, title: `task ${i}`, priority: ['low', 'medium', 'high'][i % 3] }));
    }
    const store = openStore(ws.dbPath);
    cleanups.push(() => store.close());
    const q = createFolderQueue({ workspace: ws, store });
    expect((await q.scan()).files).toBe(TASKS);

    const started = Date.now();
    const results = await Promise.all(Array.from({ length: WORKERS }, (_, i) => run([dir, 'claim', `w${i}`])));
    const elapsed = Date.now() - started;

    const claimed: string[] = [];
    const tokens: number[] = [];
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.split('\n').filter((l) => l.startsWith('claimed '));
      expect(r.stdout).toContain(`done ${lines.length}`);
      for (const l of lines) {
        const [, id, token] = l.split(' ');
        claimed.push(id!);
        tokens.push(Number(token));
      }
    }
    expect(claimed).toHaveLength(TASKS);
    expect(new Set(claimed).size).toBe(TASKS);
    expect([...claimed].sort()).toEqual(ids);
    expect(new Set(tokens)).toEqual(new Set([1]));
    // Work was shared: more than one process won claims.
    expect(results.filter((r) => r.stdout.includes('claimed ')).length).toBeGreaterThan(1);

    expect(readdirSync(ws.backlog)).toEqual([]);
    expect(readdirSync(ws.active).filter((n) => n.endsWith('.md'))).toHaveLength(TASKS);
    expect(store.db.get<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE folder = 'active'")?.n).toBe(TASKS);
    expect(store.db.get<{ n: number }>('SELECT count(*) AS n FROM leases')?.n).toBe(TASKS);
    expect(store.db.get<{ n: number }>('SELECT count(DISTINCT task_id) AS n FROM runs')?.n).toBe(TASKS);
    expect(elapsed).toBeLessThan(60_000);
  }, 120_000);
});
