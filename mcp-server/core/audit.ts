// The audit log: one append-only row per tool call, allowed or denied (DESIGN §5). The table's
// triggers refuse UPDATE and DELETE. Text is scrubbed of known secret values BEFORE it is cut to
// the excerpt length, so a cut can never leave half a secret behind unrecognised.
import type { Db } from './store.js';
import type { Verdict } from './policy.js';

export interface AuditInput {
  tsMs: number;
  agent: string;
  taskId?: string | null;
  runId?: string | null;
  tool?: string | null;
  verb?: string | null;
  /** Handles, never values. */
  canonical: string;
  class?: string | null;
  decision: Verdict;
  rule: string;
  approvalId?: string | null;
  exitCode?: number | null;
  durationMs?: number | null;
  stdout?: string | null;
  stderr?: string | null;
}

/** A raw `tool_calls` row as SQLite returns it (`SELECT * FROM tool_calls`). */
export interface ToolCallsRow {
  seq: number;
  ts_ms: number;
  agent: string;
  task_id: string | null;
  run_id: string | null;
  tool: string | null;
  verb: string | null;
  canonical: string;
  class: string | null;
  decision: string;
  rule: string;
  approval_id: string | null;
  exit_code: number | null;
  duration_ms: number | null;
  stdout: string | null;
  stderr: string | null;
}

export interface AuditRow {
  seq: number;
  tsMs: number;
  agent: string;
  taskId: string | null;
  runId: string | null;
  tool: string | null;
  verb: string | null;
  canonical: string;
  class: string | null;
  decision: Verdict;
  rule: string;
  approvalId: string | null;
  exitCode: number | null;
  durationMs: number | null;
  stdout: string | null;
  stderr: string | null;
}

export interface RecordOptions {
  /** The secret broker's scrub (or any redactor); applied to every text column. */
  scrub?: (text: string) => string;
  /** Characters kept of stdout/stderr (config `audit_excerpt`). */
  excerptChars?: number;
}

export const DEFAULT_AUDIT_EXCERPT = 2000;
/** The canonical command is cut too: a runaway argument must not bloat the log. */
const MAX_CANONICAL = 8000;

/**
 * At most `max` characters: the head and the tail (errors tend to be at the end) around a
 * marker saying how much was cut.
 */
export function excerpt(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return '';
  const marker = `\n…[${text.length - max} chars cut]…\n`;
  if (max <= marker.length + 8) return text.slice(0, max);
  const room = max - marker.length;
  const head = Math.ceil(room * 0.6);
  return text.slice(0, head) + marker + text.slice(text.length - (room - head));
}

/** Append one audit row; returns its sequence number. */
export function recordCall(db: Db, row: AuditInput, options: RecordOptions = {}): number {
  const scrub = options.scrub ?? ((s: string) => s);
  const max = options.excerptChars ?? DEFAULT_AUDIT_EXCERPT;
  const text = (s: string | null | undefined, cap: number): string | null => (s == null ? null : excerpt(scrub(s), cap));
  const info = db.run(
    `INSERT INTO tool_calls (ts_ms, agent, task_id, run_id, tool, verb, canonical, class, decision, rule, approval_id, exit_code, duration_ms, stdout, stderr)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      Math.floor(row.tsMs),
      scrub(row.agent),
      row.taskId ?? null,
      row.runId ?? null,
      row.tool ?? null,
      row.verb == null ? null : scrub(row.verb),
      excerpt(scrub(row.canonical), MAX_CANONICAL),
      row.class ?? null,
      row.decision,
      row.rule,
      row.approvalId ?? null,
      row.exitCode ?? null,
      row.durationMs == null ? null : Math.round(row.durationMs),
      text(row.stdout, max),
      text(row.stderr, max),
    ],
  );
  return Number(info.lastInsertRowid);
}

export interface AuditFilter {
  taskId?: string;
  runId?: string;
  agent?: string;
  sinceMs?: number;
  limit?: number;
}


/** Audit rows in call order (oldest first); with `limit`, the most recent `limit` of them. */
export function listAudit(db: Db, filter: AuditFilter = {}): AuditRow[] {
  const where: string[] = [];
  const params: Array<string | number> = [];
  if (filter.taskId !== undefined) {
    where.push('task_id = ?');
    params.push(filter.taskId);
  }
  if (filter.runId !== undefined) {
    where.push('run_id = ?');
    params.push(filter.runId);
  }
  if (filter.agent !== undefined) {
    where.push('agent = ?');
    params.push(filter.agent);
  }
  if (filter.sinceMs !== undefined) {
    where.push('ts_ms >= ?');
    params.push(Math.floor(filter.sinceMs));
  }
  const limit = Math.max(1, Math.min(100_000, Math.floor(filter.limit ?? 1000)));
  const sql = `SELECT * FROM (SELECT * FROM tool_calls ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT ${limit}) ORDER BY seq ASC`;
  return db.all<ToolCallsRow>(sql, params).map((r) => ({
    seq: r.seq,
    tsMs: r.ts_ms,
    agent: r.agent,
    taskId: r.task_id,
    runId: r.run_id,
    tool: r.tool,
    verb: r.verb,
    canonical: r.canonical,
    class: r.class,
    decision: r.decision as Verdict,
    rule: r.rule,
    approvalId: r.approval_id,
    exitCode: r.exit_code,
    durationMs: r.duration_ms,
    stdout: r.stdout,
    stderr: r.stderr,
  }));
}
