// The crew over several threads (crew-threads.ts): each thread is a crew with its own store
// connection and queue holder on one workspace. Real threads (from dist/: needs `npm run build`),
// a real SQLite file and a real HTTP counter: every task runs exactly once, both threads take
// work, the specialist caps hold in total, and a failed run's backoff holds across threads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadSpecialists, type Specialist } from '../mcp-server/core/specialists.js';
import { openStore } from '../mcp-server/core/store.js';
import { ensureWorkspace, resolveWorkspace, type Workspace } from '../mcp-server/core/workspace.js';
import { crewThreadEntry, defaultCrewThreads, mergeSummaries, runCrewThreads, splitShares } from '../agents/runtime/crew-threads.js';
import type { CrewEvent } from '../agents/runtime/progress.js';
import { overlappingHits, startCounterServer, type CounterServer } from './fixtures/crew/counter-server.js';

const ROOT = resolve(import.meta.dirname, '..');

describe('crew threads: shares and summaries', () => {
  it('splits workers and caps into shares that add up to the total', () => {
    expect(splitShares(8, 2)).toEqual([4, 4]);
    expect(splitShares(5, 2)).toEqual([3, 2]);
    expect(splitShares(1, 2)).toEqual([1, 0]);
    expect(splitShares(2, 3)).toEqual([1, 1, 0]);
    for (const [t, n] of [[7, 3], [64, 5], [0, 2]] as const) expect(splitShares(t, n).reduce((a, b) => a + b, 0)).toBe(t);
  });

  it('defaults to one thread per core but one, at most one per two workers', () => {
    expect(defaultCrewThreads(1, 8)).toBe(1);
    expect(defaultCrewThreads(2, 8)).toBe(1);
    expect(defaultCrewThreads(8, 2)).toBe(1);
    expect(defaultCrewThreads(8, 3)).toBe(2);
    expect(defaultCrewThreads(8, 16)).toBe(4);
    expect(defaultCrewThreads(4, 1)).toBe(1);
  });

  it('merges summaries: a task one crew failed and another finished is not reported failed', () => {
    const run = (taskId: string, startedMs: number) => ({ taskId, runId: `r-${taskId}-${startedMs}`, specialist: 's', attempt: 1, outcome: 'completed' as const, reason: '', startedMs, endedMs: startedMs + 1 });
    const m = mergeSummaries([
      { completed: ['A'], blocked: [], failed: [{ id: 'B', reason: 'x' }, { id: 'C', reason: 'y' }], runs: [run('A', 5)] },
      { completed: ['B'], blocked: [{ id: 'D', reason: 'z' }], failed: [], runs: [run('B', 2)] },
    ]);
    expect(m.completed).toEqual(['A', 'B']);
    expect(m.blocked).toEqual([{ id: 'D', reason: 'z' }]);
    expect(m.failed).toEqual([{ id: 'C', reason: 'y' }]);
    expect(m.runs.map((r) => r.taskId)).toEqual(['B', 'A']);
  });
});

describe('crew threads: two crews on one workspace', () => {
  let counter: CounterServer;
  let dir: string;
  let specialists: Specialist[];

  beforeAll(async () => {
    if (!existsSync(crewThreadEntry())) throw new Error(`the crew thread entry ${crewThreadEntry()} is missing: run \`npm run build\` first`);
    counter = await startCounterServer({ delayMs: 20 });
    dir = mkdtempSync(join(tmpdir(), 'opscrew-threads-'));
    const s = loadSpecialists(join(ROOT, 'agents', 'specialists'));
    if (!s.ok) throw new Error(s.message);
    specialists = s.value;
  });
  afterAll(async () => {
    await counter.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const workspace = (name: string, extra: string[] = []): Workspace => {
    const ws = resolveWorkspace(join(dir, name));
    ensureWorkspace(ws);
    writeFileSync(ws.configPath, ['mode: standard', 'concurrency: 4', 'max_attempts: 2', 'timeouts: { command: 10s, task: 30s }', 'http:', '  allow: [127.0.0.1]', ...extra, ''].join('\n'));
    return ws;
  };
  const task = (ws: Workspace, id: string, expect: string): void =>
    writeFileSync(
      join(ws.backlog, `${id.toLowerCase()}.md`),
      ['---', `id: ${id}`, `title: count ${id}`, '---', `# count ${id}`, '', '## Steps', '```sh', `curl -fsS ${counter.base}/count/${id}`, `# expect: ${expect}`, '```', '', '## Acceptance Criteria', '- [ ] N/A - the step checks itself', ''].join('\n'),
    );

  it('runs every task exactly once across both threads and keeps the caps in total', async () => {
    const ws = workspace('all');
    const n = 60;
    const ids = Array.from({ length: n }, (_, i) => `TASK-${String(500 + i)}`);
    for (const id of ids) task(ws, id, `counted ${id}`);
    const events: CrewEvent[] = [];
    const capped = specialists.map((s) => ({ ...s, maxConcurrency: s.name === 'devops-specialist' ? 3 : s.maxConcurrency }));
    const summary = await runCrewThreads({ workspace: ws.root, specialists: capped, once: true, concurrency: 4, threads: 2, onProgress: (e) => events.push(e) });
    expect([...summary.completed].sort()).toEqual([...ids].sort());
    expect(summary.blocked).toEqual([]);
    expect(readdirSync(ws.completed).filter((f) => f.endsWith('.md'))).toHaveLength(n);
    for (const id of ids) expect(counter.counts().get(id)).toBe(1);
    expect(overlappingHits(counter.hits)).toEqual([]);
    // Both threads took work (distinct holders), and never more than the devops cap (3) ran at once.
    const store = openStore(ws.dbPath);
    try {
      const runs = store.db.all<{ holder: string; started_ms: number; ended_ms: number }>('SELECT holder, started_ms, ended_ms FROM runs');
      expect(runs).toHaveLength(n);
      const holders = new Set(runs.map((r) => r.holder.split('#')[1]));
      expect(holders).toEqual(new Set(['0', '1']));
    } finally {
      store.close();
    }
    let running = 0;
    let peak = 0;
    for (const e of events) {
      if (e.type === 'claimed') peak = Math.max(peak, ++running);
      if (e.type === 'finished') running--;
    }
    expect(peak).toBeLessThanOrEqual(3);
    expect(events.filter((e) => e.type === 'finished')).toHaveLength(n);
  });

  it('as a daemon, starts the other crew threads only when the first has more ready work than slots', async () => {
    const ws = workspace('lazy');
    const events: CrewEvent[] = [];
    const stop = new AbortController();
    const run = runCrewThreads({ workspace: ws.root, specialists, once: false, concurrency: 2, threads: 2, pollMs: 100, signal: stop.signal, onProgress: (e) => events.push(e) });
    const waitFor = async (what: string, ok: () => boolean): Promise<void> => {
      const end = Date.now() + 20_000;
      while (!ok()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    try {
      await waitFor('the first crew', () => events.some((e) => e.type === 'crew-start'));
      await new Promise((r) => setTimeout(r, 600));
      // Idle: one crew, one thread.
      expect(events.filter((e) => e.type === 'crew-start')).toHaveLength(1);
      // Four tasks for devops-specialist (cap 2: one slot per crew), each GET held 400 ms.
      const ids = ['TASK-700', 'TASK-701', 'TASK-702', 'TASK-703'];
      for (const id of ids) {
        writeFileSync(
          join(ws.backlog, `${id.toLowerCase()}.md`),
          ['---', `id: ${id}`, `title: fetch ${id}`, '---', `# fetch ${id}`, '', '## Steps', '```sh', `curl -fsS '${counter.base}/count/${id}?ms=400'`, '```', '', '## Acceptance Criteria', '- [ ] N/A - the step checks itself', ''].join('\n'),
        );
      }
      await waitFor('every task to finish', () => events.filter((e) => e.type === 'finished').length === ids.length);
      expect(events.filter((e) => e.type === 'crew-start')).toHaveLength(2);
      const claimed = new Set(events.filter((e) => e.type === 'claimed').map((e) => e.taskId));
      expect(claimed).toEqual(new Set(ids));
    } finally {
      stop.abort();
    }
    const summary = await run;
    expect([...summary.completed].sort()).toEqual(['TASK-700', 'TASK-701', 'TASK-702', 'TASK-703']);
    const store = openStore(ws.dbPath);
    try {
      const threads = new Set(store.db.all<{ holder: string }>('SELECT holder FROM runs').map((r) => r.holder.split('#')[1]));
      expect(threads).toEqual(new Set(['0', '1']));
    } finally {
      store.close();
    }
  });

  it("waits out a failed run's backoff whichever thread retries it", async () => {
    const ws = workspace('backoff');
    // The first GET answers "#1": the expectation of "#2" fails, the retry passes.
    task(ws, 'TASK-900', 'counted TASK-900 #2');
    for (let i = 0; i < 6; i++) task(ws, `TASK-90${i + 1}`, `counted TASK-90${i + 1}`);
    const summary = await runCrewThreads({ workspace: ws.root, specialists, once: true, concurrency: 4, threads: 2, backoff: { baseMs: 600, maxMs: 600 } });
    expect(summary.completed).toContain('TASK-900');
    const store = openStore(ws.dbPath);
    try {
      const runs = store.db.all<{ attempt: number; outcome: string; started_ms: number; ended_ms: number }>(
        "SELECT attempt, outcome, started_ms, ended_ms FROM runs WHERE task_id = 'TASK-900' ORDER BY attempt",
      );
      expect(runs.map((r) => [r.attempt, r.outcome])).toEqual([
        [1, 'failed'],
        [2, 'completed'],
      ]);
      expect(runs[1]!.started_ms - runs[0]!.ended_ms).toBeGreaterThanOrEqual(600);
    } finally {
      store.close();
    }
  });
});
