// Deterministic extraction of the knowledge graph (DESIGN §8): entities `(kind, name)` and typed
// edges `(src, kind, dst, run_id)` from task files and audit rows. No model, no guessing: the same
// rows always give the same graph. Every origin (a task file, a run) owns its edges and documents,
// so re-indexing an origin replaces exactly its rows.
import type { ToolCallsRow } from './audit.js';
import { parseCommandLine } from '../../tools/parse-command.js';
import type { ToolCall, ToolEnv } from '../../tools/types.js';
import type { Db } from './store.js';
import type { StepItem, Task } from './task-types.js';

export const ENTITY_KINDS = [
  'task',
  'run',
  'agent',
  'tool',
  'host',
  'kube_context',
  'namespace',
  'compose_project',
  'service',
  'url_host',
  'secret_path',
  'file',
  'error_signature',
  'lesson',
  'tag',
] as const;
export type EntityKind = (typeof ENTITY_KINDS)[number];

/** `run_of` links a run to its task; the rest are DESIGN §8's vocabulary. */
export const EDGE_KINDS = [
  'touched',
  'used',
  'verified_by',
  'blocked_by',
  'depends_on',
  'discovered_from',
  'failed_with',
  'fixed_by',
  'run_of',
] as const;
export type EdgeKind = (typeof EDGE_KINDS)[number];

export interface EntityRef {
  kind: EntityKind;
  name: string;
}

export interface ExtractOptions {
  /** The tool part of the config (default kube context, compose projects, ssh hosts) for parsing commands. */
  env?: ToolEnv;
  /** Redactor applied to every text stored (the secret broker's scrub). */
  scrub?: (text: string) => string;
}

const MAX_NAME = 300;
/** Observation text kept per audit row in the search index. */
const OBS_CHARS = 1200;

// ---------- error signatures ----------

const ERROR_LINE = /error|fail|denied|refused|forbidden|unauthori[sz]ed|not found|no such|timed? ?out|cannot|can't|unable|fatal|invalid|panic|exception|unreachable|conflict/i;

/** The first line that looks like an error (else the first non-empty line) of stderr, then stdout. */
export function firstErrorLine(stderr: string | null, stdout: string | null): string {
  for (const text of [stderr ?? '', stdout ?? '']) {
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
    const hit = lines.find((l) => ERROR_LINE.test(l)) ?? lines[0];
    if (hit) return hit;
  }
  return '';
}

/**
 * Masks what differs between two occurrences of the same failure: quoted names, URLs, paths,
 * addresses, ids, hex, numbers. Lower-cased, whitespace collapsed, capped.
 */
export function maskErrorText(line: string): string {
  return line
    .slice(0, 500)
    .toLowerCase()
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '<q>')
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/g, '<url>')
    .replace(/\{\{(?:secret|generate):[^\s{}]+\}\}/g, '<secret>')
    .replace(/(^|[\s=:(])(?:~|\.{1,2})?\/[^\s:,;)]*/g, '$1<path>')
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '<ip>')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<id>')
    .replace(/\b0x[0-9a-f]+\b/g, '<hex>')
    .replace(/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}\b/g, '<hex>')
    .replace(/\b[a-z0-9]+(?:-[a-z0-9]+)*-[a-z0-9]{5,10}-[a-z0-9]{5}\b/g, '<pod>')
    .replace(/\b\d+(?:\.\d+)?\b/g, '<n>')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}

export interface SignatureInput {
  tool: string | null;
  verb: string | null;
  decision: string;
  rule: string;
  exitCode: number | null;
  stdout: string | null;
  stderr: string | null;
}

/** True when the audit row is a failure: refused, waiting for approval, or a non-zero exit. */
export function isFailure(r: SignatureInput): boolean {
  return r.decision !== 'allow' || (r.exitCode !== null && r.exitCode !== 0);
}

/**
 * The normalized form of a failure, the same across runs: `tool verb exit=N: masked first error line`,
 * or `tool verb denied: rule` for a policy refusal. Null for a success.
 */
export function errorSignature(r: SignatureInput): string | null {
  if (!isFailure(r)) return null;
  const who = [r.tool ?? 'unparsed', r.verb ?? ''].filter((s) => s !== '').join(' ');
  if (r.decision === 'deny') return `${who} denied: ${r.rule}`;
  if (r.decision === 'needs-approval') return `${who} needs-approval: ${r.rule}`;
  const line = maskErrorText(firstErrorLine(r.stderr, r.stdout));
  return `${who} exit=${r.exitCode ?? '?'}${line ? `: ${line}` : ''}`;
}

// ---------- what a command touches ----------

/** compose's project when the parser cannot resolve it (no config): `-p NAME` / `--project-name NAME`. */
function composeProjectHeuristic(line: string): string | null {
  const m = /^(?:docker\s+compose|docker-compose)\b.*?(?:\s-p\s+|\s--project-name[=\s]+)([A-Za-z0-9_.-]+)/.exec(line.trim());
  return m?.[1] ?? null;
}

function urlHost(url: string): string | null {
  try {
    return new URL(url).host || null;
  } catch {
    return null;
  }
}

function callEntities(call: ToolCall, out: EntityRef[]): void {
  const s = call.scope;
  if (s.context) out.push({ kind: 'kube_context', name: s.context });
  if (s.namespace && s.namespace !== '*') out.push({ kind: 'namespace', name: s.namespace });
  if (s.project) out.push({ kind: 'compose_project', name: s.project });
  if (s.host) out.push({ kind: 'host', name: s.host });
  if (s.vaultPath) out.push({ kind: 'secret_path', name: s.vaultPath });
  for (const p of s.paths ?? []) out.push({ kind: 'file', name: p });
  if (s.url) {
    const h = urlHost(s.url);
    if (h) out.push({ kind: 'url_host', name: h });
  }
  const inner = call.remote ?? call;
  if (inner.tool === 'systemctl' || inner.tool === 'journalctl') {
    const units = inner.tool === 'journalctl' ? unitsOf(inner.args, true) : unitsOf(inner.args, false);
    for (const u of units) out.push({ kind: 'service', name: u });
  }
  if (call.remote) callEntities({ ...call.remote, remote: undefined } as ToolCall, out);
}

const SYSTEMCTL_VERBS: ReadonlySet<string> = new Set(
  'start stop restart reload try-restart reload-or-restart status enable disable is-active is-enabled is-failed show cat list-units list-unit-files daemon-reload mask unmask kill'.split(' '),
);

function unitsOf(args: readonly string[], journal: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (journal) {
      if ((a === '-u' || a === '--unit') && args[i + 1]) out.push(args[i + 1] ?? '');
      else if (a.startsWith('--unit=')) out.push(a.slice(7));
    } else if (!a.startsWith('-') && !SYSTEMCTL_VERBS.has(a)) out.push(a);
  }
  return out.filter((u) => /^[A-Za-z0-9@_.:-]+$/.test(u));
}

/** Secret refs named by handles in a command line (paths only; a handle never holds a value). */
function secretRefs(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/\{\{secret:(?:vault:)?([^\s{}]+)\}\}/g)) if (m[1]) out.push(m[1]);
  return out;
}

export interface CommandFacts {
  tool: string | null;
  verb: string | null;
  entities: EntityRef[];
}

/** The tool, verb and touched entities of one command line (canonical or as written). */
export function commandFacts(line: string, env?: ToolEnv): CommandFacts {
  const entities: EntityRef[] = [];
  const parsed = parseCommandLine(line, env ? { env } : {});
  let tool: string | null = null;
  let verb: string | null = null;
  if (parsed.ok) {
    tool = parsed.value.tool;
    verb = parsed.value.verb;
    callEntities(parsed.value, entities);
  } else {
    const p = composeProjectHeuristic(line);
    if (p) {
      tool = 'compose';
      entities.push({ kind: 'compose_project', name: p });
    }
  }
  for (const r of secretRefs(line)) entities.push({ kind: 'secret_path', name: r });
  return { tool, verb, entities: dedupe(entities) };
}

function dedupe(xs: readonly EntityRef[]): EntityRef[] {
  const seen = new Set<string>();
  return xs.filter((e) => {
    const k = `${e.kind}\u0000${e.name}`;
    if (seen.has(k) || e.name === '') return false;
    seen.add(k);
    return true;
  });
}

// ---------- writing the graph ----------

export function entityId(db: Db, e: EntityRef): number {
  const name = e.name.slice(0, MAX_NAME);
  // Most entities (the host, tool and agent of a run) exist already: one lookup, no insert attempt.
  const known = db.get<{ id: number }>('SELECT id FROM entities WHERE kind = ? AND name = ?', [e.kind, name]);
  if (known) return known.id;
  const ins = db.run('INSERT OR IGNORE INTO entities (kind, name) VALUES (?, ?)', [e.kind, name]);
  if (ins.changes > 0) return Number(ins.lastInsertRowid);
  const row = db.get<{ id: number }>('SELECT id FROM entities WHERE kind = ? AND name = ?', [e.kind, name]);
  if (!row) throw new Error(`entity ${e.kind}:${name} vanished`);
  return row.id;
}

export function addEdge(db: Db, src: EntityRef, kind: EdgeKind, dst: EntityRef, origin: string, runId: string | null): void {
  db.run('INSERT OR IGNORE INTO edges (src, kind, dst, run_id, origin) VALUES (?, ?, ?, ?, ?)', [
    entityId(db, src),
    kind,
    entityId(db, dst),
    runId,
    origin,
  ]);
}

export interface DocInput {
  kind: 'retro' | 'lesson' | 'task' | 'observation';
  ref: string;
  taskId: string | null;
  runId: string | null;
  file: string | null;
  origin: string;
  tsMs: number;
  title: string;
  body: string;
}

/** Insert or replace one searchable document (kdocs row + kfts row with the same rowid). */
export function putDoc(db: Db, d: DocInput): void {
  const old = db.get<{ id: number }>('SELECT id FROM kdocs WHERE kind = ? AND ref = ?', [d.kind, d.ref]);
  if (old) {
    db.run('DELETE FROM kfts WHERE rowid = ?', [BigInt(old.id)]);
    db.run('DELETE FROM kdocs WHERE id = ?', [old.id]);
  }
  const r = db.run('INSERT INTO kdocs (kind, ref, task_id, run_id, file, origin, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?)', [
    d.kind,
    d.ref,
    d.taskId,
    d.runId,
    d.file,
    d.origin,
    Math.floor(d.tsMs),
  ]);
  db.run('INSERT INTO kfts (rowid, kind, title, body) VALUES (?, ?, ?, ?)', [r.lastInsertRowid, d.kind, d.title, d.body]);
}

/** Remove every edge and document an origin wrote. */
export function clearOrigin(db: Db, origin: string): void {
  db.run('DELETE FROM edges WHERE origin = ?', [origin]);
  const ids = db.all<{ id: number }>('SELECT id FROM kdocs WHERE origin = ?', [origin]);
  for (const { id } of ids) db.run('DELETE FROM kfts WHERE rowid = ?', [BigInt(id)]);
  db.run('DELETE FROM kdocs WHERE origin = ?', [origin]);
}

function commandsOf(items: readonly StepItem[]): string[] {
  return items.flatMap((i) => (i.kind === 'command' ? [i.text] : []));
}

function filesOf(items: readonly StepItem[]): string[] {
  return items.flatMap((i) => (i.kind === 'file' ? [i.path] : []));
}

/** The task's id: front matter, else nothing (a task without an id is not indexed). */
export function taskIdOf(task: Task): string | null {
  return task.fm.id ?? null;
}

/** Plain text of a task for search: title, context, steps, criteria, out of scope. */
export function taskText(task: Task): string {
  const parts = [
    task.context,
    ...commandsOf([...task.preflight, ...task.steps]),
    ...task.criteria.map((c) => c.text),
    ...task.outOfScope,
    task.fm.tags.join(' '),
  ];
  return parts.filter((p) => p.trim() !== '').join('\n');
}

/**
 * Index a task file: its dependencies, where it was discovered from, tags, what its commands would
 * touch, and its text for search. Idempotent: replaces what the task's origin wrote before.
 */
export function indexTask(db: Db, task: Task, options: ExtractOptions & { nowMs?: number } = {}): void {
  const id = taskIdOf(task);
  if (!id) return;
  const scrub = options.scrub ?? ((s: string) => s);
  const origin = `task:${id}`;
  const me: EntityRef = { kind: 'task', name: id };
  db.immediate(() => {
    clearOrigin(db, origin);
    entityId(db, me);
    for (const d of task.fm.depends_on) addEdge(db, me, 'depends_on', { kind: 'task', name: d }, origin, null);
    if (task.fm.discovered_from) addEdge(db, me, 'discovered_from', { kind: 'task', name: task.fm.discovered_from }, origin, null);
    for (const t of task.fm.tags) addEdge(db, me, 'touched', { kind: 'tag', name: t.toLowerCase() }, origin, null);
    if (task.fm.agent) addEdge(db, me, 'used', { kind: 'agent', name: task.fm.agent }, origin, null);
    const items = [...task.preflight, ...task.steps, ...task.rollback, ...task.criteria.flatMap((c) => (c.kind === 'verify' ? c.items : []))];
    for (const line of commandsOf(items)) {
      for (const e of commandFacts(line, options.env).entities) addEdge(db, me, 'touched', e, origin, null);
    }
    for (const f of filesOf(items)) addEdge(db, me, 'touched', { kind: 'file', name: f }, origin, null);
    putDoc(db, {
      kind: 'task',
      ref: id,
      taskId: id,
      runId: null,
      file: null,
      origin,
      tsMs: options.nowMs ?? 0,
      title: scrub(`${id} ${task.title}`),
      body: scrub(taskText(task)),
    });
  });
}

type CallRow = ToolCallsRow;

interface RunRow {
  id: string;
  task_id: string;
  agent: string | null;
  outcome: string | null;
  reason: string | null;
  started_ms: number;
  ended_ms: number | null;
}

export interface IndexRunResult {
  runId: string;
  taskId: string;
  signatures: string[];
  entities: number;
  edges: number;
}

/** Signatures a run failed with, in first-seen order, with the audit rows behind them. */
export function runFailures(db: Db, runId: string): Array<{ signature: string; row: CallRow }> {
  const rows = db.all<CallRow>('SELECT * FROM tool_calls WHERE run_id = ? ORDER BY seq', [runId]);
  const out: Array<{ signature: string; row: CallRow }> = [];
  for (const r of rows) {
    const sig = errorSignature({ tool: r.tool, verb: r.verb, decision: r.decision, rule: r.rule, exitCode: r.exit_code, stdout: r.stdout, stderr: r.stderr });
    if (sig) out.push({ signature: sig, row: r });
  }
  return out;
}

/**
 * Index one run from the store: the run, its agent and tools, what its allowed calls touched,
 * the signatures it failed with, whether its verification passed, what blocked it, which earlier
 * failures of the same task it fixed, and its audit excerpts/notes as observations.
 * Idempotent: re-indexing a run replaces its rows. Returns null for an unknown run.
 */
export function indexRun(db: Db, runId: string, options: ExtractOptions = {}): IndexRunResult | null {
  const scrub = options.scrub ?? ((s: string) => s);
  return db.immediate(() => {
    const run = db.get<RunRow>('SELECT id, task_id, agent, outcome, reason, started_ms, ended_ms FROM runs WHERE id = ?', [runId]);
    if (!run) return null;
    const origin = `run:${runId}`;
    clearOrigin(db, origin);
    const me: EntityRef = { kind: 'run', name: runId };
    const task: EntityRef = { kind: 'task', name: run.task_id };
    const edge = (src: EntityRef, kind: EdgeKind, dst: EntityRef): void => addEdge(db, src, kind, dst, origin, runId);
    edge(me, 'run_of', task);
    if (run.agent) edge(me, 'used', { kind: 'agent', name: run.agent });
    const calls = db.all<CallRow>('SELECT * FROM tool_calls WHERE run_id = ? ORDER BY seq', [runId]);
    const signatures: string[] = [];
    for (const c of calls) {
      const facts = commandFacts(c.canonical, options.env);
      const tool = c.tool ?? facts.tool;
      if (tool) edge(me, 'used', { kind: 'tool', name: tool });
      if (c.agent && c.agent !== run.agent) edge(me, 'used', { kind: 'agent', name: c.agent });
      // A refused call touched nothing; it is a failure with a signature.
      if (c.decision === 'allow') for (const e of facts.entities) edge(me, 'touched', e);
      const sig = errorSignature({ tool, verb: c.verb, decision: c.decision, rule: c.rule, exitCode: c.exit_code, stdout: c.stdout, stderr: c.stderr });
      if (sig) {
        edge(me, 'failed_with', { kind: 'error_signature', name: sig });
        if (!signatures.includes(sig)) signatures.push(sig);
        putDoc(db, {
          kind: 'observation',
          ref: `call:${c.seq}`,
          taskId: run.task_id,
          runId,
          file: null,
          origin,
          tsMs: c.ts_ms,
          title: scrub(`${run.task_id} ${c.canonical}`).slice(0, 400),
          body: scrub(`${sig}\n${c.stderr ?? ''}\n${c.stdout ?? ''}`).slice(0, OBS_CHARS),
        });
      }
    }
    const verif = db.get<{ n: number; ok: number }>(
      "SELECT count(*) AS n, sum(outcome IN ('verified','na')) AS ok FROM verifications WHERE run_id = ?",
      [runId],
    );
    if (run.outcome === 'completed' && verif && verif.n > 0 && verif.ok === verif.n) edge(task, 'verified_by', me);
    if (run.outcome === 'blocked') {
      // What blocked it: the failures of this run, else the run's reason as a signature.
      if (signatures.length > 0) for (const s of signatures) edge(task, 'blocked_by', { kind: 'error_signature', name: s });
      else if (run.reason) edge(task, 'blocked_by', { kind: 'error_signature', name: `blocked: ${maskErrorText(run.reason)}` });
    }
    if (run.outcome === 'completed') {
      // Failures of earlier runs of this task that did not recur: this run fixed them.
      const earlier = db.all<{ name: string }>(
        `SELECT DISTINCT en.name FROM runs r
           JOIN entities rn ON rn.kind = 'run' AND rn.name = r.id
           JOIN edges e ON e.src = rn.id AND e.kind = 'failed_with'
           JOIN entities en ON en.id = e.dst
         WHERE r.task_id = ? AND r.started_ms <= ? AND r.id <> ? ORDER BY en.name`,
        [run.task_id, run.started_ms, runId],
      );
      for (const { name } of earlier) if (!signatures.includes(name)) edge({ kind: 'error_signature', name }, 'fixed_by', me);
    }
    // Within the run: a failed tool+verb that later succeeded was fixed by this run too.
    for (const s of fixedWithinRun(calls)) edge({ kind: 'error_signature', name: s }, 'fixed_by', me);
    const notes = db.all<{ seq: number; ts_ms: number; data: string }>("SELECT seq, ts_ms, data FROM events WHERE run_id = ? AND kind = 'note' ORDER BY seq", [runId]);
    for (const n of notes) {
      const note = parseNote(n.data);
      if (!note) continue;
      putDoc(db, { kind: 'observation', ref: `note:${n.seq}`, taskId: run.task_id, runId, file: null, origin, tsMs: n.ts_ms, title: `${run.task_id} note`, body: scrub(note).slice(0, OBS_CHARS) });
    }
    const counts = db.get<{ n: number }>('SELECT count(*) AS n FROM edges WHERE origin = ?', [origin]);
    const ents = db.get<{ n: number }>(
      'SELECT count(*) AS n FROM (SELECT src AS id FROM edges WHERE origin = ? UNION SELECT dst FROM edges WHERE origin = ?)',
      [origin, origin],
    );
    return { runId, taskId: run.task_id, signatures, entities: ents?.n ?? 0, edges: counts?.n ?? 0 };
  });
}

function parseNote(data: string): string | null {
  try {
    const v = JSON.parse(data) as { note?: unknown };
    return typeof v.note === 'string' ? v.note : null;
  } catch {
    return null;
  }
}

/** Signatures of failed calls followed, later in the same run, by a successful call of the same tool and verb. */
export function fixedWithinRun(calls: ReadonlyArray<Pick<CallRow, 'tool' | 'verb' | 'decision' | 'rule' | 'exit_code' | 'stdout' | 'stderr'>>): string[] {
  const out: string[] = [];
  calls.forEach((c, i) => {
    const sig = errorSignature({ tool: c.tool, verb: c.verb, decision: c.decision, rule: c.rule, exitCode: c.exit_code, stdout: c.stdout, stderr: c.stderr });
    if (!sig || out.includes(sig) || c.tool === null) return;
    const later = calls.slice(i + 1).some((d) => d.tool === c.tool && d.verb === c.verb && d.decision === 'allow' && d.exit_code === 0);
    if (later) out.push(sig);
  });
  return out;
}
