// Reliability of the crew as real daemons, after GitLab's reliable-fetch test: 200 tasks whose
// step hits a local HTTP counter, two `opscrew run` daemons with two workers each on one
// workspace; one daemon is killed with SIGKILL mid-run and restarted. Every task must complete,
// no task may run in two workers at once (neither at the counter nor in the runs table), only
// tasks the killed daemon was running may run again, and their repeat is an attempt on record.
// Needs `npm run build`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../mcp-server/core/store.js';
import { ensureWorkspace, resolveWorkspace, type Workspace } from '../mcp-server/core/workspace.js';
import { overlappingHits, startCounterServer, type CounterServer } from './fixtures/crew/counter-server.js';
import { readCrewLog, requireBuiltCli, startDaemonReady, waitExit, waitUntil, type Daemon } from './fixtures/crew/daemon.js';

const TASKS = 200;
const WORKERS_PER_DAEMON = 2;
const LEASE_MS = 3000;

interface RunRow {
  id: string;
  task_id: string;
  attempt: number;
  holder: string;
  outcome: string | null;
  started_ms: number;
  ended_ms: number | null;
}

const mdFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.md'));
const pidOf = (holder: string): number => Number(holder.split(':')[1]);
const idOf = (i: number): string => `TASK-${1000 + i}`;

describe('crew reliability: two daemons, one killed with SIGKILL mid-run and restarted', () => {
  let dir: string;
  let ws: Workspace;
  let counter: CounterServer;
  let store: Store | undefined;
  const daemons: Daemon[] = [];

  beforeAll(async () => {
    requireBuiltCli();
    counter = await startCounterServer({ delayMs: 75 });
    dir = mkdtempSync(join(tmpdir(), 'opscrew-reliability-'));
    ws = resolveWorkspace(join(dir, 'ws'));
    ensureWorkspace(ws);
    writeFileSync(
      ws.configPath,
      [
        'mode: standard',
        `concurrency: ${WORKERS_PER_DAEMON}`,
        'max_attempts: 3',
        // A short lease so the survivor and the restarted daemon reclaim the dead one's tasks soon.
        `timeouts: { command: 20s, task: 60s, lease: ${LEASE_MS / 1000}s, grace: 10s }`,
        'http:',
        '  allow: [127.0.0.1]',
        '',
      ].join('\n'),
    );
    for (let i = 1; i <= TASKS; i++) {
      const id = idOf(i);
      writeFileSync(
        join(ws.backlog, `count-${i}.md`),
        `---
id: ${id}
title: Count ${id}
---
# Count ${id}

## Steps
\`\`\`sh
curl -fsS ${counter.base}/count/${id}
# expect: counted ${id}
\`\`\`

## Acceptance Criteria
- [ ] The service answers
  \`\`\`sh
  curl -fsS ${counter.base}/health
  \`\`\`
`,
      );
    }
    // Create the schema once up front rather than from two daemons starting at the same moment.
    store = openStore(ws.dbPath);
  });

  afterAll(async () => {
    for (const d of daemons) {
      d.kill('SIGKILL');
      await d.exited;
    }
    store?.close();
    await counter?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`${TASKS} tasks, ${2 * WORKERS_PER_DAEMON} workers in 2 daemons, SIGKILL one at ~30%: all complete, none ran twice at once, only the killed daemon's tasks repeat, as attempts`, async () => {
    const db = store!.db;
    const args = ['--concurrency', String(WORKERS_PER_DAEMON)];
    const t0 = Date.now();
    const [victim, survivor] = await Promise.all([startDaemonReady(ws.root, args), startDaemonReady(ws.root, args)]);
    daemons.push(victim!, survivor!);
    const a = victim!;
    const b = survivor!;
    const startedMs = Date.now() - t0;

    // Kill the victim once ~30% are done and it is in the middle of at least one task.
    const openOf = (pid: number): RunRow[] =>
      db.all<RunRow>('SELECT * FROM runs WHERE outcome IS NULL').filter((r) => pidOf(r.holder) === pid);
    await waitUntil(
      () => (mdFiles(ws.completed).length >= TASKS * 0.3 && openOf(a.pid).length > 0 ? true : undefined),
      60_000,
      () => `30% completed and the victim busy (completed ${mdFiles(ws.completed).length}; victim stderr tail:\n${a.stderr().slice(-2000)})`,
      5,
    );
    a.kill('SIGKILL');
    const killAt = Date.now();
    const killExit = await waitExit(a, 5000);
    expect(killExit.signal).toBe('SIGKILL');
    const completedAtKill = mdFiles(ws.completed).length;
    // What it was running when it died: open runs still held by the dead pid (the survivor may
    // already have reconciled some of them, which marks them lost).
    const killedRuns = db.all<RunRow>("SELECT * FROM runs WHERE outcome IS NULL OR outcome = 'lost'").filter((r) => pidOf(r.holder) === a.pid);
    const killedTasks = new Set(killedRuns.map((r) => r.task_id));
    expect(killedTasks.size).toBeGreaterThan(0);
    expect(killedTasks.size).toBeLessThanOrEqual(WORKERS_PER_DAEMON);

    const restarted = await startDaemonReady(ws.root, args);
    daemons.push(restarted);
    const restartMs = Date.now() - killAt;

    await waitUntil(
      () => (mdFiles(ws.completed).length === TASKS ? true : undefined),
      90_000,
      () =>
        `all ${TASKS} completed (completed ${mdFiles(ws.completed).length}, active ${mdFiles(ws.active).join(',')}, backlog ${mdFiles(ws.backlog).length})`,
      50,
    );
    const allDoneMs = Date.now() - t0;
    const recoveredMs = Math.max(
      ...db
        .all<{ ended_ms: number }>("SELECT ended_ms FROM runs WHERE outcome = 'completed'")
        .map((r) => r.ended_ms),
    ) - killAt;

    // Stop both crews gracefully; nothing may be left half-done.
    b.kill('SIGTERM');
    restarted.kill('SIGTERM');
    const [eb, er] = await Promise.all([waitExit(b, 15_000), waitExit(restarted, 15_000)]);
    expect(eb.code).toBe(0);
    expect(er.code).toBe(0);

    // 1. Every task completed; nothing left in active/ or backlog/.
    expect(mdFiles(ws.completed).length).toBe(TASKS);
    expect(mdFiles(ws.active)).toEqual([]);
    expect(mdFiles(ws.backlog)).toEqual([]);
    const counts = counter.counts();
    for (let i = 1; i <= TASKS; i++) expect(counts.get(idOf(i)) ?? 0, idOf(i)).toBeGreaterThanOrEqual(1);

    // 2. No task ever ran in two workers at once: at the counter (request intervals per task)...
    expect(counter.overlaps).toEqual([]);
    expect(overlappingHits(counter.hits)).toEqual([]);
    // ...and in the queue's runs table (never two open runs of one task).
    const runs = db.all<RunRow>('SELECT * FROM runs ORDER BY task_id, started_ms');
    expect(runs.filter((r) => r.outcome === null || r.ended_ms === null)).toEqual([]);
    const byTask = new Map<string, RunRow[]>();
    for (const r of runs) byTask.set(r.task_id, [...(byTask.get(r.task_id) ?? []), r]);
    for (const [id, list] of byTask) {
      for (let i = 1; i < list.length; i++) expect(list[i - 1]!.ended_ms!, `${id} runs overlap`).toBeLessThanOrEqual(list[i]!.started_ms);
    }

    // 3. Repeats only for tasks whose worker was killed.
    const repeatedAtCounter = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    const repeatedRuns = [...byTask].filter(([, l]) => l.length > 1).map(([id]) => id);
    for (const id of [...repeatedAtCounter, ...repeatedRuns]) expect(killedTasks.has(id), `${id} repeated but was not the killed daemon's`).toBe(true);
    const lost = runs.filter((r) => r.outcome === 'lost');
    expect(lost.length).toBeGreaterThan(0);
    for (const r of lost) expect(pidOf(r.holder), `lost run ${r.id}`).toBe(a.pid);
    const lostTasks = new Set(lost.map((r) => r.task_id));
    // The daemons' logs show the reclaim: a reconcile returned each of them to the backlog. A
    // kill inside a claim's transaction leaves a file in active/ with no run row at all; the
    // reconcile returns that one too (and counts the claim as an attempt) — it never ran.
    const repaired = new Set(
      readCrewLog(ws.logsDir)
        .filter((e) => e.type === 'reconciled')
        .flatMap((e) => (e.data?.['repairs'] as Array<{ kind: string; id?: string }> | undefined) ?? [])
        .filter((r) => r.kind === 'lease-lost')
        .map((r) => r.id ?? ''),
    );
    for (const id of lostTasks) expect(repaired.has(id), `${id} reclaimed by a reconcile`).toBe(true);
    const claimCut = [...repaired].filter((id) => !killedTasks.has(id));
    expect(killedTasks.size + claimCut.length).toBeLessThanOrEqual(WORKERS_PER_DAEMON);

    // 4. The repeats are recorded as attempts: a lost attempt 1 by the dead daemon, then a
    //    completed attempt 2 by a live one; the task file says `attempts: 2`. Everyone else: 1.
    const fileOf = new Map<string, string>();
    for (const name of mdFiles(ws.completed)) {
      const text = readFileSync(join(ws.completed, name), 'utf8');
      const id = /^id: (\S+)$/m.exec(text)?.[1] ?? name;
      fileOf.set(id, text);
    }
    for (const [id, list] of byTask) {
      const text = fileOf.get(id) ?? '';
      expect(text, id).toMatch(/^status: completed$/m);
      expect(text, id).toContain('## Verification Evidence');
      expect(list[list.length - 1]!.outcome, id).toBe('completed');
      if (lostTasks.has(id)) {
        expect(list.map((r) => [r.attempt, r.outcome]), id).toEqual([
          [1, 'lost'],
          [2, 'completed'],
        ]);
        expect(pidOf(list[1]!.holder)).not.toBe(a.pid);
        expect(text, id).toMatch(/^attempts: 2$/m);
      } else if (claimCut.includes(id)) {
        expect(list.map((r) => [r.attempt, r.outcome]), id).toEqual([[2, 'completed']]);
        expect(counts.get(id), id).toBe(1);
        expect(text, id).toMatch(/^attempts: 2$/m);
      } else if (!killedTasks.has(id)) {
        expect(list.map((r) => [r.attempt, r.outcome]), id).toEqual([[1, 'completed']]);
        expect(text, id).toMatch(/^attempts: 1$/m);
      }
    }
    expect(runs.length).toBe(TASKS + lost.length);

    // 5. The work was really shared: all three daemon processes ran tasks, and more tasks ran at
    //    once than one daemon's workers allow.
    const byPid = new Map<number, number>();
    for (const r of runs) byPid.set(pidOf(r.holder), (byPid.get(pidOf(r.holder)) ?? 0) + 1);
    expect(byPid.get(a.pid) ?? 0).toBeGreaterThan(0);
    expect(byPid.get(b.pid) ?? 0).toBeGreaterThan(0);
    expect(byPid.get(restarted.pid) ?? 0).toBeGreaterThan(0);
    const edges = runs.filter((r) => r.outcome === 'completed').flatMap((r) => [
      [r.started_ms, 1],
      [r.ended_ms!, -1],
    ]) as Array<[number, number]>;
    edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let cur = 0;
    let peak = 0;
    for (const [, d] of edges) peak = Math.max(peak, (cur += d));
    expect(peak).toBeGreaterThan(WORKERS_PER_DAEMON);

    console.log(
      `[timing] reliability: ${TASKS} tasks, 2 daemons × ${WORKERS_PER_DAEMON} workers; daemons up in ${startedMs} ms; ` +
        `SIGKILL at ${killAt - t0} ms with ${completedAtKill} completed and ${killedTasks.size} task(s) in flight; restart took ${restartMs} ms; ` +
        `all completed at ${allDoneMs} ms (${(TASKS / (allDoneMs / 1000)).toFixed(1)} tasks/s); last completion ${recoveredMs} ms after the kill; ` +
        `lost runs ${lost.length}; claims cut by the kill ${claimCut.length}; repeated at the counter ${repeatedAtCounter.length}; peak concurrent runs ${peak}; runs per pid ${JSON.stringify([...byPid.values()])}`,
    );
  }, 150_000);
});
