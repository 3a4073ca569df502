// Related lessons (knowledge-related.ts) against a brute-force ranking over every lesson, on a
// graph with entities shared by most of the history ("hot") and rare ones, more lessons than the
// walk bound, and lessons whose age order differs from their id order.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lessonsFor, SHARE_WEIGHT } from '../core/knowledge.js';
import { addEdge, entityId, type EntityKind, type EntityRef } from '../core/knowledge-extract.js';
import { HOT_FANOUT, HOT_WALK, relatedLessons, type RelatedLesson, type SharedRef } from '../core/knowledge-related.js';
import { openStore, type Db, type Store } from '../core/store.js';
import { mulberry32 } from '../../test/fixtures/prng.js';

const TASKS = 640;
const BONUS = SHARE_WEIGHT.error_signature ?? 0;
const HOST: EntityRef = { kind: 'url_host', name: '127.0.0.1:8080' };
const TAG: EntityRef = { kind: 'tag', name: 'web' };
const ns = (k: number): EntityRef => ({ kind: 'namespace', name: `ns${k}` });
const sig = (k: number): EntityRef => ({ kind: 'error_signature', name: `curl get exit=7: refused ${k}` });


/**
 * Every task and run touches HOST (hot); tasks touch one of 20 namespaces (rare) and every third
 * the `web` tag (hot through tasks); half the runs fail with one of 4 signatures (sig 0 is hot).
 */
function fill(db: Db): void {
  const r = mulberry32(11);
  const t0 = Date.UTC(2026, 0, 1);
  db.immediate(() => {
    for (let i = 1; i <= TASKS; i++) {
      const task: EntityRef = { kind: 'task', name: `TASK-${i}` };
      const tOrigin = `task:TASK-${i}`;
      addEdge(db, task, 'touched', HOST, tOrigin, null);
      addEdge(db, task, 'touched', ns(i % 20), tOrigin, null);
      if (i % 3 === 0) addEdge(db, task, 'touched', TAG, tOrigin, null);
      const runs = r() < 0.3 ? 2 : 1;
      for (let a = 1; a <= runs; a++) {
        const runId = `run-${i}-${a}`;
        const started = t0 + i * 60_000 + a * 1000;
        db.run("INSERT INTO runs (id, task_id, agent, attempt, token, holder, outcome, started_ms, ended_ms) VALUES (?, ?, 'a', ?, ?, 'h', 'completed', ?, ?)", [
          runId, `TASK-${i}`, a, a, started, started + 500,
        ]);
        const run: EntityRef = { kind: 'run', name: runId };
        const origin = `run:${runId}`;
        addEdge(db, run, 'run_of', task, origin, runId);
        addEdge(db, run, 'touched', HOST, origin, runId);
        const failed = i % 2 === 0 ? sig(Math.floor(r() * 4) === 0 ? 1 + (i % 3) : 0) : null;
        if (failed) addEdge(db, run, 'failed_with', failed, origin, runId);
        if (r() < 0.35) continue; // no lessons for this run
        // Lessons of one run share a time; one in ten is back-dated, so age order is not id order.
        const created = r() < 0.1 ? t0 + Math.floor(r() * i) * 60_000 : started + 600;
        const retroId = `retro-${runId}`;
        db.run("INSERT INTO retrospectives (id, run_id, task_id, file, outcome, created_ms, facts, body) VALUES (?, ?, ?, ?, 'completed', ?, '{}', '')", [
          retroId, runId, `TASK-${i}`, `retrospectives/${retroId}.md`, created,
        ]);
        for (let n = 0; n < (r() < 0.4 ? 2 : 1); n++) {
          const signature = failed && n === 0 ? failed.name : null;
          db.run("INSERT INTO lessons (run_id, task_id, retro_id, rule, signature, text, created_ms) VALUES (?, ?, ?, 'fixed-after-failure', ?, ?, ?)", [
            runId, `TASK-${i}`, retroId, signature, `lesson ${n} of ${runId}`, created,
          ]);
        }
      }
    }
  });
}

function refOf(db: Db, e: EntityRef): SharedRef {
  return { id: entityId(db, e), label: `${e.kind}:${e.name}`, weight: SHARE_WEIGHT[e.kind as EntityKind] ?? 0 };
}

function fanout(db: Db, id: number): number {
  return db.get<{ n: number }>("SELECT count(*) AS n FROM edges WHERE dst = ? AND kind IN ('touched', 'failed_with')", [id])?.n ?? 0;
}

/**
 * The documented ranking, by brute force over every lesson: score, newest, lowest id; a lesson that
 * shares only hot entities counts only when it is among the newest HOT_WALK lessons.
 */
function reference(db: Db, refs: readonly SharedRef[], limit: number, excludeRunId?: string): RelatedLesson[] {
  const hot = new Set(refs.filter((r) => fanout(db, r.id) > HOT_FANOUT).map((r) => r.id));
  const newest = new Set(db.all<{ id: number }>('SELECT id FROM lessons ORDER BY created_ms DESC, id LIMIT ?', [HOT_WALK]).map((l) => l.id));
  type Row = { id: number; run_id: string; task_id: string; signature: string | null; text: string; rule: string; retro_id: string | null; file: string | null; created_ms: number };
  const out: RelatedLesson[] = [];
  const rows = db.all<Row>('SELECT l.id, l.run_id, l.task_id, l.signature, l.text, l.rule, l.retro_id, r.file, l.created_ms FROM lessons l LEFT JOIN retrospectives r ON r.id = l.retro_id');
  for (const l of rows) {
    if (l.run_id === excludeRunId) continue;
    const dsts = new Set(
      db
        .all<{ dst: number }>(
          `SELECT e.dst FROM entities s JOIN edges e ON e.src = s.id WHERE s.kind = 'run' AND s.name = ? AND e.kind IN ('touched', 'failed_with')
           UNION ALL
           SELECT e.dst FROM runs r JOIN entities t ON t.kind = 'task' AND t.name = r.task_id JOIN edges e ON e.src = t.id AND e.kind = 'touched' WHERE r.id = ?`,
          [l.run_id, l.run_id],
        )
        .map((d) => d.dst),
    );
    const shared = refs.filter((r) => dsts.has(r.id));
    if (shared.length === 0) continue;
    if (shared.every((r) => hot.has(r.id)) && !newest.has(l.id)) continue;
    const labels = shared.map((s) => s.label).sort();
    const bonus = l.signature !== null && labels.includes(`error_signature:${l.signature}`) ? BONUS : 0;
    out.push({
      lessonId: l.id, text: l.text, rule: l.rule, signature: l.signature, runId: l.run_id, taskId: l.task_id, retroId: l.retro_id, retroFile: l.file,
      score: shared.reduce((s, r) => s + r.weight, 0) + bonus, shared: labels, createdMs: l.created_ms,
    });
  }
  out.sort((a, b) => b.score - a.score || b.createdMs - a.createdMs || a.lessonId - b.lessonId);
  return out.slice(0, limit);
}

let dir: string;
let store: Store;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opscrew-related-'));
  store = openStore(join(dir, 'opscrew.db'));
  fill(store.db);
});
afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('related lessons', () => {
  it('the fixture has hot and rare entities and more lessons than the walk bound', () => {
    const db = store.db;
    expect(fanout(db, refOf(db, HOST).id)).toBeGreaterThan(HOT_FANOUT);
    expect(fanout(db, refOf(db, TAG).id)).toBeGreaterThan(HOT_FANOUT);
    expect(fanout(db, refOf(db, sig(0)).id)).toBeGreaterThan(HOT_FANOUT);
    expect(fanout(db, refOf(db, sig(1)).id)).toBeLessThanOrEqual(HOT_FANOUT);
    expect(fanout(db, refOf(db, ns(3)).id)).toBeLessThanOrEqual(HOT_FANOUT);
    expect(db.get<{ n: number }>('SELECT count(*) AS n FROM lessons')?.n).toBeGreaterThan(HOT_WALK);
  });

  const cases: Array<{ name: string; refs: EntityRef[]; limit: number; exclude?: string }> = [
    { name: 'one hot entity', refs: [HOST], limit: 5 },
    { name: 'hot entity and hot signature', refs: [HOST, sig(0)], limit: 5 },
    { name: 'hot tag and host, long list', refs: [HOST, TAG], limit: 40 },
    { name: 'rare namespace and a rare signature', refs: [ns(3), sig(1)], limit: 10 },
    { name: 'hot and rare together', refs: [HOST, TAG, ns(7), sig(2), sig(0)], limit: 8 },
    { name: 'a run left out', refs: [HOST, ns(4)], limit: 6, exclude: 'run-404-1' },
    { name: 'more asked for than exist', refs: [ns(5)], limit: 100 },
  ];
  for (const c of cases) {
    it(`equals the brute-force ranking: ${c.name}`, () => {
      const db = store.db;
      const refs = c.refs.map((e) => refOf(db, e));
      const got = relatedLessons(db, refs, { limit: c.limit, signatureBonus: BONUS, ...(c.exclude ? { excludeRunId: c.exclude } : {}) });
      const want = reference(db, refs, c.limit, c.exclude);
      expect(want.length).toBeGreaterThan(0);
      expect(got).toEqual(want);
      if (c.exclude) expect(got.some((l) => l.runId === c.exclude)).toBe(false);
    });
  }

  it('a lesson sharing a rare entity is found however old; one sharing only hot entities only among the newest', () => {
    const db = store.db;
    const newest = new Set(db.all<{ id: number }>('SELECT id FROM lessons ORDER BY created_ms DESC, id LIMIT ?', [HOT_WALK]).map((l) => l.id));
    const rare = relatedLessons(db, [refOf(db, ns(2)), refOf(db, HOST)], { limit: 100, signatureBonus: BONUS });
    expect(rare.some((l) => !newest.has(l.lessonId))).toBe(true);
    const hotOnly = relatedLessons(db, [refOf(db, HOST), refOf(db, TAG)], { limit: 100, signatureBonus: BONUS });
    expect(hotOnly.length).toBe(100);
    expect(hotOnly.every((l) => newest.has(l.lessonId))).toBe(true);
  });

  it('per-run lookups and the lesson walk go through indexes, not table scans', () => {
    const plan = (sql: string, params: Array<string | number>): string =>
      store.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params).map((r) => r.detail).join('; ');
    expect(plan('SELECT * FROM tool_calls WHERE run_id = ? ORDER BY seq', ['run-1-1'])).toContain('INDEX tool_calls_run');
    expect(plan('SELECT ts_ms, kind, data FROM events WHERE run_id = ? ORDER BY seq', ['run-1-1'])).toContain('INDEX events_run');
    expect(plan('SELECT criterion, outcome, evidence FROM verifications WHERE run_id = ? ORDER BY id', ['run-1-1'])).toContain('INDEX verifications_run');
    const walk = plan('SELECT id FROM lessons WHERE created_ms <= ? AND NOT (created_ms = ? AND id <= ?) ORDER BY created_ms DESC, id LIMIT ?', [1, 1, 1, 8]);
    expect(walk).toContain('INDEX lessons_recent');
    expect(walk).not.toContain('TEMP B-TREE');
  });

  it('lessonsFor without retrospectives gives the same lessons', () => {
    const db = store.db;
    const all = lessonsFor(db, 'TASK-42', { limit: 7 });
    const only = lessonsFor(db, 'TASK-42', { limit: 7, retros: false });
    expect(only.lessons).toEqual(all.lessons);
    expect(only.lessons.length).toBeGreaterThan(0);
    expect(all.retros.length).toBeGreaterThan(0);
    expect(only.retros).toEqual([]);
  });
});
