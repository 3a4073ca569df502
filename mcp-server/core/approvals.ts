// Approvals: bound to the exact canonical command, single-use, expiring, recorded.
// Sources: the task file's `approve:` list (the person who filed the task) and a person running
// `opscrew approve <id>` while the run waits. An agent can never approve its own request.
// Every state change runs in BEGIN IMMEDIATE so two workers cannot both use one approval.
import { randomBytes } from 'node:crypto';
import { parseCommandLine } from '../../tools/parse-command.js';
import type { ToolEnv } from '../../tools/types.js';
import { toToolEnv, type Config } from './config.js';
import { fail, ok, type Issue, type Result } from './errors.js';
import type { ApprovalSource, ApprovalState, ApprovalView } from './policy.js';
import type { Db } from './store.js';
import type { Task } from './task-types.js';

export interface ApprovalRecord extends ApprovalView {
  taskId: string | null;
  runId: string | null;
  requestedBy: string | null;
  requestedMs: number;
  decidedMs: number | null;
  decidedBy: string | null;
  usedMs: number | null;
}

export type ApprovalErrorCode =
  | 'approval-not-found'
  | 'approval-used'
  | 'approval-expired'
  | 'approval-denied'
  | 'approval-not-approved'
  | 'approval-not-pending'
  | 'approval-mismatch'
  | 'self-approval'
  | 'approval-by-missing';

/** Task-file approvals of a task with no `timeout:` and no default given live this long. */
export const DEFAULT_TASK_APPROVAL_TTL_MS = 30 * 60_000;
/** Pending requests wait this long for a person unless the caller passes the config's timeouts.approval. */
export const DEFAULT_REQUEST_TTL_MS = 15 * 60_000;

interface Row {
  id: string;
  task_id: string | null;
  run_id: string | null;
  agent: string | null;
  canonical: string;
  source: string;
  state: string;
  requested_ms: number;
  decided_ms: number | null;
  decided_by: string | null;
  expires_ms: number;
  used_ms: number | null;
}

function toRecord(r: Row): ApprovalRecord {
  return {
    id: r.id,
    canonical: r.canonical,
    state: r.state as ApprovalState,
    source: r.source as ApprovalSource,
    expiresMs: r.expires_ms,
    taskId: r.task_id,
    runId: r.run_id,
    requestedBy: r.agent,
    requestedMs: r.requested_ms,
    decidedMs: r.decided_ms,
    decidedBy: r.decided_by,
    usedMs: r.used_ms,
  };
}

function newId(db: Db, random: (n: number) => Buffer): string {
  for (let i = 0; i < 20; i++) {
    const id = `apr-${random(4).toString('hex')}`;
    if (!db.get('SELECT 1 AS x FROM approvals WHERE id = ?', [id])) return id;
  }
  throw new Error('could not find a free approval id after 20 tries');
}

function getRow(db: Db, id: string): Row | undefined {
  return db.get<Row>('SELECT * FROM approvals WHERE id = ?', [id]);
}

export interface SeedOptions {
  /**
   * The workspace config: approved lines are canonicalized with its tool env (default kube
   * context...) exactly as the gate canonicalizes calls, and expire by its timeouts.task.
   */
  config?: Config;
  /** Tool env to canonicalize with when no config is given. */
  env?: ToolEnv;
  now?: number;
  /** Expiry when the task sets no `timeout:` (the config's timeouts.task). */
  defaultTimeoutMs?: number;
  random?: (n: number) => Buffer;
}

/**
 * Turn the task's `approve:` list into approved, single-use rows for this run, bound to each
 * line's canonical command and expiring with the task timeout. Lines that do not parse to a
 * vetted call approve nothing and come back as problems. Earlier runs' unused task-file
 * approvals of the same task expire (a retry gets a fresh set). Idempotent per run.
 */
export function seedTaskApprovals(
  db: Db,
  task: Task,
  runId: string,
  options: SeedOptions = {},
): { seeded: ApprovalRecord[]; problems: Issue[] } {
  const now = options.now ?? Date.now();
  const ttl = task.fm.timeout_ms ?? options.defaultTimeoutMs ?? options.config?.timeouts.task ?? DEFAULT_TASK_APPROVAL_TTL_MS;
  // Vault address/token are irrelevant to canonical form: no process env is read here.
  const env = options.config ? toToolEnv(options.config, {}) : (options.env ?? {});
  const random = options.random ?? randomBytes;
  const taskId = task.fm.id ?? null;
  const problems: Issue[] = [];
  const canonicals: string[] = [];
  task.fm.approve.forEach((line, i) => {
    const parsed = parseCommandLine(line, { vars: {}, env });
    if (!parsed.ok) {
      problems.push({
        file: task.file,
        line: 0,
        field: `approve[${i}]`,
        message: `"${line}" approves nothing: ${parsed.message}`,
        fix: 'write the exact command line the task runs, e.g. `kubectl --context minikube delete namespace mtg-agents`',
      });
      return;
    }
    if (!canonicals.includes(parsed.value.canonical)) canonicals.push(parsed.value.canonical);
  });
  // Most tasks approve nothing and have no earlier run's approvals to expire: no write transaction.
  const stale = (): boolean =>
    taskId !== null &&
    db.get(
      "SELECT 1 AS x FROM approvals WHERE state = 'approved' AND task_id = ? AND source = 'task-file' AND (run_id IS NULL OR run_id <> ?) LIMIT 1",
      [taskId, runId],
    ) !== undefined;
  if (canonicals.length === 0 && !stale()) return { seeded: [], problems };
  const seeded = db.immediate(() => {
    if (taskId !== null) {
      db.run(
        "UPDATE approvals SET state = 'expired' WHERE task_id = ? AND source = 'task-file' AND state = 'approved' AND (run_id IS NULL OR run_id <> ?)",
        [taskId, runId],
      );
    }
    const out: ApprovalRecord[] = [];
    for (const canonical of canonicals) {
      const existing = db.get<Row>(
        "SELECT * FROM approvals WHERE task_id IS ? AND run_id = ? AND source = 'task-file' AND canonical = ?",
        [taskId, runId, canonical],
      );
      if (existing) {
        out.push(toRecord(existing));
        continue;
      }
      const id = newId(db, random);
      db.run(
        `INSERT INTO approvals (id, task_id, run_id, agent, canonical, source, state, requested_ms, decided_ms, decided_by, expires_ms, used_ms)
         VALUES (?, ?, ?, NULL, ?, 'task-file', 'approved', ?, ?, 'task-file', ?, NULL)`,
        [id, taskId, runId, canonical, now, now, now + ttl],
      );
      out.push(toRecord(getRow(db, id)!));
    }
    return out;
  });
  return { seeded, problems };
}

export interface RequestApprovalInput {
  task: string | null;
  run: string | null;
  /** The agent whose call needs the approval; it can never decide it. */
  agent: string;
  canonical: string;
}

/**
 * A pending request for a person to approve or deny; returns its id (`apr-xxxxxxxx`). Asking
 * again for the same command in the same run while a request is pending returns the same id.
 */
export function requestApproval(
  db: Db,
  input: RequestApprovalInput,
  options: { now?: number; ttlMs?: number; random?: (n: number) => Buffer } = {},
): string {
  const now = options.now ?? Date.now();
  const ttl = options.ttlMs ?? DEFAULT_REQUEST_TTL_MS;
  const random = options.random ?? randomBytes;
  return db.immediate(() => {
    const existing = db.get<Row>(
      "SELECT * FROM approvals WHERE state = 'pending' AND task_id IS ? AND run_id IS ? AND agent = ? AND canonical = ? AND expires_ms > ? ORDER BY requested_ms DESC LIMIT 1",
      [input.task, input.run, input.agent, input.canonical, now],
    );
    if (existing) return existing.id;
    const id = newId(db, random);
    db.run(
      `INSERT INTO approvals (id, task_id, run_id, agent, canonical, source, state, requested_ms, decided_ms, decided_by, expires_ms, used_ms)
       VALUES (?, ?, ?, ?, ?, 'person', 'pending', ?, NULL, NULL, ?, NULL)`,
      [id, input.task, input.run, input.agent, input.canonical, now, now + ttl],
    );
    return id;
  });
}

/**
 * A person approves or denies a pending request. Refused with `self-approval` when `by` is the
 * agent that asked; `approval-expired` past its expiry (the row becomes expired).
 */
export function decideApproval(
  db: Db,
  id: string,
  decision: { by: string; approve: boolean; now?: number },
): Result<ApprovalRecord, ApprovalErrorCode> {
  const now = decision.now ?? Date.now();
  const by = decision.by.trim();
  if (!by) return fail('approval-by-missing', 'an approval must name who decided it');
  return db.immediate(() => {
    const row = getRow(db, id);
    if (!row) return fail('approval-not-found', `no approval request ${id}; list them with \`opscrew approve --list\``);
    if (row.agent !== null && row.agent === by) {
      return fail('self-approval', `${by} asked for ${id} and cannot approve its own request; a person must decide it`);
    }
    if (row.state !== 'pending') return fail('approval-not-pending', `${id} is already ${row.state}`);
    if (row.expires_ms <= now) {
      db.run("UPDATE approvals SET state = 'expired' WHERE id = ?", [id]);
      return fail('approval-expired', `${id} expired before it was decided; the run must ask again`);
    }
    db.run('UPDATE approvals SET state = ?, decided_ms = ?, decided_by = ? WHERE id = ?', [decision.approve ? 'approved' : 'denied', now, by, id]);
    return ok(toRecord(getRow(db, id)!));
  });
}

/**
 * Use an approval once: approved → used. A second use fails with `approval-used`; past its
 * expiry with `approval-expired`. With `canonical`, the command must match exactly.
 */
export function consumeApproval(
  db: Db,
  id: string,
  options: { now?: number; canonical?: string } = {},
): Result<ApprovalRecord, ApprovalErrorCode> {
  const now = options.now ?? Date.now();
  return db.immediate(() => {
    const row = getRow(db, id);
    if (!row) return fail('approval-not-found', `no approval ${id}`);
    if (row.state === 'used') return fail('approval-used', `${id} was already used; approvals are single-use, ask again`);
    if (row.state === 'expired') return fail('approval-expired', `${id} has expired; ask again`);
    if (row.state === 'denied') return fail('approval-denied', `${id} was denied by ${row.decided_by ?? 'a person'}`);
    if (row.state !== 'approved') return fail('approval-not-approved', `${id} is ${row.state}, not approved`);
    if (row.expires_ms <= now) {
      db.run("UPDATE approvals SET state = 'expired' WHERE id = ?", [id]);
      return fail('approval-expired', `${id} has expired; ask again`);
    }
    if (options.canonical !== undefined && options.canonical !== row.canonical) {
      return fail('approval-mismatch', `${id} approves \`${row.canonical}\`, not \`${options.canonical}\``);
    }
    db.run("UPDATE approvals SET state = 'used', used_ms = ? WHERE id = ?", [now, id]);
    return ok(toRecord(getRow(db, id)!));
  });
}

export interface ApprovalFilter {
  state?: ApprovalState | ApprovalState[];
  taskId?: string | null;
  runId?: string;
  canonical?: string;
  agent?: string;
  limit?: number;
}

/** Approvals, newest first. `taskId: null` selects approvals bound to no task (`opscrew exec`). */
export function listApprovals(db: Db, filter: ApprovalFilter = {}): ApprovalRecord[] {
  const where: string[] = [];
  const params: Array<string | number | null> = [];
  if (filter.state !== undefined) {
    const states = Array.isArray(filter.state) ? filter.state : [filter.state];
    where.push(`state IN (${states.map(() => '?').join(', ') || "''"})`);
    params.push(...states);
  }
  if (filter.taskId !== undefined) {
    where.push('task_id IS ?');
    params.push(filter.taskId);
  }
  if (filter.runId !== undefined) {
    where.push('run_id = ?');
    params.push(filter.runId);
  }
  if (filter.canonical !== undefined) {
    where.push('canonical = ?');
    params.push(filter.canonical);
  }
  if (filter.agent !== undefined) {
    where.push('agent = ?');
    params.push(filter.agent);
  }
  const limit = Math.max(1, Math.min(10_000, Math.floor(filter.limit ?? 1000)));
  const sql = `SELECT * FROM approvals ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY requested_ms DESC, rowid DESC LIMIT ${limit}`;
  return db.all<Row>(sql, params).map(toRecord);
}

/** Mark pending and approved rows past their expiry as expired; returns how many. */
export function expireApprovals(db: Db, now: number = Date.now()): number {
  return db.immediate(
    () => db.run("UPDATE approvals SET state = 'expired' WHERE state IN ('pending', 'approved') AND expires_ms <= ?", [now]).changes,
  );
}
