// ask: a table of questions over the fixture history, with the ids each answer must cite.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { ask, classify } from '../core/ask.js';
import { knowledgeSearch, queryTerms, ftsExpression } from '../core/knowledge-search.js';
import { buildHistory, type History } from './knowledge-fixture.js';

let h: History;
beforeAll(async () => {
  h = await buildHistory();
});
afterAll(() => h.cleanup());

type R = 'r1' | 'r2' | 'r3' | 'r4';
interface Case {
  q: string;
  intent: string;
  tasks: string[];
  runs: R[];
  /** Runs whose retrospectives must be cited. */
  retros?: R[];
  says?: RegExp;
}

const CASES: Case[] = [
  { q: 'What is the status?', intent: 'status', tasks: ['TASK-001', 'TASK-002', 'TASK-005'], runs: ['r1', 'r2', 'r3', 'r4'], says: /Tasks: .*completed/ },
  { q: 'what is blocked and why?', intent: 'blocked', tasks: ['TASK-005'], runs: ['r4'], retros: ['r4'], says: /awaiting approval of docker compose -p shop restart web/ },
  { q: 'why is TASK-005 blocked?', intent: 'blocked', tasks: ['TASK-005'], runs: ['r4'], retros: ['r4'], says: /needs-approval: approval\.mutate/ },
  { q: 'what happened with TASK-001?', intent: 'task', tasks: ['TASK-001'], runs: ['r1', 'r2'], retros: ['r1', 'r2'], says: /criteria 1 of 1/ },
  { q: 'what touched host web1?', intent: 'touched', tasks: ['TASK-001'], runs: ['r1', 'r2'], retros: ['r1', 'r2'] },
  { q: 'what touched namespace ffl', intent: 'touched', tasks: ['TASK-002'], runs: ['r3'], retros: ['r3'] },
  { q: 'which lessons do we have about nginx?', intent: 'lessons', tasks: ['TASK-001'], runs: ['r1', 'r2'], retros: ['r1', 'r2'] },
  { q: 'what failed this week and how often?', intent: 'failures', tasks: ['TASK-001', 'TASK-002', 'TASK-005'], runs: ['r1', 'r3', 'r4'], says: /4 failed calls/ },
  { q: 'which commands fail most?', intent: 'failing-commands', tasks: ['TASK-001', 'TASK-002', 'TASK-005'], runs: ['r1', 'r3', 'r4'], says: /ssh systemctl restart: 1 failures/ },
  // TASK-005's retro cites TASK-001's lesson under "related past runs", so it matches too.
  { q: 'connection refused', intent: 'search', tasks: ['TASK-001', 'TASK-005'], runs: ['r1', 'r2', 'r4'], retros: ['r1', 'r2', 'r4'] },
];

describe('ask', () => {
  for (const c of CASES) {
    it(`${c.q} → ${c.intent}`, () => {
      const a = ask(h.store.db, c.q, { now: h.clock.t });
      expect(a.intent).toBe(c.intent);
      const tasks = a.citations.filter((x) => x.kind === 'task').map((x) => x.id).sort();
      const runs = a.citations.filter((x) => x.kind === 'run').map((x) => x.id).sort();
      expect(tasks).toEqual([...c.tasks].sort());
      expect(runs).toEqual(c.runs.map((r) => h.runs[r]).sort());
      for (const r of c.retros ?? []) {
        const retro = h.store.db.get<{ id: string; file: string }>('SELECT id, file FROM retrospectives WHERE run_id = ?', [h.runs[r]]);
        expect(a.citations).toContainEqual({ kind: 'retro', id: retro?.id, file: retro?.file });
      }
      if (c.says) expect(a.answer).toMatch(c.says);
      expect(a.answer).not.toMatch(/I don't know/);
    });
  }

  it('says plainly when nothing matches', () => {
    for (const q of ['what about the zebra migration?', 'what touched host nowhere-host?', 'what happened with TASK-999?', 'lessons about kafka']) {
      const a = ask(h.store.db, q, { now: h.clock.t });
      expect(a.answer).toMatch(/^I don't know — nothing in the records matches/);
      expect(a.citations).toEqual([]);
    }
  });

  it('classifies without the records', () => {
    expect(classify('how are we doing')).toBe('status');
    expect(classify('what is stuck')).toBe('blocked');
    expect(classify('tell me about TASK-12')).toBe('task');
  });
});

describe('knowledge_search', () => {
  it('drops stop words unless they are all there is', () => {
    expect(queryTerms('what is the status of nginx').map((t) => t.word)).toEqual(['status', 'nginx']);
    expect(queryTerms('what is it').map((t) => t.word)).toEqual(['what', 'is', 'it']);
  });

  it('quotes user words: FTS syntax cannot be injected', () => {
    expect(ftsExpression(queryTerms('nginx OR "x" NEAR(a b) title:foo ^bar -baz col*'), 'AND')).toBe(
      '"nginx" AND "x" AND "near" AND "b" AND "title" AND "foo" AND "bar" AND "baz" AND "col"*',
    );
    for (const q of ['"', 'AND', 'NOT nginx', '(((', 'title:', '*', 'nginx" OR "', "'; DROP TABLE kfts; --"]) {
      expect(() => knowledgeSearch(h.store.db, q)).not.toThrow();
    }
    expect(knowledgeSearch(h.store.db, '*** ((( ').hits).toEqual([]);
  });

  it('ranks and cites: task ids, run ids, retro files; snippets only for returned rows', () => {
    const r = knowledgeSearch(h.store.db, 'nginx restart', { limit: 3 });
    expect(r.hits.length).toBe(3);
    expect(r.hits.every((x) => x.taskId === 'TASK-001')).toBe(true);
    expect(r.hits.some((x) => x.snippet.includes('['))).toBe(true);
    const retro = knowledgeSearch(h.store.db, 'approval shop', { kinds: ['retro'] });
    expect(retro.hits[0]).toMatchObject({ kind: 'retro', taskId: 'TASK-005', runId: h.runs.r4 });
    expect(retro.hits[0]?.file).toMatch(/^retrospectives\/retro-.*-TASK-005\.md$/);
    // Each hit carries its own title and snippet (FTS5 ignores `rowid = ?` bound as a REAL: regression).
    const all = knowledgeSearch(h.store.db, 'connection refused', { limit: 10 });
    for (const x of all.hits) {
      const doc = h.store.db.get<{ title: string }>('SELECT title FROM kfts WHERE rowid = (SELECT id FROM kdocs WHERE kind = ? AND ref = ?)', [x.kind, x.ref]);
      expect(x.title).toBe(doc?.title);
    }
    expect(new Set(all.hits.map((x) => x.title)).size).toBeGreaterThan(2);
    // Prefix search: short prefixes use the prefix index, long ones expand through the vocabulary.
    expect(knowledgeSearch(h.store.db, 'webh*').hits.map((x) => x.taskId)).toContain('TASK-003');
    expect(knowledgeSearch(h.store.db, 'we*').hits.length).toBeGreaterThan(0);
    expect(knowledgeSearch(h.store.db, 'zzzzq*').hits).toEqual([]);
    // A kind filter is part of MATCH, not a post-filter.
    const ls = knowledgeSearch(h.store.db, 'nginx', { kinds: ['lesson'], limit: 10 });
    expect(ls.hits.length).toBeGreaterThan(0);
    expect(ls.hits.every((x) => x.kind === 'lesson')).toBe(true);
    expect(ls.match).toMatch(/^kind : \("lesson"\) AND \{title body\} : \("nginx"\)$/);
  });
});

describe('knowledge_search ranking plan', () => {
  it('ranks by bm25 when few match, newest first when more than RANK_WINDOW match', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { openStore } = await import('../core/store.js');
    const { putDoc } = await import('../core/knowledge-extract.js');
    const { RANK_WINDOW, makeSnippet } = await import('../core/knowledge-search.js');
    const dir = mkdtempSync(join(tmpdir(), 'opscrew-rank-'));
    const store = openStore(join(dir, 'db.sqlite'));
    try {
      const db = store.db;
      const doc = (i: number, body: string): void =>
        putDoc(db, { kind: 'retro', ref: `r${i}`, taskId: `TASK-${i}`, runId: `run-${i}`, file: `retrospectives/r${i}.md`, origin: `retro:r${i}`, tsMs: i, title: `doc ${i}`, body });
      db.immediate(() => {
        doc(1, 'kafka kafka kafka kafka broker lag');
        doc(2, 'kafka once among many other words about the broker and its lag and more filler text here');
        for (let i = 3; i < RANK_WINDOW + 20; i++) doc(i, `common filler text number ${i}`);
      });
      const few = knowledgeSearch(db, 'kafka');
      expect(few.ranking).toBe('bm25');
      expect(few.hits.map((x) => x.ref)).toEqual(['r1', 'r2']);
      const many = knowledgeSearch(db, 'common filler', { limit: 3 });
      expect(many.ranking).toBe('recent');
      expect(many.hits.map((x) => x.ref)).toEqual([`r${RANK_WINDOW + 19}`, `r${RANK_WINDOW + 18}`, `r${RANK_WINDOW + 17}`]);
      expect(many.hits[0]?.snippet).toBe(`[common] [filler] text number ${RANK_WINDOW + 19}`);
      expect(makeSnippet('the restart failed twice', [{ word: 'failed', prefix: false }])).toBe('the restart [failed] twice');
      expect(makeSnippet('one two', [{ word: 'zzz', prefix: false }])).toBe('one two');
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
