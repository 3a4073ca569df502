// Retrospectives and the report: numbers equal what the store says; the canary never appears.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { lessonsFor } from '../core/knowledge.js';
import { buildReport, writeReport } from '../core/report.js';
import { buildRetroFacts, recordRunKnowledge, recordRunKnowledgeAsync, recordRunsKnowledgeAsync, renderRetro } from '../core/retro.js';
import type { Db } from '../core/store.js';
import { buildHistory, CANARY, T0, type History } from './knowledge-fixture.js';

let h: History;
beforeAll(async () => {
  h = await buildHistory();
});
afterAll(() => h.cleanup());

describe('retrospectives', () => {
  it('writes one retro file and row per run, named retro-YYYYMMDD-HHMMSS-TASK-ID', () => {
    const rows = h.store.db.all<{ id: string; run_id: string; file: string }>('SELECT id, run_id, file FROM retrospectives ORDER BY created_ms');
    expect(rows.map((r) => r.run_id)).toEqual([h.runs.r1, h.runs.r2, h.runs.r3, h.runs.r4]);
    for (const r of rows) {
      expect(r.id).toMatch(/^retro-\d{8}-\d{6}-TASK-00\d$/);
      expect(readFileSync(join(h.dir, r.file), 'utf8')).toContain('## Facts');
    }
    expect(h.retroFiles.map((f) => f.split('/').pop())).toEqual(rows.map((r) => `${r.id}.md`));
  });

  it('facts equal what the store holds for each run', () => {
    for (const runId of Object.values(h.runs)) {
      const f = buildRetroFacts(h.store.db, runId);
      expect(f).not.toBeNull();
      if (!f) continue;
      const run = h.store.db.get<{ outcome: string; started_ms: number; ended_ms: number }>('SELECT outcome, started_ms, ended_ms FROM runs WHERE id = ?', [runId]);
      const calls = h.store.db.all<{ seq: number; exit_code: number | null; duration_ms: number | null }>('SELECT seq, exit_code, duration_ms FROM tool_calls WHERE run_id = ? ORDER BY seq', [runId]);
      const v = h.store.db.all<{ outcome: string }>('SELECT outcome FROM verifications WHERE run_id = ?', [runId]);
      expect(f.outcome).toBe(run?.outcome);
      expect(f.durationMs).toBe((run?.ended_ms ?? 0) - (run?.started_ms ?? 0));
      // The run row is the claim's and the outcome's record: the timeline opens and closes with them.
      expect(f.timeline[0]).toEqual({ atMs: run?.started_ms, event: 'claimed' });
      expect(f.timeline.at(-1)?.atMs).toBe(run?.ended_ms);
      expect(f.timeline.at(-1)?.event.startsWith(run?.outcome ?? '?')).toBe(true);
      expect(f.steps.map((s) => [s.seq, s.exitCode, s.durationMs])).toEqual(calls.map((c) => [c.seq, c.exit_code, c.duration_ms]));
      expect(f.criteria.total).toBe(v.length);
      expect(f.criteria.met).toBe(v.filter((x) => x.outcome === 'verified' || x.outcome === 'na').length);
      const md = renderRetro(f);
      expect(md).toContain(`Acceptance criteria met: ${f.criteria.met} of ${f.criteria.total}`);
    }
  });

  it('names failures, scope, follow-ups and the deterministic lessons', () => {
    const f1 = buildRetroFacts(h.store.db, h.runs.r1, h.tasks['TASK-001']);
    expect(f1?.failures.map((x) => x.signature)).toEqual([
      'ssh systemctl restart exit=1: job for nginx.service failed because the control process exited with error code <hex>.',
      'http GET exit=7: curl: (<n>) failed to connect to web1.internal port <n> after <n> ms: connection refused',
    ]);
    expect(f1?.outOfScope).toEqual(['Changing the nginx configuration']);
    expect(f1?.followUps).toEqual(['TASK-003']);
    expect(f1?.lessons.map((l) => l.rule)).toEqual(['fixed-after-failure', 'criterion-failed']);
    const f2 = buildRetroFacts(h.store.db, h.runs.r2);
    expect(f2?.lessons.map((l) => l.rule)).toEqual(['recovered-across-runs', 'recovered-across-runs']);
    // The earlier run's lessons are related past runs of this run: its signatures did not recur.
    expect(f2?.related.filter((r) => r.runId === h.runs.r1).map((r) => r.applied)).toEqual(['avoided', 'unknown']);
    expect(buildRetroFacts(h.store.db, h.runs.r3)?.lessons.map((l) => l.rule)).toEqual(['policy-refusal']);
    expect(buildRetroFacts(h.store.db, h.runs.r4)?.lessons.map((l) => l.rule)).toEqual(['needs-approval']);
    const dbLessons = h.store.db.all<{ run_id: string; rule: string }>('SELECT run_id, rule FROM lessons ORDER BY id');
    expect(dbLessons.length).toBe(6);
  });

  it('re-recording a run replaces its rows and keeps its file name', () => {
    const before = h.store.db.all('SELECT id, file FROM retrospectives ORDER BY id');
    const lessons = h.store.db.get<{ n: number }>('SELECT count(*) AS n FROM lessons')?.n;
    const out = recordRunKnowledge({ db: h.store.db, root: h.dir, retrospectivesDir: h.ws.retrospectives, now: () => h.clock.t + 999_999, scrub: h.scrub }, { runId: h.runs.r1, task: h.tasks['TASK-001'] ?? null, narrative: 'The first restart failed.' });
    expect(out?.retroFile).toBe(h.retroFiles[0]);
    expect(readFileSync(out?.retroFile ?? '', 'utf8')).toContain('## Narrative');
    expect(h.store.db.all('SELECT id, file FROM retrospectives ORDER BY id')).toEqual(before);
    expect(h.store.db.get<{ n: number }>('SELECT count(*) AS n FROM lessons')?.n).toBe(lessons);
    expect(recordRunKnowledge({ db: h.store.db, root: h.dir, retrospectivesDir: h.ws.retrospectives, now: () => 0 }, { runId: 'run-missing' })).toBeNull();
  });

  it('lessons_for offers the lessons of related past runs, by shared entities', () => {
    const r = lessonsFor(h.store.db, h.tasks['TASK-001'] ?? 'TASK-001');
    expect(r.lessons.length).toBeGreaterThan(0);
    expect(new Set(r.lessons.map((l) => l.runId))).toEqual(new Set([h.runs.r1, h.runs.r2, h.runs.r4]));
    expect(r.lessons[0]?.shared).toContain('host:web1');
    // TASK-005 shares only the `web` tag with TASK-001: its lesson ranks last, for that reason alone.
    expect(r.lessons[r.lessons.length - 1]).toMatchObject({ runId: h.runs.r4, shared: ['tag:web'] });
    expect(r.lessons.slice(0, -1).every((l) => l.score > (r.lessons[r.lessons.length - 1]?.score ?? 0))).toBe(true);
    // TASK-002 shares nothing but its own history.
    const k = lessonsFor(h.store.db, 'TASK-002');
    expect(k.lessons.map((l) => l.runId)).toEqual([h.runs.r3]);
    expect(k.retros.map((x) => x.runId)).toEqual([h.runs.r3]);
  });
});

/** The store, counting the deferred-sync write transactions started through it. */
function countingDeferred(db: Db): { db: Db; transactions: () => number } {
  let n = 0;
  const counted: Db = {
    ...db,
    immediateDeferred: (fn) => {
      n++;
      return db.immediateDeferred(fn);
    },
  };
  return { db: counted, transactions: () => n };
}

describe('recording a run', () => {
  let fresh: History;
  beforeAll(async () => {
    fresh = await buildHistory({ retros: false });
  });
  afterAll(() => fresh.cleanup());

  const rowsOf = (db: Db, runId: string): number[] =>
    [
      db.get<{ n: number }>('SELECT count(*) AS n FROM edges WHERE run_id = ?', [runId])?.n ?? -1,
      db.get<{ n: number }>('SELECT count(*) AS n FROM kdocs WHERE run_id = ? OR ref = ?', [runId, 'TASK-001'])?.n ?? -1,
      db.get<{ n: number }>('SELECT count(*) AS n FROM retrospectives WHERE run_id = ?', [runId])?.n ?? -1,
      db.get<{ n: number }>('SELECT count(*) AS n FROM lessons WHERE run_id = ?', [runId])?.n ?? -1,
    ];

  it('is all or nothing: a retro file that cannot be written leaves no index rows behind', () => {
    const db = fresh.store.db;
    const runId = fresh.runs.r1;
    const blocker = join(fresh.dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const deps = { db, root: fresh.dir, retrospectivesDir: join(blocker, 'retros'), now: () => fresh.clock.t, scrub: fresh.scrub };
    expect(() => recordRunKnowledge(deps, { runId, task: fresh.tasks['TASK-001'] ?? null })).toThrow();
    expect(rowsOf(db, runId)).toEqual([0, 0, 0, 0]);
    const out = recordRunKnowledge({ ...deps, retrospectivesDir: fresh.ws.retrospectives }, { runId, task: fresh.tasks['TASK-001'] ?? null });
    expect(out).not.toBeNull();
    expect(rowsOf(db, runId).every((n) => n > 0)).toBe(true);
  });

  it('the async variant writes what the sync one writes, in one transaction, and keeps nothing when the file fails', async () => {
    const db = fresh.store.db;
    const runId = fresh.runs.r3;
    const blocker = join(fresh.dir, 'not-a-dir-2');
    writeFileSync(blocker, 'x');
    const deps = { db, root: fresh.dir, retrospectivesDir: join(blocker, 'retros'), now: () => fresh.clock.t, scrub: fresh.scrub };
    const task = fresh.tasks['TASK-002'] ?? null;
    await expect(recordRunKnowledgeAsync(deps, { runId, task })).rejects.toThrow();
    expect(db.get<{ n: number }>('SELECT count(*) AS n FROM retrospectives WHERE run_id = ?', [runId])?.n).toBe(0);
    const counting = countingDeferred(db);
    const good = { ...deps, db: counting.db, retrospectivesDir: fresh.ws.retrospectives };
    const a = await recordRunKnowledgeAsync(good, { runId, task });
    expect(counting.transactions()).toBe(1);
    expect(a).not.toBeNull();
    const row = db.get<{ body: string; file: string }>('SELECT body, file FROM retrospectives WHERE run_id = ?', [runId]);
    expect(readFileSync(a!.retroFile, 'utf8')).toBe(row?.body);
    // Recording again through the sync variant keeps the same id and writes the same text.
    const b = recordRunKnowledge({ ...deps, retrospectivesDir: fresh.ws.retrospectives }, { runId, task });
    expect(b?.retroId).toBe(a!.retroId);
    expect(readFileSync(b!.retroFile, 'utf8')).toBe(row?.body);
    expect(readdirSync(fresh.ws.retrospectives).filter((f) => f.includes('opscrew-tmp'))).toEqual([]);
  });

  it('a batch writes several runs in one transaction; a run that fails is rolled back alone', async () => {
    const db = fresh.store.db;
    const counting = countingDeferred(db);
    // The scrubber throws on TASK-005's title: that run's retrospective fails inside the batch.
    const scrub = (t: string): string => {
      if (t.includes('TASK-005')) throw new Error('scrub refused');
      return fresh.scrub(t);
    };
    const deps = { db: counting.db, root: fresh.dir, retrospectivesDir: fresh.ws.retrospectives, now: () => fresh.clock.t, scrub };
    const runs = [fresh.runs.r2, fresh.runs.r4, fresh.runs.r1];
    const before = rowsOf(db, fresh.runs.r4);
    const out = await recordRunsKnowledgeAsync(deps, [
      { runId: fresh.runs.r2, task: fresh.tasks['TASK-001'] ?? null },
      { runId: fresh.runs.r4, task: fresh.tasks['TASK-005'] ?? null },
      { runId: fresh.runs.r1, task: fresh.tasks['TASK-001'] ?? null },
    ]);
    expect(counting.transactions()).toBe(1);
    expect(out.map((r) => r.ok)).toEqual([true, false, true]);
    const failed = out[1];
    expect(failed && !failed.ok ? failed.error.message : '').toBe('scrub refused');
    expect(rowsOf(db, fresh.runs.r4)).toEqual(before);
    for (const [i, runId] of runs.entries()) {
      const r = out[i];
      if (!r?.ok) continue;
      const row = db.get<{ body: string }>('SELECT body FROM retrospectives WHERE run_id = ?', [runId]);
      expect(readFileSync(r.value?.retroFile ?? '', 'utf8')).toBe(row?.body);
    }
    expect(readdirSync(fresh.ws.retrospectives).filter((f) => f.includes('TASK-005') || f.includes('opscrew-tmp'))).toEqual([]);
  });

  it('onlyIfMissing writes nothing for a run that has its retrospective by then (a recovery racing the crew)', async () => {
    const db = fresh.store.db;
    const deps = { db, root: fresh.dir, retrospectivesDir: fresh.ws.retrospectives, now: () => fresh.clock.t, scrub: fresh.scrub };
    const runId = fresh.runs.r2;
    const first = await recordRunKnowledgeAsync(deps, { runId, task: fresh.tasks['TASK-001'] ?? null });
    const text = readFileSync(first?.retroFile ?? 'missing', 'utf8');
    const files = readdirSync(fresh.ws.retrospectives).sort();
    const [again] = await recordRunsKnowledgeAsync(deps, [{ runId, task: null, narrative: 'would replace it', onlyIfMissing: true }]);
    expect(again).toEqual({ ok: true, value: null });
    expect(readFileSync(first?.retroFile ?? 'missing', 'utf8')).toBe(text);
    expect(readdirSync(fresh.ws.retrospectives).sort()).toEqual(files);
  });

  it('is one write transaction (the indexes, the retrospective and its lessons commit together)', () => {
    const db = fresh.store.db;
    let depth = 0;
    let outermost = 0;
    const counting: Db = {
      ...db,
      immediate: <T>(fn: () => T): T => {
        if (depth === 0) outermost++;
        depth++;
        try {
          return db.immediate(fn);
        } finally {
          depth--;
        }
      },
    };
    const deps = { db: counting, root: fresh.dir, retrospectivesDir: fresh.ws.retrospectives, now: () => fresh.clock.t, scrub: fresh.scrub };
    expect(recordRunKnowledge(deps, { runId: fresh.runs.r2, task: fresh.tasks['TASK-001'] ?? null })).not.toBeNull();
    expect(depth).toBe(0);
    expect(outermost).toBe(1);
  });
});

describe('report', () => {
  it('numbers equal what is computed from the store', () => {
    const now = h.clock.t;
    const { data, markdown } = buildReport(h.store.db, { sinceMs: T0 - 1, now });
    const db = h.store.db;
    const runs = db.all<{ id: string; task_id: string; outcome: string; started_ms: number; ended_ms: number }>('SELECT * FROM runs ORDER BY started_ms');
    expect(data.runs).toBe(runs.length);
    expect(data.tasks.processed).toBe(new Set(runs.map((r) => r.task_id)).size);
    expect(data.tasks.completed).toBe(new Set(runs.filter((r) => r.outcome === 'completed').map((r) => r.task_id)).size);
    expect(data.tasks).toMatchObject({ processed: 3, completed: 2, blocked: 1 });
    expect(data.tasks.completionRate).toBeCloseTo(2 / 3);
    expect(data.criteria).toEqual({ met: 2, total: 3 });
    const total = runs.reduce((s, r) => s + r.ended_ms - r.started_ms, 0);
    expect(data.durations.totalMs).toBe(total);
    expect(data.durations.averageMs).toBe(Math.round(total / runs.length));
    const r4 = runs.find((r) => r.id === h.runs.r4);
    expect(data.durations.blockedMs).toBe(now - (r4?.ended_ms ?? 0));
    expect(data.specialists.map((s) => [s.agent, s.runs, s.completed, s.blocked, s.other, s.calls, s.failedCalls])).toEqual([
      ['devops-specialist', 3, 1, 1, 1, 6, 3],
      ['k8s-specialist', 1, 1, 0, 0, 2, 1],
    ]);
    expect(data.discoveries.length).toBe(4);
    expect(data.discoveries.filter((d) => d.refusal).map((d) => d.signature).sort()).toEqual([
      'compose restart needs-approval: approval.mutate',
      'kubectl delete denied: class.destructive',
    ]);
    expect(data.learnings.length).toBe(db.get<{ n: number }>('SELECT count(*) AS n FROM lessons')?.n);
    expect(data.backlog.map((b) => [b.priority, b.tasks.map((t) => t.id)])).toEqual([
      ['critical', ['TASK-003']],
      ['high', ['TASK-005']],
      ['low', ['TASK-004']],
    ]);
    expect(data.backlog[0]?.tasks[0]?.blockedBy).toEqual(['TASK-005']);
    expect(data.backlog[1]?.tasks[0]?.blocks).toEqual(['TASK-003']);
    expect(data.startHere.map((s) => s.id)).toEqual(['TASK-005', 'TASK-004']);
    expect(markdown).toContain('Acceptance criteria met: 2 of 3');
    expect(markdown).toContain('## Start here next');
    // Created counts tasks whose creation falls in the window.
    const created = db.get<{ n: number }>('SELECT count(*) AS n FROM tasks WHERE created_ms >= ? AND created_ms <= ?', [0, Date.now() + 86_400_000])?.n;
    expect(buildReport(db, { sinceMs: 0, now: Date.now() + 86_400_000 }).data.tasks.created).toBe(created);
    expect(created).toBe(5);
    // An empty window is all zeros, not NaN.
    expect(buildReport(db, { sinceMs: now + 1, now: now + 2 }).data.tasks).toEqual({ processed: 0, completed: 0, blocked: 0, created: 0, completionRate: 0 });
  });

  it('writes report-YYYYMMDD-HHMMSS.md', () => {
    const r = writeReport({ db: h.store.db, retrospectivesDir: h.ws.retrospectives, scrub: h.scrub }, { sinceMs: T0 - 1, now: h.clock.t });
    expect(r.file).toMatch(/report-\d{8}-\d{6}\.md$/);
    expect(readFileSync(r.file, 'utf8')).toBe(r.markdown);
  });
});

describe('the canary secret', () => {
  it('was in the raw outputs, and never appears in any table or written file', () => {
    writeReport({ db: h.store.db, retrospectivesDir: h.ws.retrospectives, scrub: h.scrub }, { sinceMs: 0, now: h.clock.t });
    const db = h.store.db;
    const tables = db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type IN ('table') AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'kfts_%'");
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['entities', 'edges', 'retrospectives', 'lessons', 'kdocs', 'kfts', 'tool_calls']));
    let cells = 0;
    for (const { name } of tables) {
      for (const row of db.all<Record<string, unknown>>(`SELECT * FROM "${name}"`)) {
        for (const v of Object.values(row)) {
          cells++;
          expect(String(v)).not.toContain(CANARY);
        }
      }
    }
    expect(cells).toBeGreaterThan(100);
    // The FTS index cannot find it either.
    expect(db.all(`SELECT rowid FROM kfts WHERE kfts MATCH ?`, [`"${CANARY}"`])).toEqual([]);
    const files = readdirSync(h.ws.retrospectives);
    expect(files.filter((f) => f.startsWith('retro-')).length).toBe(4);
    expect(files.filter((f) => f.startsWith('report-')).length).toBeGreaterThanOrEqual(1);
    for (const f of files) expect(readFileSync(join(h.ws.retrospectives, f), 'utf8')).not.toContain(CANARY);
    // And the scrub really had something to remove: the audit row shows the handle instead.
    expect(db.all("SELECT seq FROM tool_calls WHERE stderr LIKE '%{{secret:kv/webhook#token}}%'").length).toBe(1);
  });
});
