// The deterministic retrospective (the `retrospective-agent` role under the runbook brain).
// Facts come only from store rows (runs, events, tool_calls, verifications) and the task; the
// renderer writes a Facts section that a Claude-narrated retro would contain unchanged, plus an
// optional narrative. Every text is scrubbed of known secret values before it is stored or written.
import type { ToolCallsRow } from './audit.js';
import { join, relative } from 'node:path';
import { renameSync } from 'node:fs';
import { closeQuiet, createTempBeside, fsyncDirAsync, fsyncFdAsync, unlinkQuiet, writeAllSync, writeFileDurable } from './durable-fs.js';
import { clearOrigin, entityId, errorSignature, fixedWithinRun, indexRun, indexTask, putDoc } from './knowledge-extract.js';
import { lessonsFor } from './knowledge.js';
import type { Db } from './store.js';
import type { Task } from './task-types.js';
import type { ToolEnv } from '../../tools/types.js';

export interface RetroStep {
  seq: number;
  atMs: number;
  agent: string;
  command: string;
  decision: string;
  rule: string;
  exitCode: number | null;
  durationMs: number | null;
  signature: string | null;
}

export interface RetroCriterion {
  criterion: string;
  outcome: string;
  met: boolean;
  evidence: string;
}

export interface RetroLesson {
  rule: 'fixed-after-failure' | 'recovered-across-runs' | 'policy-refusal' | 'needs-approval' | 'criterion-failed';
  signature: string | null;
  text: string;
}

export interface RetroFacts {
  runId: string;
  taskId: string;
  title: string;
  agent: string | null;
  attempt: number;
  outcome: string;
  reason: string | null;
  startedMs: number;
  endedMs: number | null;
  durationMs: number | null;
  timeline: Array<{ atMs: number; event: string }>;
  steps: RetroStep[];
  criteria: { met: number; total: number; items: RetroCriterion[] };
  failures: Array<{ signature: string; count: number; steps: number[] }>;
  outOfScope: string[];
  followUps: string[];
  lessons: RetroLesson[];
  related: Array<{ runId: string; taskId: string; retroId: string | null; lesson: string; applied: 'recurred' | 'avoided' | 'unknown' }>;
}

interface RunRow {
  id: string;
  task_id: string;
  agent: string | null;
  attempt: number;
  outcome: string | null;
  reason: string | null;
  started_ms: number;
  ended_ms: number | null;
}

type CallRow = ToolCallsRow;

const met = (outcome: string): boolean => outcome === 'verified' || outcome === 'na';

function evidenceText(json: string): string {
  try {
    const cmds = JSON.parse(json) as Array<{ command?: string; exitCode?: number | null; passed?: boolean; reason?: string; excerpt?: string }>;
    return cmds
      .map((c) => `\`${c.command ?? ''}\` → ${c.passed ? 'passed' : 'failed'}${c.exitCode != null ? ` (exit ${c.exitCode})` : ''}${c.reason ? `: ${c.reason}` : ''}`)
      .join('; ');
  } catch {
    return json.slice(0, 300);
  }
}

/** Builds the facts of one run from the store. Null for an unknown run. */
export function buildRetroFacts(db: Db, runId: string, task?: Task | null, options: { env?: ToolEnv } = {}): RetroFacts | null {
  const run = db.get<RunRow>('SELECT id, task_id, agent, attempt, outcome, reason, started_ms, ended_ms FROM runs WHERE id = ?', [runId]);
  if (!run) return null;
  const title = db.get<{ title: string }>('SELECT title FROM tasks WHERE id = ?', [run.task_id])?.title ?? task?.title ?? run.task_id;
  const calls = db.all<CallRow>('SELECT * FROM tool_calls WHERE run_id = ? ORDER BY seq', [runId]);
  const steps: RetroStep[] = calls.map((c) => ({
    seq: c.seq,
    atMs: c.ts_ms,
    agent: c.agent,
    command: c.canonical,
    decision: c.decision,
    rule: c.rule,
    exitCode: c.exit_code,
    durationMs: c.duration_ms,
    signature: errorSignature({ tool: c.tool, verb: c.verb, decision: c.decision, rule: c.rule, exitCode: c.exit_code, stdout: c.stdout, stderr: c.stderr }),
  }));
  const events = db.all<{ ts_ms: number; kind: string; data: string }>('SELECT ts_ms, kind, data FROM events WHERE run_id = ? ORDER BY seq', [runId]);
  const timeline = events.map((e) => ({ atMs: e.ts_ms, event: e.kind === 'note' ? `note: ${noteOf(e.data)}` : e.kind + reasonOf(e.data) }));
  // The queue records a claim and its outcome in the run row itself (no event of their own): they
  // open and close the timeline.
  if (!events.some((e) => e.kind === 'claimed')) timeline.unshift({ atMs: run.started_ms, event: 'claimed' });
  if (run.outcome && run.ended_ms !== null && !events.some((e) => e.kind === run.outcome)) {
    timeline.push({ atMs: run.ended_ms, event: run.outcome + (run.reason ? `: ${run.reason.slice(0, 300)}` : '') });
  }
  const verifs = db.all<{ criterion: string; outcome: string; evidence: string }>('SELECT criterion, outcome, evidence FROM verifications WHERE run_id = ? ORDER BY id', [runId]);
  const items = verifs.map((v) => ({ criterion: v.criterion, outcome: v.outcome, met: met(v.outcome), evidence: evidenceText(v.evidence) }));
  const failures: RetroFacts['failures'] = [];
  for (const s of steps) {
    if (!s.signature) continue;
    const f = failures.find((x) => x.signature === s.signature);
    if (f) {
      f.count++;
      f.steps.push(s.seq);
    } else failures.push({ signature: s.signature, count: 1, steps: [s.seq] });
  }
  const followUps = db
    .all<{ name: string }>(
      `SELECT s.name FROM entities d JOIN edges e ON e.dst = d.id AND e.kind = 'discovered_from' JOIN entities s ON s.id = e.src
        WHERE d.kind = 'task' AND d.name = ? ORDER BY s.name`,
      [run.task_id],
    )
    .map((r) => r.name);
  const lessons = deriveLessons(db, run, calls, items);
  const outcome = run.outcome ?? 'running';
  const related: RetroFacts['related'] = [];
  const rel = lessonsFor(db, task ?? run.task_id, { excludeRunId: runId, limit: 5, retros: false, ...(options.env ? { env: options.env } : {}) });
  const mySigs = new Set(failures.map((f) => f.signature));
  for (const l of rel.lessons) {
    const applied: 'recurred' | 'avoided' | 'unknown' = l.signature === null ? 'unknown' : mySigs.has(l.signature) ? 'recurred' : outcome === 'completed' ? 'avoided' : 'unknown';
    related.push({ runId: l.runId, taskId: l.taskId, retroId: l.retroId, lesson: l.text, applied });
  }
  return {
    runId,
    taskId: run.task_id,
    title,
    agent: run.agent,
    attempt: run.attempt,
    outcome,
    reason: run.reason,
    startedMs: run.started_ms,
    endedMs: run.ended_ms,
    durationMs: run.ended_ms !== null ? run.ended_ms - run.started_ms : null,
    timeline,
    steps,
    criteria: { met: items.filter((i) => i.met).length, total: items.length, items },
    failures,
    outOfScope: task?.outOfScope ?? [],
    followUps,
    lessons,
    related,
  };
}

function noteOf(data: string): string {
  try {
    const v = JSON.parse(data) as { note?: unknown };
    return typeof v.note === 'string' ? v.note.slice(0, 300) : '';
  } catch {
    return '';
  }
}

function reasonOf(data: string): string {
  try {
    const v = JSON.parse(data) as { reason?: unknown };
    return typeof v.reason === 'string' ? `: ${v.reason.slice(0, 300)}` : '';
  } catch {
    return '';
  }
}

/** The deterministic lesson rules. */
function deriveLessons(db: Db, run: RunRow, calls: readonly CallRow[], criteria: readonly RetroCriterion[]): RetroLesson[] {
  const out: RetroLesson[] = [];
  const fixed = new Set(fixedWithinRun(calls));
  const seen = new Set<string>();
  calls.forEach((c, i) => {
    const sig = errorSignature({ tool: c.tool, verb: c.verb, decision: c.decision, rule: c.rule, exitCode: c.exit_code, stdout: c.stdout, stderr: c.stderr });
    if (!sig || seen.has(sig)) return;
    seen.add(sig);
    if (c.decision === 'deny') {
      out.push({ rule: 'policy-refusal', signature: sig, text: `\`${c.canonical}\` was refused by policy rule ${c.rule}; plan this step within the specialist's scope or change the task.` });
    } else if (c.decision === 'needs-approval') {
      out.push({ rule: 'needs-approval', signature: sig, text: `\`${c.canonical}\` needs approval under rule ${c.rule}; list it under \`approve:\` in the task or approve it before the run.` });
    } else if (fixed.has(sig)) {
      const fix = calls.slice(i + 1).find((d) => d.tool === c.tool && d.verb === c.verb && d.decision === 'allow' && d.exit_code === 0);
      out.push({ rule: 'fixed-after-failure', signature: sig, text: `\`${c.canonical}\` failed with "${sig}"; \`${fix?.canonical ?? ''}\` then succeeded.` });
    }
  });
  if (run.outcome === 'completed') {
    const prev = db.all<{ id: string; canonical: string; tool: string | null; verb: string | null; decision: string; rule: string; exit_code: number | null; stdout: string | null; stderr: string | null }>(
      `SELECT r.id, c.canonical, c.tool, c.verb, c.decision, c.rule, c.exit_code, c.stdout, c.stderr FROM runs r JOIN tool_calls c ON c.run_id = r.id
        WHERE r.task_id = ? AND r.id <> ? AND r.started_ms <= ? AND r.outcome IN ('blocked', 'failed', 'released', 'lost') ORDER BY c.seq`,
      [run.task_id, run.id, run.started_ms],
    );
    const mine = new Set(calls.map((c) => errorSignature({ tool: c.tool, verb: c.verb, decision: c.decision, rule: c.rule, exitCode: c.exit_code, stdout: c.stdout, stderr: c.stderr })).filter((s) => s !== null));
    for (const p of prev) {
      const sig = errorSignature({ tool: p.tool, verb: p.verb, decision: p.decision, rule: p.rule, exitCode: p.exit_code, stdout: p.stdout, stderr: p.stderr });
      if (!sig || mine.has(sig) || seen.has(sig)) continue;
      seen.add(sig);
      out.push({ rule: 'recovered-across-runs', signature: sig, text: `Run ${p.id} failed with "${sig}"; run ${run.id} completed without it.` });
    }
  }
  for (const c of criteria) {
    if (!c.met && c.outcome === 'failed') out.push({ rule: 'criterion-failed', signature: null, text: `Acceptance criterion "${c.criterion}" failed: ${c.evidence || 'no evidence'}.` });
  }
  return out;
}

function iso(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').replace(/\|/g, '\\|');
}

/** Markdown: title, Facts (identical under any brain), optional Narrative. */
export function renderRetro(facts: RetroFacts, narrative?: string): string {
  const f = facts;
  const L: string[] = [];
  L.push(`# Retrospective: ${f.taskId} — ${f.title}`, '');
  L.push('## Facts', '');
  L.push(`- Outcome: **${f.outcome}**${f.reason ? ` (${f.reason})` : ''}`);
  L.push(`- Run: ${f.runId} (attempt ${f.attempt}, agent ${f.agent ?? '-'})`);
  L.push(`- Started: ${iso(f.startedMs)}; ended: ${iso(f.endedMs)}; duration: ${f.durationMs === null ? '-' : `${f.durationMs} ms`}`);
  L.push(`- Acceptance criteria met: ${f.criteria.met} of ${f.criteria.total}`, '');
  L.push('### Timeline', '');
  for (const t of f.timeline) L.push(`- ${iso(t.atMs)} ${t.event}`);
  if (f.timeline.length === 0) L.push('- (no events)');
  L.push('', '### Steps', '');
  if (f.steps.length === 0) L.push('(no tool calls)');
  else {
    L.push('| # | command | decision | exit | duration | signature |', '|---|---|---|---|---|---|');
    for (const s of f.steps) {
      L.push(`| ${s.seq} | \`${oneLine(s.command)}\` | ${s.decision}${s.decision === 'allow' ? '' : ` (${s.rule})`} | ${s.exitCode ?? '-'} | ${s.durationMs === null ? '-' : `${s.durationMs} ms`} | ${s.signature ? oneLine(s.signature) : ''} |`);
    }
  }
  L.push('', '### Acceptance criteria', '');
  for (const c of f.criteria.items) L.push(`- [${c.met ? 'x' : ' '}] ${c.criterion} — ${c.outcome}${c.evidence ? `: ${c.evidence}` : ''}`);
  if (f.criteria.items.length === 0) L.push('- (not verified in this run)');
  L.push('', '### Failures', '');
  for (const x of f.failures) L.push(`- \`${x.signature}\` × ${x.count} (steps ${x.steps.join(', ')})`);
  // A check whose command ran fine but whose expectation failed is a failure too, not a tool error.
  const failedChecks = f.criteria.items.filter((c) => !c.met && c.outcome.startsWith('failed'));
  for (const c of failedChecks) L.push(`- acceptance criterion failed: ${c.criterion}${c.evidence ? ` — ${c.evidence}` : ''}`);
  if (f.failures.length === 0 && failedChecks.length === 0) L.push('- none');
  L.push('', '### Scoped out', '');
  for (const o of f.outOfScope) L.push(`- ${o}`);
  if (f.outOfScope.length === 0) L.push('- nothing stated');
  L.push('', '### Follow-ups filed', '');
  for (const t of f.followUps) L.push(`- ${t}`);
  if (f.followUps.length === 0) L.push('- none');
  L.push('', '### Lessons', '');
  for (const l of f.lessons) L.push(`- (${l.rule}) ${l.text}`);
  if (f.lessons.length === 0) L.push('- none');
  L.push('', '### Related past runs', '');
  for (const r of f.related) L.push(`- ${r.taskId} ${r.runId}${r.retroId ? ` (${r.retroId})` : ''}: ${r.lesson} — ${r.applied}`);
  if (f.related.length === 0) L.push('- none');
  if (narrative && narrative.trim() !== '') L.push('', '## Narrative', '', narrative.trim());
  return `${L.join('\n')}\n`;
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export interface RecordDeps {
  db: Db;
  /** Workspace root (for relative file names) and its retrospectives folder. */
  root: string;
  retrospectivesDir: string;
  now: () => number;
  /** The secret broker's scrub: applied to everything written. */
  scrub?: (text: string) => string;
  env?: ToolEnv;
}

export interface RecordInput {
  runId: string;
  /** The parsed task, when the caller has it: indexes its file and gives Out of Scope. */
  task?: Task | null;
  /** Optional narrative (Claude brain); the facts are the same either way. */
  narrative?: string;
  /**
   * Write nothing if the run has a retrospective by the time the write lock is held (recovering
   * a run another crew may be writing at the same moment); the result is then null.
   */
  onlyIfMissing?: boolean;
}

export interface RecordOutput {
  retroId: string;
  /** Absolute path of the written retrospective. */
  retroFile: string;
  facts: RetroFacts;
}

/**
 * After a run ends: index the task and the run, write the retrospective file (durably) and its
 * row, lessons and search documents. Idempotent per run: a second call replaces the first's rows
 * (the file name keeps the first call's time).
 *
 * All of it is ONE write transaction (one durable commit instead of three): the indexes the facts
 * are read from, then the file, then the rows. The file is on disk before the rows that name it
 * commit; a crash in between leaves at most a file without rows, as before.
 */
export function recordRunKnowledge(deps: RecordDeps, input: RecordInput): RecordOutput | null {
  return deps.db.immediate(() => recordInTransaction(deps, input, (abs, body) => writeFileDurable(abs, body)));
}

/**
 * recordRunKnowledge for a caller that can wait: the same single transaction, but nothing blocks
 * this thread on the disk. The file is written inside the transaction and the WAL, the file and
 * its directory are fsynced together in the thread pool afterwards; the promise resolves once all
 * three are durable. The trade: a power loss in those few milliseconds can keep the rows and lose
 * the file's text; the rows hold the same text (retrospectives.body), and a process crash loses
 * nothing (the kernel still has the writes).
 */
export async function recordRunKnowledgeAsync(deps: RecordDeps, input: RecordInput): Promise<RecordOutput | null> {
  const [r] = await recordRunsKnowledgeAsync(deps, [input]);
  if (!r) return null;
  if (!r.ok) throw r.error;
  return r.value;
}

export type RecordResult = { ok: true; value: RecordOutput | null } | { ok: false; error: Error };

/**
 * Several runs' retrospectives in ONE write transaction (one WAL sync, one directory sync, one
 * search-index segment instead of one per run): what a crew writes when runs end faster than the
 * previous batch takes. Each run is its own savepoint, so one that fails is reported in its slot
 * and rolled back alone; the others commit.
 */
export async function recordRunsKnowledgeAsync(deps: RecordDeps, inputs: readonly RecordInput[]): Promise<RecordResult[]> {
  if (inputs.length === 0) return [];
  // The files are created before the write lock is taken (creating is the slow part, and other
  // crews wait on the lock); inside, each gets its text and its name.
  const files: Array<{ tmp: string; fd: number; named: boolean }> = [];
  const results: RecordResult[] = [];
  let committed: { value: RecordResult[]; durable: () => Promise<void> } | undefined;
  try {
    for (let i = 0; i < inputs.length; i++) files.push({ ...createTempBeside(join(deps.retrospectivesDir, 'retro.md')), named: false });
    committed = deps.db.immediateDeferred(() =>
      inputs.map((input, i): RecordResult => {
        const file = files[i];
        if (!file) return { ok: false, error: new Error('retrospective batch: no file') };
        deps.db.exec('SAVEPOINT retro');
        try {
          const value = recordInTransaction(deps, input, (abs, body) => {
            writeAllSync(file.fd, body);
            renameSync(file.tmp, abs);
            file.named = true;
          });
          deps.db.exec('RELEASE retro');
          return { ok: true, value };
        } catch (e) {
          try {
            deps.db.exec('ROLLBACK TO retro');
            deps.db.exec('RELEASE retro');
          } catch {
            // SQLite rolled the whole transaction back itself (disk full, I/O error): the batch
            // fails with the error that caused it, not with the missing savepoint.
            throw e;
          }
          return { ok: false, error: e instanceof Error ? e : new Error(String(e)) };
        }
      }),
    );
    results.push(...committed.value);
    const named = files.filter((f) => f.named);
    await Promise.all([committed.durable(), ...named.map((f) => fsyncFdAsync(f.fd)), ...(named.length > 0 ? [fsyncDirAsync(deps.retrospectivesDir)] : [])]);
  } finally {
    for (const f of files) {
      closeQuiet(f.fd);
      if (!f.named) unlinkQuiet(f.tmp);
    }
  }
  return results;
}

/** Index, facts, file, rows: the body of both variants, inside the caller's write transaction. */
function recordInTransaction(deps: RecordDeps, input: RecordInput, writeFile: (abs: string, body: string) => void): RecordOutput | null {
  if (input.onlyIfMissing && deps.db.get('SELECT 1 AS x FROM retrospectives WHERE run_id = ?', [input.runId])) return null;
  const scrub = deps.scrub ?? ((s: string) => s);
  const x = { scrub, ...(deps.env ? { env: deps.env } : {}) };
  if (input.task) indexTask(deps.db, input.task, { ...x, nowMs: deps.now() });
  if (!indexRun(deps.db, input.runId, x)) return null;
  const facts = buildRetroFacts(deps.db, input.runId, input.task ?? null, deps.env ? { env: deps.env } : {});
  if (!facts) return null;
  const { retroId, created } = retroIdentity(deps, input.runId, facts);
  const body = scrub(renderRetro(facts, input.narrative));
  const abs = join(deps.retrospectivesDir, `${retroId}.md`);
  writeFile(abs, body);
  writeRetroRows(deps.db, { retroId, runId: input.runId, file: relative(deps.root, abs), created, body, facts, scrub });
  return { retroId, retroFile: abs, facts };
}

/** The run's retrospective id (kept from an earlier call) and creation time. */
function retroIdentity(deps: RecordDeps, runId: string, facts: RetroFacts): { retroId: string; created: number } {
  const prior = deps.db.get<{ id: string; created_ms: number }>('SELECT id, created_ms FROM retrospectives WHERE run_id = ?', [runId]);
  const created = prior?.created_ms ?? facts.endedMs ?? deps.now();
  if (prior) return { retroId: prior.id, created };
  // Two runs of one task can end within the same second (a fast retry): never let the second
  // overwrite the first's retrospective.
  const baseId = `retro-${stamp(created)}-${facts.taskId}`.replace(/[^A-Za-z0-9._-]/g, '_');
  let retroId = baseId;
  for (let n = 2; deps.db.get('SELECT 1 AS x FROM retrospectives WHERE id = ?', [retroId]); n++) retroId = `${baseId}-${n}`;
  return { retroId, created };
}

interface RetroRows {
  retroId: string;
  runId: string;
  /** Workspace-relative file name. */
  file: string;
  created: number;
  body: string;
  facts: RetroFacts;
  scrub: (text: string) => string;
}

/** The retrospective row, its lessons, and their search documents and graph edges (replacing earlier ones). */
function writeRetroRows(db: Db, r: RetroRows): void {
  const { retroId, runId, file, created, body, facts, scrub } = r;
  const origin = `retro:${retroId}`;
  clearOrigin(db, origin);
  db.run('DELETE FROM lessons WHERE run_id = ?', [runId]);
  db.run(
    `INSERT INTO retrospectives (id, run_id, task_id, file, outcome, created_ms, facts, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(id) DO UPDATE SET outcome = excluded.outcome, facts = excluded.facts, body = excluded.body, file = excluded.file`,
    [retroId, runId, facts.taskId, file, facts.outcome, created, scrub(JSON.stringify(facts)), body],
  );
  putDoc(db, { kind: 'retro', ref: retroId, taskId: facts.taskId, runId, file, origin, tsMs: created, title: scrub(`${facts.taskId} ${facts.title} ${facts.outcome}`), body });
  const runEnt = facts.lessons.length > 0 ? db.get<{ id: number }>("SELECT id FROM entities WHERE kind = 'run' AND name = ?", [runId]) : undefined;
  for (const l of facts.lessons) {
    const text = scrub(l.text);
    const ins = db.run('INSERT INTO lessons (run_id, task_id, retro_id, rule, signature, text, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      runId,
      facts.taskId,
      retroId,
      l.rule,
      l.signature === null ? null : scrub(l.signature),
      text,
      created,
    ]);
    const lid = Number(ins.lastInsertRowid);
    putDoc(db, { kind: 'lesson', ref: String(lid), taskId: facts.taskId, runId, file, origin, tsMs: created, title: `${facts.taskId} lesson (${l.rule})`, body: text });
    const lessonEnt = entityId(db, { kind: 'lesson', name: String(lid) });
    if (runEnt) db.run('INSERT OR IGNORE INTO edges (src, kind, dst, run_id, origin) VALUES (?, ?, ?, ?, ?)', [lessonEnt, 'discovered_from', runEnt.id, runId, origin]);
  }
}

/**
 * Runs that ended without a retrospective, oldest first: a crew that stopped (crash, power loss)
 * between recording a run and writing its retrospective leaves these; the next crew writes them.
 * Only the newest `window` runs are looked at (by insertion order, no index needed), since such
 * gaps sit just before a stop; `endedBeforeMs` leaves alone runs so recent that another live crew
 * may be writing theirs now.
 */
export function runsWithoutRetro(db: Db, opts: { endedBeforeMs: number; window: number }): Array<{ runId: string; taskId: string; file: string | null }> {
  return db.all<{ runId: string; taskId: string; file: string | null }>(
    `SELECT r.id AS runId, r.task_id AS taskId, t.file AS file
     FROM (SELECT id, task_id, ended_ms FROM runs ORDER BY rowid DESC LIMIT ?) r
     LEFT JOIN tasks t ON t.id = r.task_id
     WHERE r.ended_ms IS NOT NULL AND r.ended_ms < ?
       AND NOT EXISTS (SELECT 1 FROM retrospectives x WHERE x.run_id = r.id)
     ORDER BY r.ended_ms, r.id`,
    [Math.max(0, Math.floor(opts.window)), opts.endedBeforeMs],
  );
}
