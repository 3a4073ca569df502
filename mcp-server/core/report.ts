// `opscrew report`: the session/period report people used to write by hand, computed from the
// store only (runs, verifications, audit, lessons, tasks). Data first; markdown is a rendering.
import { join } from 'node:path';
import { writeFileDurable } from './durable-fs.js';
import { errorSignature } from './knowledge-extract.js';
import type { Db } from './store.js';

export interface ReportOptions {
  sinceMs: number;
  now: number;
}

export interface ReportData {
  sinceMs: number;
  untilMs: number;
  tasks: { processed: number; completed: number; blocked: number; created: number; completionRate: number };
  runs: number;
  criteria: { met: number; total: number };
  durations: { totalMs: number; averageMs: number; blockedMs: number };
  specialists: Array<{ agent: string; runs: number; completed: number; blocked: number; other: number; durationMs: number; calls: number; failedCalls: number }>;
  discoveries: Array<{ signature: string; count: number; tasks: string[]; runs: string[]; refusal: boolean }>;
  learnings: Array<{ text: string; rule: string; taskId: string; runId: string; retroId: string | null }>;
  backlog: Array<{ priority: string; tasks: Array<{ id: string; title: string; status: string | null; blockedBy: string[]; blocks: string[] }> }>;
  startHere: Array<{ id: string; title: string; why: string }>;
  citations: { tasks: string[]; runs: string[]; retros: string[] };
}

interface RunRow {
  id: string;
  task_id: string;
  agent: string | null;
  outcome: string | null;
  started_ms: number;
  ended_ms: number | null;
}

const PRIORITY_ORDER = ['critical', 'high', 'medium', 'low'];

export function buildReport(db: Db, opts: ReportOptions): { data: ReportData; markdown: string } {
  const since = Math.floor(opts.sinceMs);
  const until = Math.floor(opts.now);
  return db.read(() => {
    const runs = db.all<RunRow>('SELECT id, task_id, agent, outcome, started_ms, ended_ms FROM runs WHERE started_ms >= ? AND started_ms <= ? ORDER BY started_ms, id', [since, until]);
    const lastByTask = new Map<string, RunRow>();
    for (const r of runs) lastByTask.set(r.task_id, r);
    const processed = lastByTask.size;
    const completedTasks = new Set(runs.filter((r) => r.outcome === 'completed').map((r) => r.task_id));
    const blockedTasks = [...lastByTask.values()].filter((r) => r.outcome === 'blocked').map((r) => r.task_id);
    const created = db.get<{ n: number }>('SELECT count(*) AS n FROM tasks WHERE created_ms >= ? AND created_ms <= ?', [since, until])?.n ?? 0;
    const crit = db.get<{ n: number; ok: number | null }>(
      `SELECT count(*) AS n, sum(v.outcome IN ('verified','na')) AS ok FROM verifications v JOIN runs r ON r.id = v.run_id
        WHERE r.started_ms >= ? AND r.started_ms <= ?`,
      [since, until],
    );
    const ended = runs.filter((r) => r.ended_ms !== null);
    const totalMs = ended.reduce((s, r) => s + ((r.ended_ms ?? 0) - r.started_ms), 0);
    // Blocked time: from a blocked run's end to the task's next run (or to now).
    let blockedMs = 0;
    for (const r of runs) {
      if (r.outcome !== 'blocked' || r.ended_ms === null) continue;
      const next = db.get<{ s: number }>('SELECT min(started_ms) AS s FROM runs WHERE task_id = ? AND started_ms > ?', [r.task_id, r.started_ms]);
      blockedMs += Math.max(0, Math.min(next?.s ?? until, until) - r.ended_ms);
    }
    const agents = new Map<string, ReportData['specialists'][number]>();
    for (const r of runs) {
      const a = r.agent ?? '(unassigned)';
      const s = agents.get(a) ?? { agent: a, runs: 0, completed: 0, blocked: 0, other: 0, durationMs: 0, calls: 0, failedCalls: 0 };
      s.runs++;
      if (r.outcome === 'completed') s.completed++;
      else if (r.outcome === 'blocked') s.blocked++;
      else s.other++;
      if (r.ended_ms !== null) s.durationMs += r.ended_ms - r.started_ms;
      agents.set(a, s);
    }
    const calls = db.all<{ run_id: string | null; task_id: string | null; agent: string; tool: string | null; verb: string | null; decision: string; rule: string; exit_code: number | null; stdout: string | null; stderr: string | null; ragent: string | null }>(
      `SELECT c.run_id, c.task_id, c.agent, c.tool, c.verb, c.decision, c.rule, c.exit_code, c.stdout, c.stderr, r.agent AS ragent
         FROM tool_calls c LEFT JOIN runs r ON r.id = c.run_id WHERE c.ts_ms >= ? AND c.ts_ms <= ? ORDER BY c.seq`,
      [since, until],
    );
    const disc = new Map<string, ReportData['discoveries'][number]>();
    for (const c of calls) {
      const sig = errorSignature({ tool: c.tool, verb: c.verb, decision: c.decision, rule: c.rule, exitCode: c.exit_code, stdout: c.stdout, stderr: c.stderr });
      const s = agents.get(c.ragent ?? c.agent);
      if (s) {
        s.calls++;
        if (sig) s.failedCalls++;
      }
      if (!sig) continue;
      const d = disc.get(sig) ?? { signature: sig, count: 0, tasks: [], runs: [], refusal: c.decision !== 'allow' };
      d.count++;
      if (c.task_id && !d.tasks.includes(c.task_id)) d.tasks.push(c.task_id);
      if (c.run_id && !d.runs.includes(c.run_id)) d.runs.push(c.run_id);
      disc.set(sig, d);
    }
    const learnings = db.all<{ text: string; rule: string; task_id: string; run_id: string; retro_id: string | null }>(
      'SELECT text, rule, task_id, run_id, retro_id FROM lessons WHERE created_ms >= ? AND created_ms <= ? ORDER BY created_ms, id LIMIT 200',
      [since, until],
    );
    const open = db.all<{ id: string; title: string; priority: string; status: string | null; folder: string; depends_on: string; prio_rank: number; created_ms: number }>(
      "SELECT id, title, priority, status, folder, depends_on, prio_rank, created_ms FROM tasks WHERE folder IN ('backlog','active') AND valid = 1 ORDER BY prio_rank, created_ms, id LIMIT 2000",
    );
    const doneIds = new Set(db.all<{ id: string }>("SELECT id FROM tasks WHERE folder = 'completed'").map((r) => r.id));
    const deps = new Map(open.map((t) => [t.id, (JSON.parse(t.depends_on) as string[]).filter((d) => !doneIds.has(d))]));
    const blocksOf = (id: string): string[] => open.filter((t) => (deps.get(t.id) ?? []).includes(id)).map((t) => t.id);
    const backlog: ReportData['backlog'] = [];
    for (const p of [...PRIORITY_ORDER, ...new Set(open.map((t) => t.priority).filter((p) => !PRIORITY_ORDER.includes(p)))]) {
      const ts = open.filter((t) => t.priority === p);
      if (ts.length > 0) backlog.push({ priority: p, tasks: ts.map((t) => ({ id: t.id, title: t.title, status: t.status ?? (t.folder === 'active' ? 'active' : null), blockedBy: deps.get(t.id) ?? [], blocks: blocksOf(t.id) })) });
    }
    const startHere: ReportData['startHere'] = [];
    for (const t of open) if (t.status === 'awaiting-approval') startHere.push({ id: t.id, title: t.title, why: 'awaiting approval: a person must approve or deny' });
    for (const t of open) {
      if (t.status !== 'blocked') continue;
      const reason = db.get<{ reason: string | null }>("SELECT reason FROM runs WHERE task_id = ? AND outcome = 'blocked' ORDER BY started_ms DESC LIMIT 1", [t.id])?.reason;
      startHere.push({ id: t.id, title: t.title, why: `blocked${reason ? `: ${reason}` : ''}${blocksOf(t.id).length ? `; unblocks ${blocksOf(t.id).join(', ')}` : ''}` });
    }
    for (const t of open) {
      if (startHere.length >= 10) break;
      if (t.folder !== 'backlog' || t.status === 'blocked' || t.status === 'awaiting-approval' || (deps.get(t.id) ?? []).length > 0) continue;
      startHere.push({ id: t.id, title: t.title, why: `ready, ${t.priority}${blocksOf(t.id).length ? `; unblocks ${blocksOf(t.id).join(', ')}` : ''}` });
    }
    const retros = db.all<{ id: string }>('SELECT id FROM retrospectives WHERE created_ms >= ? AND created_ms <= ? ORDER BY id', [since, until]).map((r) => r.id);
    const data: ReportData = {
      sinceMs: since,
      untilMs: until,
      tasks: { processed, completed: completedTasks.size, blocked: blockedTasks.length, created, completionRate: processed ? completedTasks.size / processed : 0 },
      runs: runs.length,
      criteria: { met: crit?.ok ?? 0, total: crit?.n ?? 0 },
      durations: { totalMs, averageMs: ended.length ? Math.round(totalMs / ended.length) : 0, blockedMs },
      specialists: [...agents.values()].sort((a, b) => b.runs - a.runs || a.agent.localeCompare(b.agent)),
      discoveries: [...disc.values()].sort((a, b) => b.count - a.count || a.signature.localeCompare(b.signature)),
      learnings: learnings.map((l) => ({ text: l.text, rule: l.rule, taskId: l.task_id, runId: l.run_id, retroId: l.retro_id })),
      backlog,
      startHere: startHere.slice(0, 10),
      citations: { tasks: [...lastByTask.keys()].sort(), runs: runs.map((r) => r.id), retros },
    };
    return { data, markdown: renderReport(data) };
  });
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function dur(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
}

export function renderReport(d: ReportData): string {
  const L: string[] = [`# opscrew report ${iso(d.sinceMs)} → ${iso(d.untilMs)}`, ''];
  const pct = (x: number): string => `${Math.round(x * 100)}%`;
  L.push('## Summary', '');
  L.push(`- Tasks processed: ${d.tasks.processed} (runs: ${d.runs})`);
  L.push(`- Completed: ${d.tasks.completed}; blocked: ${d.tasks.blocked}; created: ${d.tasks.created}`);
  L.push(`- Completion rate: ${pct(d.tasks.completionRate)}`);
  L.push(`- Acceptance criteria met: ${d.criteria.met} of ${d.criteria.total}`);
  L.push(`- Durations: total ${dur(d.durations.totalMs)}, average ${dur(d.durations.averageMs)}, blocked ${dur(d.durations.blockedMs)}`, '');
  L.push('## Per specialist', '');
  if (d.specialists.length === 0) L.push('- no runs');
  for (const s of d.specialists) L.push(`- ${s.agent}: ${s.runs} runs (${s.completed} completed, ${s.blocked} blocked, ${s.other} other), ${dur(s.durationMs)}, ${s.calls} calls (${s.failedCalls} failed)`);
  L.push('', '## Critical discoveries', '');
  if (d.discoveries.length === 0) L.push('- none');
  for (const x of d.discoveries.slice(0, 30)) L.push(`- ${x.refusal ? '[refusal] ' : ''}\`${x.signature}\` × ${x.count} — ${x.tasks.join(', ')}`);
  L.push('', '## Learnings', '');
  if (d.learnings.length === 0) L.push('- none');
  for (const l of d.learnings.slice(0, 50)) L.push(`- ${l.taskId}: ${l.text}${l.retroId ? ` (${l.retroId})` : ''}`);
  L.push('', '## Backlog by priority', '');
  if (d.backlog.length === 0) L.push('- empty');
  for (const b of d.backlog) {
    L.push(`### ${b.priority}`, '');
    for (const t of b.tasks.slice(0, 50)) {
      const extra = [t.status ? t.status : '', t.blockedBy.length ? `waits for ${t.blockedBy.join(', ')}` : '', t.blocks.length ? `blocks ${t.blocks.join(', ')}` : ''].filter((s) => s !== '');
      L.push(`- ${t.id} ${t.title}${extra.length ? ` — ${extra.join('; ')}` : ''}`);
    }
    L.push('');
  }
  L.push('## Start here next', '');
  if (d.startHere.length === 0) L.push('- nothing waiting');
  d.startHere.forEach((s, i) => L.push(`${i + 1}. ${s.id} ${s.title} — ${s.why}`));
  return `${L.join('\n')}\n`;
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** Builds the report and writes `retrospectives/report-YYYYMMDD-HHMMSS.md`; scrubbed. */
export function writeReport(
  deps: { db: Db; retrospectivesDir: string; scrub?: (s: string) => string },
  opts: ReportOptions,
): { data: ReportData; markdown: string; file: string } {
  const r = buildReport(deps.db, opts);
  const markdown = (deps.scrub ?? ((s: string) => s))(r.markdown);
  const file = join(deps.retrospectivesDir, `report-${stamp(opts.now)}.md`);
  writeFileDurable(file, markdown);
  return { data: r.data, markdown, file };
}
