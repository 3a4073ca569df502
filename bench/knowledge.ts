// Benchmark: knowledge_search and ask latency (median, p99) at 1k, 10k and 100k retrospectives,
// against a bare ranked FTS5 MATCH on the same database in the same run; report generation at
// 10k runs. Goals (issue 6): median within 1.5× of the bare MATCH, p99 ≤ 50 ms at 100k, common
// words and prefixes included.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ask } from '../mcp-server/core/ask.js';
import { ftsExpression, knowledgeSearch, queryTerms } from '../mcp-server/core/knowledge-search.js';
import { buildReport } from '../mcp-server/core/report.js';
import { openStore, type Db } from '../mcp-server/core/store.js';
import { fmtMs, summarize, type BenchReport, type BenchMetric, type BenchGoal } from './stats.js';
import { mulberry32 } from '../test/fixtures/prng.js';

const SIZES = [1_000, 10_000, 100_000] as const;
const GOAL_P99_MS = 50;
const GOAL_RATIO = 1.5;


const COMMON = 'the a to of and in for on with was is after then run step task check service deployment restart error failed passed'.split(' ');
const OPS = (
  'nginx postgres redis kafka api web worker ingress certificate vault token rotation rollout replica pod node disk memory cpu ' +
  'latency timeout connection refused denied approval scale compose container image volume backup restore migration schema ' +
  'prometheus alert dashboard journal unit tunnel ssh key config secret policy namespace context cluster health probe readiness'
).split(' ');
const VERBS = 'restarted scaled rotated patched verified blocked rolled drained cordoned applied reloaded checked'.split(' ');

function sentence(r: () => number, words: number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    const x = r();
    if (x < 0.5) out.push(COMMON[Math.floor(r() * COMMON.length)] ?? 'the');
    else if (x < 0.85) out.push(OPS[Math.floor(r() * OPS.length)] ?? 'api');
    else if (x < 0.95) out.push(VERBS[Math.floor(r() * VERBS.length)] ?? 'checked');
    else out.push(`web${Math.floor(r() * 500)}`);
  }
  if (n % 997 === 0) out.push('progress deadline exceeded');
  return out.join(' ');
}

/** A ~1.6 KB retrospective body. */
export function syntheticRetro(n: number, r: () => number): { title: string; body: string } {
  const title = `TASK-${n} ${sentence(r, 6, 1)}`;
  let body = `## Facts\n- Outcome: ${r() < 0.8 ? 'completed' : 'blocked'}\n- Run: run-${n}`;
  while (body.length < 1560) body += `\n- ${sentence(r, 14, n)}`;
  return { title, body: body.slice(0, 1640) };
}

export function fillSyntheticRetros(db: Db, n: number): number {
  const r = mulberry32(42);
  const t0 = performance.now();
  const base = Date.UTC(2026, 0, 1);
  // Bulk load: no incremental merging while inserting, one optimize at the end (counted).
  db.exec("INSERT INTO kfts(kfts, rank) VALUES('automerge', 0)");
  db.immediate(() => {
    for (let i = 1; i <= n; i++) {
      const { title, body } = syntheticRetro(i, r);
      const id = `retro-${i}`;
      const ts = base + i * 60_000;
      db.run('INSERT INTO retrospectives (id, run_id, task_id, file, outcome, created_ms, facts, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
        id, `run-${i}`, `TASK-${i}`, `retrospectives/${id}.md`, 'completed', ts, '{}', body,
      ]);
      const d = db.run("INSERT INTO kdocs (kind, ref, task_id, run_id, file, origin, ts_ms) VALUES ('retro', ?, ?, ?, ?, ?, ?)", [
        id, `TASK-${i}`, `run-${i}`, `retrospectives/${id}.md`, `retro:${id}`, ts,
      ]);
      db.run("INSERT INTO kfts (rowid, kind, title, body) VALUES (?, 'retro', ?, ?)", [d.lastInsertRowid, title, body]);
    }
  });
  db.exec("INSERT INTO kfts(kfts) VALUES('optimize')");
  db.exec("INSERT INTO kfts(kfts, rank) VALUES('automerge', 4)");
  return performance.now() - t0;
}

/** Questions and searches as people type them: rare words, very common words, prefixes, pairs. */
const SEARCHES = ['progress deadline', 'web137 timeout', 'kafka', 'error', 'the deployment', 'restart failed', 'dep*', 'ng*', 'web1*', 'certificate rotation vault', 'connection refused', 'task'];
const QUESTIONS = ['why did the rollout of api fail', 'which lessons do we have about kafka', 'connection refused on web12', 'the error after restart', 'ng* ingress'];

function time(fn: () => unknown, reps: number): number[] {
  const xs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    xs.push(performance.now() - t);
  }
  return xs;
}

function bareMatch(db: Db, q: string): unknown {
  // What a direct query would be: the same quoted terms, ranked by bm25, top 10, no snippet.
  return db.all(`SELECT rowid, rank FROM kfts WHERE kfts MATCH ? ORDER BY rank LIMIT 10`, [ftsExpression(queryTerms(q), 'AND')]);
}

function fillRuns(db: Db, n: number): void {
  const r = mulberry32(7);
  const base = Date.UTC(2026, 0, 1);
  db.immediate(() => {
    for (let i = 1; i <= n; i++) {
      const ts = base + i * 60_000;
      const outcome = r() < 0.8 ? 'completed' : 'blocked';
      const agent = ['devops-specialist', 'k8s-specialist', 'secrets-specialist'][i % 3] ?? 'devops-specialist';
      db.run(
        "INSERT INTO tasks (id, folder, file, title, priority, prio_rank, created_ms, updated_ms, depends_on) VALUES (?, ?, ?, ?, 'medium', 2, ?, ?, ?)",
        [`TASK-${i}`, outcome === 'completed' ? 'completed' : 'backlog', `tasks/x/${i}.md`, `task ${i}`, ts, ts, i % 9 === 0 ? `["TASK-${i - 1}"]` : '[]'],
      );
      db.run('INSERT INTO runs (id, task_id, agent, attempt, token, holder, outcome, started_ms, ended_ms) VALUES (?, ?, ?, 1, 1, ?, ?, ?, ?)', [
        `run-${i}`, `TASK-${i}`, agent, 'bench', outcome, ts, ts + 30_000,
      ]);
      for (let c = 0; c < 3; c++) {
        const fail = c === 1 && outcome === 'blocked';
        db.run(
          `INSERT INTO tool_calls (ts_ms, agent, task_id, run_id, tool, verb, canonical, decision, rule, exit_code, duration_ms, stderr)
           VALUES (?, ?, ?, ?, 'kubectl', 'get', ?, 'allow', 'allow.read', ?, 20, ?)`,
          [ts + c * 1000, agent, `TASK-${i}`, `run-${i}`, `kubectl -n ns${i % 40} get pods`, fail ? 1 : 0, fail ? `Error from server (NotFound): pods "api-${i}" not found` : null],
        );
      }
      db.run("INSERT INTO verifications (run_id, task_id, criterion, outcome, evidence, ts_ms) VALUES (?, ?, 'ok', ?, '[]', ?)", [
        `run-${i}`, `TASK-${i}`, outcome === 'completed' ? 'verified' : 'failed', ts + 29_000,
      ]);
    }
  });
}

export async function benchKnowledge(sizes: readonly number[] = SIZES): Promise<BenchReport> {
  const metrics: BenchMetric[] = [];
  const goals: BenchGoal[] = [];
  const notes: string[] = [];
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-bench-knowledge-'));
    const store = openStore(join(dir, 'opscrew.db'));
    try {
      const db = store.db;
      const fillMs = fillSyntheticRetros(db, n);
      metrics.push({ name: `generate ${n} retros`, value: fillMs, unit: 'ms', detail: 'one transaction, ~1.6 KB each, automerge off + optimize' });
      const reps = n >= 100_000 ? 8 : 20;
      // Warm the page cache and statement caches once.
      for (const q of SEARCHES) {
        knowledgeSearch(db, q);
        bareMatch(db, q);
      }
      const bare = SEARCHES.flatMap((q) => time(() => bareMatch(db, q), reps));
      const search = SEARCHES.flatMap((q) => time(() => knowledgeSearch(db, q, { limit: 10 }), reps));
      const asks = QUESTIONS.flatMap((q) => time(() => ask(db, q, { now: Date.UTC(2026, 6, 1) }), reps));
      const b = summarize(bare);
      const s = summarize(search);
      const a = summarize(asks);
      metrics.push({ name: `bare MATCH median @${n}`, value: b.median, unit: 'ms', detail: `p99 ${fmtMs(b.p99)}` });
      metrics.push({ name: `knowledge_search median @${n}`, value: s.median, unit: 'ms', detail: `p99 ${fmtMs(s.p99)}` });
      metrics.push({ name: `ask median @${n}`, value: a.median, unit: 'ms', detail: `p99 ${fmtMs(a.p99)}` });
      // Per-query medians show where the time goes (common words and prefixes vs rare words).
      const perQuery = SEARCHES.map((q) => {
        const bs = summarize(time(() => bareMatch(db, q), 3)).median;
        const ks = summarize(time(() => knowledgeSearch(db, q), 3)).median;
        return `${q}: bare ${fmtMs(bs)} / search ${fmtMs(ks)}`;
      });
      notes.push(`@${n}: ${perQuery.join('; ')}`);
      if (n === sizes[sizes.length - 1]) {
        const ratio = s.median / b.median;
        goals.push({ name: `knowledge_search median vs bare MATCH @${n}`, target: `≤ ${GOAL_RATIO}×`, actual: `${ratio.toFixed(2)}× (${fmtMs(s.median)} vs ${fmtMs(b.median)})`, met: ratio <= GOAL_RATIO });
        goals.push({ name: `knowledge_search p99 @${n}`, target: `≤ ${GOAL_P99_MS} ms`, actual: fmtMs(s.p99), met: s.p99 <= GOAL_P99_MS });
        goals.push({ name: `ask p99 @${n}`, target: `≤ ${GOAL_P99_MS} ms`, actual: fmtMs(a.p99), met: a.p99 <= GOAL_P99_MS });
        goals.push({ name: `generate ${n} retros`, target: '< 30 s', actual: fmtMs(fillMs), met: fillMs < 30_000 });
      }
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // Report generation at 10k runs.
  const dir = mkdtempSync(join(tmpdir(), 'opscrew-bench-report-'));
  const store = openStore(join(dir, 'opscrew.db'));
  try {
    fillRuns(store.db, 10_000);
    const xs = time(() => buildReport(store.db, { sinceMs: 0, now: Date.UTC(2027, 0, 1) }), 5);
    const r = summarize(xs);
    metrics.push({ name: 'report @10k runs', value: r.median, unit: 'ms', detail: `max ${fmtMs(r.max)}` });
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  notes.push('bare MATCH = SELECT rowid, rank FROM kfts WHERE kfts MATCH <same quoted terms> ORDER BY rank LIMIT 10 (no snippet, no citations)');
  return { bench: 'knowledge', metrics, goals, notes };
}
