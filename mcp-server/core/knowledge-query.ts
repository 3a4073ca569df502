// knowledge_query: read-only SQL for people and agents, on a connection opened read-only.
// Defence in depth: (1) the text must be ONE statement starting with SELECT or WITH, (2) SQLite
// must compile it as read-only (so `WITH x AS (...) DELETE ...` is refused), (3) the connection
// itself cannot write. Limits: rows are pulled one at a time with iterate(); the loop stops at
// `maxRows` and at the deadline. better-sqlite3 exposes no progress handler or interrupt, so the
// time limit is checked between rows: a statement that computes for a long time before producing
// its first row (e.g. an aggregate over a huge recursive CTE) is only stopped when it yields one.
import { fail, ok, type Result } from './errors.js';
import { openStore, type Store } from './store.js';

export interface QueryOptions {
  maxRows?: number;
  timeoutMs?: number;
  now?: () => number;
}

export interface QueryOutput {
  columns: string[];
  rows: Array<Record<string, unknown>>;
  /** True when more rows existed than `maxRows`. */
  truncated: boolean;
  /** True when the deadline stopped the query (rows so far are returned). */
  timedOut: boolean;
  elapsedMs: number;
  /** How the time limit is enforced: a deadline checked between rows of iterate(). */
  timeLimit: 'iterate-deadline';
}

export type QueryCode = 'query-refused' | 'query-invalid' | 'query-timeout' | 'store-open';

export const DEFAULT_MAX_ROWS = 200;
export const MAX_ROWS_CAP = 5000;
export const DEFAULT_QUERY_TIMEOUT_MS = 2000;
const MAX_SQL = 20_000;
const MAX_CELL = 4000;

/** Strips comments and string literals so keyword checks see only SQL structure. */
function structure(sql: string): string {
  return sql
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/"(?:[^"]|"")*"/g, '""')
    .replace(/`[^`]*`/g, '""')
    .replace(/\[[^\]]*\]/g, '""')
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?(\*\/|$)/g, ' ');
}

/** Static checks before SQLite sees the text: one statement, SELECT/WITH first, no write keywords. */
export function checkReadOnlySql(sql: string): Result<string, 'query-refused'> {
  if (sql.length > MAX_SQL) return fail('query-refused', `the query is ${sql.length} characters; the limit is ${MAX_SQL}`);
  const s = structure(sql).trim().replace(/;\s*$/, '');
  if (s === '') return fail('query-refused', 'the query is empty');
  if (s.includes(';')) return fail('query-refused', 'only one statement is allowed (found `;` between statements)');
  if (!/^(select|with)\b/i.test(s)) return fail('query-refused', 'only a SELECT (or WITH ... SELECT) statement is allowed');
  const bad = /\b(insert|update|delete|drop|create|alter|attach|detach|pragma|vacuum|reindex|begin|commit|rollback|savepoint)\b/i.exec(s);
  if (bad) return fail('query-refused', `\`${bad[1]?.toUpperCase()}\` is not allowed: knowledge_query is read-only`);
  return ok(sql.trim().replace(/;\s*$/, ''));
}

function cell(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v)) return `<blob ${v.length} bytes>`;
  if (typeof v === 'string' && v.length > MAX_CELL) return `${v.slice(0, MAX_CELL)}… (${v.length - MAX_CELL} more chars)`;
  return v;
}

/** Runs one read-only query on its own read-only connection to `dbPath`. */
export function knowledgeQuery(dbPath: string, sql: string, options: QueryOptions = {}): Result<QueryOutput, QueryCode> {
  const checked = checkReadOnlySql(sql);
  if (!checked.ok) return checked;
  const maxRows = Math.max(1, Math.min(MAX_ROWS_CAP, Math.floor(options.maxRows ?? DEFAULT_MAX_ROWS)));
  const timeoutMs = Math.max(1, Math.floor(options.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS));
  const now = options.now ?? (() => performance.now());
  let store: Store;
  try {
    store = openStore(dbPath, { readonly: true, busyTimeoutMs: Math.min(timeoutMs, 1000) });
  } catch (e) {
    return fail('store-open', e instanceof Error ? e.message : String(e));
  }
  try {
    const started = now();
    let info: { readonly: boolean; returnsRows: boolean };
    try {
      info = store.db.statementInfo(checked.value);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (/more than one statement/i.test(msg)) return fail('query-refused', 'only one statement is allowed');
      return fail('query-invalid', `SQLite cannot compile the query: ${msg}`);
    }
    if (!info.readonly || !info.returnsRows) return fail('query-refused', 'the statement would write (or returns no rows): knowledge_query is read-only');
    const rows: Array<Record<string, unknown>> = [];
    let truncated = false;
    let timedOut = false;
    const deadline = started + timeoutMs;
    try {
      for (const row of store.db.iterate<Record<string, unknown>>(checked.value)) {
        if (now() > deadline) {
          timedOut = true;
          break;
        }
        if (rows.length >= maxRows) {
          truncated = true;
          break;
        }
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(row)) out[k] = cell(v);
        rows.push(out);
      }
    } catch (e) {
      return fail('query-invalid', `the query failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const elapsedMs = Math.round((now() - started) * 10) / 10;
    if (timedOut && rows.length === 0) return fail('query-timeout', `the query ran past its ${timeoutMs} ms limit and was stopped`);
    return ok({ columns: rows[0] ? Object.keys(rows[0]) : [], rows, truncated, timedOut, elapsedMs, timeLimit: 'iterate-deadline' });
  } finally {
    store.close();
  }
}
