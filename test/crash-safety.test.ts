// kill -9 a claiming/completing worker at random moments (50+ trials). After reconcile every task
// is in exactly one folder, its database row agrees, none is lost and every author body is intact.
import { describe, it, expect, afterEach } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openStore } from '../mcp-server/core/store.js';
import { createFolderQueue } from '../mcp-server/core/queue.js';
import { bodyOf } from '../mcp-server/core/queue-reconcile.js';
import { parseTask } from '../mcp-server/core/task-parse.js';
import { ensureWorkspace, resolveWorkspace, TASK_FOLDERS } from '../mcp-server/core/workspace.js';
import { taskText } from './fixtures/task-files.js';

const WORKER = resolve(import.meta.dirname, '..', 'dist', 'test', 'fixtures', 'claim-worker.js');
const TRIALS = 50;
const TASKS = 20;
const MAX_KILL_MS = 40;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** Spawns a churn worker and SIGKILLs it a random 0..MAX_KILL_MS after it reports `ready`. */
function runAndKill(dir: string, seed: number, killAfterMs: number, readyAt: 'open' | 'work'): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((res, rej) => {
    const child: ChildProcess = spawn(process.execPath, [WORKER, dir, 'churn', `w${seed}`, String(seed), readyAt], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => child.kill('SIGKILL'));
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      if (timer === undefined && d.toString().includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.on('error', rej);
    child.on('close', (_code, signal) => {
      if (timer) clearTimeout(timer);
      res({ killed: signal === 'SIGKILL', stderr });
    });
  });
}

describe('crash safety', () => {
  it(`${TRIALS} trials of kill -9 at a random point: reconcile leaves every task in exactly one folder, intact`, async () => {
    expect(existsSync(WORKER), `${WORKER} missing: run npm run build`).toBe(true);
    let killed = 0;
    const repairKinds = new Map<string, number>();
    for (let trial = 0; trial < TRIALS; trial++) {
      const dir = mkdtempSync(join(tmpdir(), 'opscrew-crash-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const ws = resolveWorkspace(dir);
      ensureWorkspace(ws);
      const bodies = new Map<string, string>(); // title -> author body
      for (let i = 0; i < TASKS; i++) {
        // A few without an id, so some kills land in ID assignment.
        const text = taskText({
          ...(i % 7 === 3 ? {} : { id: `TASK-${String(i + 1).padStart(3, '0')}` }),
          title: `crash ${trial}-${i}`,
          priority: ['critical', 'high', 'medium', 'low'][i % 4],
          ...(i % 5 === 4 ? { depends_on: ['TASK-001'] } : {}),
          ...(i % 6 === 0 ? { resources: ['k8s:minikube/shared'] } : {}),
        });
        writeFileSync(join(ws.backlog, `task-${i}.md`), text);
        bodies.set(`crash ${trial}-${i}`, bodyOf(text));
      }
      const killAfter = Math.floor(Math.random() * (MAX_KILL_MS + 1));
      // Most kills land in the claim loop; every fifth during the first scan (ID write-back).
      const r = await runAndKill(dir, trial + 1, killAfter, trial % 5 === 0 ? 'open' : 'work');
      expect(r.stderr).toBe('');
      if (r.killed) killed++;

      const store = openStore(ws.dbPath);
      try {
        // Far in the future: every lease the dead worker held has expired.
        const q = createFolderQueue({ workspace: ws, store, now: () => Date.now() + 3_600_000 });
        for (const rep of (await q.reconcile()).repairs) repairKinds.set(rep.kind, (repairKinds.get(rep.kind) ?? 0) + 1);
        const where = new Map<string, string>(); // id -> folder
        const seenTitles: string[] = [];
        for (const folder of TASK_FOLDERS) {
          const names = readdirSync(ws[folder]);
          expect(names.filter((n) => n.endsWith('.opscrew-tmp')), `temp files in ${folder}`).toEqual([]);
          for (const name of names) {
            const text = readFileSync(join(ws[folder], name), 'utf8');
            const p = parseTask(text, name);
            expect(p.ok, `${folder}/${name} parses`).toBe(true);
            if (!p.ok) continue;
            const id = p.task.fm.id!;
            expect(id, `${folder}/${name} has an id`).toMatch(/^TASK-\d{3}$/);
            expect(where.has(id), `${id} in one folder only (trial ${trial}, kill ${killAfter} ms)`).toBe(false);
            where.set(id, folder);
            seenTitles.push(p.task.title);
            expect(bodyOf(text), `${folder}/${name} body`).toBe(bodies.get(p.task.title));
            const row = store.db.get<{ folder: string; file: string }>('SELECT folder, file FROM tasks WHERE id = ?', [id]);
            expect(row, `${id} row`).toEqual({ folder, file: `tasks/${folder}/${name}` });
            if (folder === 'completed') expect(p.task.fm.status).toBe('completed');
            if (folder === 'backlog') expect(p.task.fm.status === undefined || p.task.fm.status === 'blocked').toBe(true);
          }
        }
        expect(seenTitles.sort()).toEqual([...bodies.keys()].sort());
        expect(where.get('TASK-001') === undefined).toBe(false);
        expect(readdirSync(ws.active), 'nothing left active after all leases expired').toEqual([]);
        expect(store.db.get<{ n: number }>('SELECT count(*) AS n FROM tasks')?.n).toBe(TASKS);
        expect(store.db.get<{ n: number }>('SELECT count(*) AS n FROM leases')?.n).toBe(0);
        expect(store.db.get<{ n: number }>('SELECT count(*) AS n FROM invalid_files')?.n).toBe(0);
        expect(store.db.get<{ n: number }>('SELECT count(*) AS n FROM runs WHERE outcome IS NULL')?.n).toBe(0);
        // Reconcile is idempotent: a second pass finds nothing to repair.
        expect((await q.reconcile()).repairs).toEqual([]);
      } finally {
        store.close();
      }
    }
    // Most workers die mid-flight; a few may finish their 20 tasks first.
    expect(killed).toBeGreaterThan(TRIALS / 2);
    process.stdout.write(`crash-safety: ${killed}/${TRIALS} killed; repairs ${JSON.stringify(Object.fromEntries(repairKinds))}\n`);
    // The kills landed mid-claim often enough for reconcile to have had real work.
    expect((repairKinds.get('lease-lost') ?? 0) + (repairKinds.get('blocked-after-losses') ?? 0)).toBeGreaterThan(0);
  }, 300_000);
});
