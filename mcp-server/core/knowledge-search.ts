// Full-text search over retrospectives, lessons, task text and observations (FTS5, bm25).
// User text never reaches MATCH as syntax: it is cut into words, each word quoted. Every query's
// cost is bounded: bm25 ranks at most RANK_WINDOW matches (more than that: newest first), long
// prefixes expand to a few index terms, and snippets are made only for the rows returned.
import type { Db } from './store.js';

export interface SearchHit {
  kind: 'retro' | 'lesson' | 'task' | 'observation';
  ref: string;
  taskId: string | null;
  runId: string | null;
  /** Retro file (workspace-relative) when the hit is a retrospective. */
  file: string | null;
  title: string;
  snippet: string;
  score: number;
  tsMs: number;
}

export interface SearchOptions {
  limit?: number;
  kinds?: ReadonlyArray<SearchHit['kind']>;
}

export interface SearchResult {
  query: string;
  /** The FTS expression actually run ('' when the query had no searchable words). */
  match: string;
  /** 'and' when every word had to match, 'or' when the search widened to any word. */
  mode: 'and' | 'or' | 'none';
  /** bm25 when few documents matched; 'recent' (newest first) when more than RANK_WINDOW did. */
  ranking: 'bm25' | 'recent';
  hits: SearchHit[];
  /** Prefixes with more index terms than MAX_PREFIX_TERMS: only the first ones were searched. */
  truncatedPrefixes: string[];
}

/** Words so common in ops text that they narrow nothing; dropped unless they are all there is. */
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be but by do does did for from had has have how i if in into is it its me my no not of on or our ' +
    'so that the their then there these they this those to was we were what when where which who why will with you your ' +
    'about any can could should would all also did done get got tell show give list find any some there here'
  ).split(' '),
);

/**
 * Up to this many matches are ranked by bm25. Beyond it, the newest matches come first instead:
 * bm25 has a fixed cost per query phrase (its IDF walks the phrase's whole doclist: ~5 ms for a
 * word in most of 100k documents) plus 15-45 µs a ranked document, and among thousands of
 * matches of common words it hardly discriminates. Measured on SQLite 3.53, 100k × 1.6 KB.
 */
export const RANK_WINDOW = 400;
/** A prefix longer than the prefix index (3) becomes an OR of at most this many index terms. */
export const MAX_PREFIX_TERMS = 12;
const MAX_TERMS = 12;
/** bm25 weights per column (kind, title, body): the kind column never scores. */
const BM25 = 'bm25(kfts, 0.0, 2.0, 1.0)';

export interface QueryTerm {
  word: string;
  prefix: boolean;
}

/**
 * Cut user text into safe terms: letters/digits (and `-_.` inside a word are split off), lower case,
 * a trailing `*` on a word of 2+ characters makes it a prefix. Everything else is dropped, so FTS
 * operators (AND OR NOT NEAR, quotes, parentheses, column filters, ^) can never be injected.
 */
export function queryTerms(text: string): QueryTerm[] {
  const out: QueryTerm[] = [];
  const seen = new Set<string>();
  for (const m of text.slice(0, 1000).matchAll(/([\p{L}\p{N}]+)(\*)?/gu)) {
    const word = (m[1] ?? '').toLowerCase();
    const prefix = m[2] === '*' && word.length >= 2;
    const key = `${word}${prefix ? '*' : ''}`;
    if (word === '' || seen.has(key)) continue;
    seen.add(key);
    out.push({ word, prefix });
    if (out.length >= MAX_TERMS) break;
  }
  const content = out.filter((t) => t.prefix || !STOP_WORDS.has(t.word));
  return content.length > 0 ? content : out;
}

const quote = (w: string): string => `"${w.replace(/"/g, '""')}"`;

/** One quoted FTS5 string per term (a `"` inside is doubled, though queryTerms never keeps one). */
export function ftsExpression(terms: readonly QueryTerm[], join: 'AND' | 'OR'): string {
  return terms.map((t) => `${quote(t.word)}${t.prefix ? '*' : ''}`).join(` ${join} `);
}

/**
 * Index terms starting with `prefix`, at most MAX_PREFIX_TERMS + 1 (the extra one says "more").
 * Prefixes of 2-3 characters never come here: the prefix index serves them directly.
 */
export function prefixTerms(db: Db, prefix: string): string[] {
  return db
    .all<{ term: string }>('SELECT term FROM kfts_vocab WHERE term >= ? AND term < ? ORDER BY term LIMIT ?', [prefix, `${prefix}\uffff`, MAX_PREFIX_TERMS + 1])
    .map((r) => r.term);
}

export interface MatchPlan {
  /** The FTS5 expression, or null when some required term cannot match anything. */
  match: string | null;
  /** Quoted strings in the user part (an expanded prefix counts each of its terms). */
  phrases: number;
  /** Prefixes that had more index terms than MAX_PREFIX_TERMS (searched with the first ones only). */
  truncatedPrefixes: string[];
}

/**
 * The MATCH expression for terms: user words only inside `{title body} : (...)`, kinds as a filter
 * on the kind column. Long prefixes are expanded through the vocabulary so no query merges
 * hundreds of doclists.
 */
export function matchPlan(db: Db, terms: readonly QueryTerm[], join: 'AND' | 'OR', kinds: readonly string[] | null): MatchPlan {
  const parts: string[] = [];
  const truncatedPrefixes: string[] = [];
  let phrases = 0;
  for (const t of terms) {
    if (!t.prefix || t.word.length <= 3) {
      parts.push(`${quote(t.word)}${t.prefix ? '*' : ''}`);
      phrases++;
      continue;
    }
    const words = prefixTerms(db, t.word);
    if (words.length > MAX_PREFIX_TERMS) truncatedPrefixes.push(t.word);
    const use = words.slice(0, MAX_PREFIX_TERMS);
    if (use.length === 0) {
      if (join === 'AND') return { match: null, phrases, truncatedPrefixes };
      continue;
    }
    phrases += use.length;
    parts.push(use.length === 1 ? quote(use[0] ?? '') : `(${use.map(quote).join(' OR ')})`);
  }
  if (parts.length === 0) return { match: null, phrases, truncatedPrefixes };
  const body = `{title body} : (${parts.join(` ${join} `)})`;
  const kind = kinds && kinds.length > 0 ? `kind : (${kinds.map(quote).join(' OR ')}) AND ` : '';
  return { match: `${kind}${body}`, phrases, truncatedPrefixes };
}

interface Ranked {
  rowid: number;
  score: number;
}

/**
 * Rowids of the best matches, best first: bm25 when at most RANK_WINDOW documents match, else the
 * newest matches (FTS5 walks its doclists backwards and stops after `limit`). bm25() is ordered on
 * explicitly, never through `ORDER BY rank`, whose plan ignores rowid constraints.
 */
export function rankedRowids(db: Db, match: string, limit: number): { ranking: 'bm25' | 'recent'; rows: Ranked[] } {
  const lim = Math.max(1, Math.floor(limit));
  const many = db.get<{ rowid: number }>(`SELECT rowid FROM kfts WHERE kfts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ${RANK_WINDOW}`, [match]);
  if (many) return { ranking: 'recent', rows: db.all<Ranked>(`SELECT rowid, 0 AS score FROM kfts WHERE kfts MATCH ? ORDER BY rowid DESC LIMIT ${lim}`, [match]) };
  return { ranking: 'bm25', rows: db.all<Ranked>(`SELECT rowid, ${BM25} AS score FROM kfts WHERE kfts MATCH ? ORDER BY score LIMIT ${lim}`, [match]) };
}

interface DocRow {
  id: number;
  kind: SearchHit['kind'];
  ref: string;
  task_id: string | null;
  run_id: string | null;
  file: string | null;
  ts_ms: number;
}

const SNIPPET_WORDS = 16;

/**
 * A snippet made here from the stored text: ~16 words around the first hit, hits in [brackets].
 * Made only for returned rows. Not FTS5's snippet(): that needs the MATCH re-run per row, which
 * costs ~1 ms a row when a prefix expanded to a dozen terms (measured at 100k documents).
 * Matching is by word start, so stemmed forms (`failed` for `fail`) are found too.
 */
export function makeSnippet(text: string, terms: readonly QueryTerm[]): string {
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  const stems = terms.map((t) => (t.prefix ? t.word : t.word.slice(0, Math.max(3, t.word.length - 2))));
  const isHit = (w: string): boolean => {
    const lw = w.toLowerCase().replace(/^[^\p{L}\p{N}]+/u, '');
    return stems.some((s) => lw.startsWith(s));
  };
  const first = Math.max(0, words.findIndex(isHit));
  const start = Math.max(0, first - 4);
  const shown = words.slice(start, start + SNIPPET_WORDS).map((w) => (isHit(w) ? `[${w}]` : w));
  return `${start > 0 ? '…' : ''}${shown.join(' ')}${start + SNIPPET_WORDS < words.length ? '…' : ''}`;
}

function hydrate(db: Db, terms: readonly QueryTerm[], ranked: readonly Ranked[]): SearchHit[] {
  const out: SearchHit[] = [];
  for (const r of ranked) {
    // By rowid alone (no MATCH): a plain b-tree lookup. BigInt because FTS5 ignores `rowid = ?`
    // bound to a REAL (what a JS number binds as) in a MATCH query (measured on SQLite 3.53.2).
    const f = db.get<{ title: string; body: string }>('SELECT title, body FROM kfts WHERE rowid = ?', [BigInt(r.rowid)]);
    const d = db.get<DocRow>('SELECT id, kind, ref, task_id, run_id, file, ts_ms FROM kdocs WHERE id = ?', [r.rowid]);
    if (!f || !d) continue;
    out.push({ kind: d.kind, ref: d.ref, taskId: d.task_id, runId: d.run_id, file: d.file, title: f.title, snippet: makeSnippet(f.body, terms), score: r.score, tsMs: d.ts_ms });
  }
  return out;
}

/** Ranked search with citations. Every word must match; only when that finds nothing, any word may. */
export function knowledgeSearch(db: Db, query: string, options: SearchOptions = {}): SearchResult {
  const limit = Math.max(1, Math.min(100, Math.floor(options.limit ?? 10)));
  const terms = queryTerms(query);
  if (terms.length === 0) return { query, match: '', mode: 'none', ranking: 'bm25', hits: [], truncatedPrefixes: [] };
  const kinds = options.kinds && options.kinds.length > 0 ? options.kinds : null;
  const run = (join: 'AND' | 'OR'): Omit<SearchResult, 'query' | 'mode'> => {
    const plan = matchPlan(db, terms, join, kinds);
    if (plan.match === null) return { match: '', ranking: 'bm25', hits: [], truncatedPrefixes: plan.truncatedPrefixes };
    const r = rankedRowids(db, plan.match, limit);
    return { match: plan.match, ranking: r.ranking, hits: hydrate(db, terms, r.rows), truncatedPrefixes: plan.truncatedPrefixes };
  };
  const and = run('AND');
  if (and.hits.length > 0 || terms.length === 1) return { query, mode: 'and', ...and };
  return { query, mode: 'or', ...run('OR') };
}
