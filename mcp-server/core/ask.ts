// The no-API-key question router: the questions people actually ask, answered from store rows
// with citations; FTS for the rest; "I don't know" when nothing matches. Never invents.
import type { ToolCallsRow } from './audit.js';
import { entitiesNamed } from './knowledge.js';
import { isFailure, errorSignature } from './knowledge-extract.js';
import { knowledgeSearch, queryTerms } from './knowledge-search.js';
import type { Db } from './store.js';

export type Intent = 'status' | 'blocked' | 'task' | 'touched' | 'lessons' | 'failures' | 'failing-commands' | 'search';

export interface Citation {
  kind: 'task' | 'run' | 'retro';
  id: string;
  file?: string;
}

export interface Answer {
  answer: string;
  citations: Citation[];
  intent: Intent;
}

export interface AskOptions {
  now: number;
  limit?: number;
}

const WEEK = 7 * 86_400_000;
const TASK_ID = /\b([A-Z][A-Z0-9]*-\d+)\b/i;

class Cites {
  readonly list: Citation[] = [];
  add(kind: Citation['kind'], id: string | null | undefined, file?: string | null): void {
    if (!id || this.list.some((c) => c.kind === kind && c.id === id)) return;
    this.list.push(file ? { kind, id, file } : { kind, id });
  }
}

function dontKnow(intent: Intent, what: string): Answer {
  return { answer: `I don't know — nothing in the records matches ${what}.`, citations: [], intent };
}

/** Which question this is. Order matters: the most specific patterns first. */
export function classify(q: string): Intent {
  const s = q.toLowerCase();
  if (/\b(which|what) (commands?|tools?|calls?)\b.*\bfail|\bfail\w* (the )?most\b|\bmost (often )?fail/.test(s)) return 'failing-commands';
  if (/\bfail(ed|ures?|ing)?\b/.test(s) && /\b(this week|today|week|recent(ly)?|last|how often|lately|since)\b/.test(s)) return 'failures';
  if (/\blessons?\b|\blearn(ed|t|ings?)?\b/.test(s)) return 'lessons';
  if (/\bblocked\b|\bstuck\b|\bwaiting\b/.test(s)) return 'blocked';
  if (TASK_ID.test(q)) return 'task';
  if (/\b(touch(ed|es)?|changed|affected|ran (against|on)|worked on|hit)\b/.test(s)) return 'touched';
  if (/\b(status|overview|summary|how are (we|things)|what'?s going on|progress)\b/.test(s)) return 'status';
  return 'search';
}

export function ask(db: Db, question: string, opts: AskOptions): Answer {
  const q = question.trim().slice(0, 1000);
  if (q === '') return dontKnow('search', 'an empty question');
  const intent = classify(q);
  switch (intent) {
    case 'status':
      return status(db);
    case 'blocked':
      return blocked(db, q);
    case 'task':
      return aboutTask(db, (TASK_ID.exec(q)?.[1] ?? '').toUpperCase());
    case 'touched':
      return touched(db, q);
    case 'lessons':
      return lessons(db, q, opts);
    case 'failures':
      return failures(db, q, opts.now);
    case 'failing-commands':
      return failingCommands(db, q, opts.now);
    default:
      return search(db, q, opts);
  }
}

function status(db: Db): Answer {
  const c = new Cites();
  const counts = db.all<{ folder: string; status: string | null; n: number }>('SELECT folder, status, count(*) AS n FROM tasks GROUP BY folder, status ORDER BY folder, status');
  if (counts.length === 0) return dontKnow('status', 'any task (the queue is empty)');
  const parts = counts.map((r) => `${r.n} ${r.folder}${r.status && r.status !== r.folder && r.status !== 'active' ? ` (${r.status})` : ''}`);
  const active = db.all<{ id: string; title: string }>("SELECT id, title FROM tasks WHERE folder = 'active' ORDER BY id LIMIT 10");
  const recent = db.all<{ id: string; task_id: string; outcome: string | null }>('SELECT id, task_id, outcome FROM runs ORDER BY started_ms DESC, id DESC LIMIT 5');
  active.forEach((t) => c.add('task', t.id));
  recent.forEach((r) => {
    c.add('run', r.id);
    c.add('task', r.task_id);
  });
  const lines = [`Tasks: ${parts.join(', ')}.`];
  if (active.length) lines.push(`Active: ${active.map((t) => `${t.id} ${t.title}`).join('; ')}.`);
  if (recent.length) lines.push(`Latest runs: ${recent.map((r) => `${r.task_id} ${r.outcome ?? 'running'} (${r.id})`).join('; ')}.`);
  return { answer: lines.join('\n'), citations: c.list, intent: 'status' };
}

function lastRun(db: Db, taskId: string): { id: string; outcome: string | null; reason: string | null } | undefined {
  return db.get('SELECT id, outcome, reason FROM runs WHERE task_id = ? ORDER BY started_ms DESC, id DESC LIMIT 1', [taskId]);
}

function retroOf(db: Db, runId: string): { id: string; file: string } | undefined {
  return db.get('SELECT id, file FROM retrospectives WHERE run_id = ?', [runId]);
}

function blocked(db: Db, q: string): Answer {
  const one = TASK_ID.exec(q)?.[1]?.toUpperCase();
  const rows = db.all<{ id: string; title: string; status: string | null; depends_on: string }>(
    one
      ? 'SELECT id, title, status, depends_on FROM tasks WHERE id = ?'
      : "SELECT id, title, status, depends_on FROM tasks WHERE status IN ('blocked','awaiting-approval') AND folder <> 'completed' ORDER BY prio_rank, id LIMIT 50",
    one ? [one] : [],
  );
  if (rows.length === 0) return one ? dontKnow('blocked', `a task ${one}`) : { answer: 'Nothing is blocked.', citations: [], intent: 'blocked' };
  const c = new Cites();
  const lines: string[] = [];
  for (const t of rows) {
    c.add('task', t.id);
    const run = lastRun(db, t.id);
    const deps = (JSON.parse(t.depends_on) as string[]).filter((d) => db.get("SELECT 1 FROM tasks WHERE id = ? AND folder = 'completed'", [d]) === undefined);
    const why: string[] = [];
    if (t.status === 'awaiting-approval') why.push('awaiting approval');
    if (run?.outcome === 'blocked' && run.reason) why.push(run.reason);
    if (deps.length) why.push(`waits for ${deps.join(', ')}`);
    if (run) {
      c.add('run', run.id);
      const sigs = db.all<{ name: string }>(
        `SELECT en.name FROM entities t JOIN edges e ON e.src = t.id AND e.kind = 'blocked_by' JOIN entities en ON en.id = e.dst
          WHERE t.kind = 'task' AND t.name = ? AND e.run_id = ? ORDER BY en.name LIMIT 3`,
        [t.id, run.id],
      );
      if (sigs.length) why.push(`failed with ${sigs.map((s) => `"${s.name}"`).join(', ')}`);
      const r = retroOf(db, run.id);
      if (r) c.add('retro', r.id, r.file);
    }
    if (one && t.status !== 'blocked' && t.status !== 'awaiting-approval' && deps.length === 0) lines.push(`${t.id} ${t.title} is not blocked (status ${t.status ?? 'backlog'}).`);
    else lines.push(`${t.id} ${t.title}: ${t.status ?? 'blocked'}${why.length ? ` — ${why.join('; ')}` : ''}${run ? ` (run ${run.id})` : ''}`);
  }
  return { answer: lines.join('\n'), citations: c.list, intent: 'blocked' };
}

function aboutTask(db: Db, id: string): Answer {
  const t = db.get<{ id: string; title: string; folder: string; status: string | null }>('SELECT id, title, folder, status FROM tasks WHERE id = ?', [id]);
  const runs = db.all<{ id: string; outcome: string | null; reason: string | null; agent: string | null; started_ms: number; ended_ms: number | null }>(
    'SELECT id, outcome, reason, agent, started_ms, ended_ms FROM runs WHERE task_id = ? ORDER BY started_ms, id LIMIT 50',
    [id],
  );
  if (!t && runs.length === 0) return dontKnow('task', `a task ${id}`);
  const c = new Cites();
  c.add('task', id);
  const lines = [t ? `${id} ${t.title}: ${t.folder}${t.status && t.status !== t.folder ? ` (${t.status})` : ''}.` : `${id}: not in the queue any more.`];
  if (runs.length === 0) lines.push('It has not run yet.');
  for (const r of runs) {
    c.add('run', r.id);
    const v = db.get<{ n: number; ok: number | null }>("SELECT count(*) AS n, sum(outcome IN ('verified','na')) AS ok FROM verifications WHERE run_id = ?", [r.id]);
    const retro = retroOf(db, r.id);
    if (retro) c.add('retro', retro.id, retro.file);
    lines.push(
      `- ${r.id} by ${r.agent ?? '-'}: ${r.outcome ?? 'running'}${r.reason ? ` (${r.reason})` : ''}${v && v.n ? `, criteria ${v.ok ?? 0} of ${v.n}` : ''}${retro ? `, retro ${retro.file}` : ''}`,
    );
  }
  return { answer: lines.join('\n'), citations: c.list, intent: 'task' };
}

const TOUCH_KINDS = ['host', 'namespace', 'compose_project', 'service', 'url_host', 'kube_context', 'secret_path', 'file'];

function touched(db: Db, q: string): Answer {
  // The object is the word after "touched"/"host"/"namespace"..., else each content word tried in turn.
  const m = /\b(?:host|namespace|ns|service|project|context|url|path|file)\s+([^\s?'"]+)/i.exec(q) ?? /\b(?:touch(?:ed|es)?|changed|affected|on|against)\s+([^\s?'"]+)/i.exec(q);
  const candidates = [m?.[1], ...q.split(/\s+/)].filter((x): x is string => !!x).map((x) => x.replace(/[?.,!'"]+$/, ''));
  for (const name of candidates) {
    const ents = entitiesNamed(db, name, TOUCH_KINDS);
    if (ents.length === 0) continue;
    const c = new Cites();
    const lines: string[] = [];
    for (const e of ents) {
      const rows = db.all<{ skind: string; sname: string }>(
        `SELECT DISTINCT s.kind AS skind, s.name AS sname FROM edges x JOIN entities s ON s.id = x.src WHERE x.dst = ? AND x.kind = 'touched' ORDER BY s.kind, s.name LIMIT 100`,
        [e.id],
      );
      const runs = rows.filter((r) => r.skind === 'run').map((r) => r.sname);
      const tasks = new Set(rows.filter((r) => r.skind === 'task').map((r) => r.sname));
      for (const r of runs) {
        c.add('run', r);
        const tid = db.get<{ task_id: string }>('SELECT task_id FROM runs WHERE id = ?', [r])?.task_id;
        if (tid) tasks.add(tid);
        const retro = retroOf(db, r);
        if (retro) c.add('retro', retro.id, retro.file);
      }
      for (const t of tasks) c.add('task', t);
      lines.push(`${e.kind} ${e.name}: touched by runs ${runs.join(', ') || '(none)'}; tasks ${[...tasks].sort().join(', ') || '(none)'}.`);
    }
    return { answer: lines.join('\n'), citations: c.list, intent: 'touched' };
  }
  return dontKnow('touched', `a host, namespace, project, service or path named in "${q}"`);
}

function lessons(db: Db, q: string, opts: AskOptions): Answer {
  const about = q.replace(/.*\b(?:about|on|for|regarding)\b/i, '');
  const terms = queryTerms(about).filter((t) => !/^(lessons?|learn\w*|we|have|do)$/.test(t.word));
  const c = new Cites();
  const lines: string[] = [];
  if (terms.length > 0) {
    const r = knowledgeSearch(db, terms.map((t) => t.word + (t.prefix ? '*' : '')).join(' '), { limit: opts.limit ?? 10, kinds: ['lesson'] });
    for (const h of r.hits) {
      const l = db.get<{ text: string; task_id: string; run_id: string; retro_id: string | null; file: string | null }>(
        'SELECT l.text, l.task_id, l.run_id, l.retro_id, r.file FROM lessons l LEFT JOIN retrospectives r ON r.id = l.retro_id WHERE l.id = ?',
        [Number(h.ref)],
      );
      if (!l) continue;
      c.add('task', l.task_id);
      c.add('run', l.run_id);
      if (l.retro_id) c.add('retro', l.retro_id, l.file);
      lines.push(`- ${l.task_id} (${l.run_id}): ${l.text}`);
    }
  } else {
    const ls = db.all<{ text: string; task_id: string; run_id: string; retro_id: string | null; file: string | null }>(
      'SELECT l.text, l.task_id, l.run_id, l.retro_id, r.file FROM lessons l LEFT JOIN retrospectives r ON r.id = l.retro_id ORDER BY l.created_ms DESC, l.id DESC LIMIT ?',
      [opts.limit ?? 10],
    );
    for (const l of ls) {
      c.add('task', l.task_id);
      c.add('run', l.run_id);
      if (l.retro_id) c.add('retro', l.retro_id, l.file);
      lines.push(`- ${l.task_id} (${l.run_id}): ${l.text}`);
    }
  }
  if (lines.length === 0) return dontKnow('lessons', `a lesson about "${about.trim() || q}"`);
  return { answer: `Lessons:\n${lines.join('\n')}`, citations: c.list, intent: 'lessons' };
}

function sinceOf(q: string, now: number): number {
  const s = q.toLowerCase();
  if (/\btoday\b/.test(s)) return now - 86_400_000;
  if (/\bmonth\b/.test(s)) return now - 30 * 86_400_000;
  return now - WEEK;
}

type FailRow = Pick<ToolCallsRow, 'seq' | 'task_id' | 'run_id' | 'tool' | 'verb' | 'canonical' | 'decision' | 'rule' | 'exit_code' | 'stdout' | 'stderr'>;

function failedCalls(db: Db, since: number): FailRow[] {
  return db
    .all<FailRow>(
      `SELECT seq, task_id, run_id, tool, verb, canonical, decision, rule, exit_code, stdout, stderr FROM tool_calls
        WHERE ts_ms >= ? AND (decision <> 'allow' OR (exit_code IS NOT NULL AND exit_code <> 0)) ORDER BY seq LIMIT 20000`,
      [since],
    )
    .filter((r) => isFailure({ tool: r.tool, verb: r.verb, decision: r.decision, rule: r.rule, exitCode: r.exit_code, stdout: r.stdout, stderr: r.stderr }));
}

function failures(db: Db, q: string, now: number): Answer {
  const since = sinceOf(q, now);
  const rows = failedCalls(db, since);
  if (rows.length === 0) return { answer: `No failures since ${new Date(since).toISOString()}.`, citations: [], intent: 'failures' };
  const groups = new Map<string, { n: number; tasks: Set<string>; runs: Set<string> }>();
  for (const r of rows) {
    const sig = errorSignature({ tool: r.tool, verb: r.verb, decision: r.decision, rule: r.rule, exitCode: r.exit_code, stdout: r.stdout, stderr: r.stderr }) ?? '?';
    const g = groups.get(sig) ?? { n: 0, tasks: new Set<string>(), runs: new Set<string>() };
    g.n++;
    if (r.task_id) g.tasks.add(r.task_id);
    if (r.run_id) g.runs.add(r.run_id);
    groups.set(sig, g);
  }
  const c = new Cites();
  const sorted = [...groups.entries()].sort((a, b) => b[1].n - a[1].n || a[0].localeCompare(b[0])).slice(0, 15);
  const lines = sorted.map(([sig, g]) => {
    [...g.tasks].sort().forEach((t) => c.add('task', t));
    [...g.runs].sort().forEach((r) => c.add('run', r));
    return `- ${g.n}× ${sig} — ${[...g.tasks].sort().join(', ') || 'no task'}`;
  });
  return { answer: `${rows.length} failed calls since ${new Date(since).toISOString()}, by signature:\n${lines.join('\n')}`, citations: c.list, intent: 'failures' };
}

function failingCommands(db: Db, q: string, now: number): Answer {
  const since = /\b(ever|all time)\b/i.test(q) ? 0 : sinceOf(q, now);
  const rows = failedCalls(db, since);
  if (rows.length === 0) return { answer: 'No command failed in that period.', citations: [], intent: 'failing-commands' };
  const groups = new Map<string, { n: number; tasks: Set<string>; runs: Set<string>; example: string }>();
  for (const r of rows) {
    const key = [r.tool ?? 'unparsed', r.verb ?? ''].join(' ').trim();
    const g = groups.get(key) ?? { n: 0, tasks: new Set<string>(), runs: new Set<string>(), example: r.canonical };
    g.n++;
    if (r.task_id) g.tasks.add(r.task_id);
    if (r.run_id) g.runs.add(r.run_id);
    groups.set(key, g);
  }
  const c = new Cites();
  const lines = [...groups.entries()]
    .sort((a, b) => b[1].n - a[1].n || a[0].localeCompare(b[0]))
    .slice(0, 10)
    .map(([k, g]) => {
      [...g.tasks].sort().forEach((t) => c.add('task', t));
      [...g.runs].sort().forEach((r) => c.add('run', r));
      return `- ${k}: ${g.n} failures (e.g. \`${g.example}\`) — ${[...g.tasks].sort().join(', ') || 'no task'}`;
    });
  return { answer: `Commands that fail most:\n${lines.join('\n')}`, citations: c.list, intent: 'failing-commands' };
}

function search(db: Db, q: string, opts: AskOptions): Answer {
  const r = knowledgeSearch(db, q, { limit: opts.limit ?? 5 });
  if (r.hits.length === 0) return dontKnow('search', `"${q}"`);
  const c = new Cites();
  const lines = r.hits.map((h) => {
    if (h.kind === 'retro') c.add('retro', h.ref, h.file);
    c.add('task', h.taskId);
    c.add('run', h.runId);
    return `- [${h.kind}] ${h.title}: ${h.snippet.replace(/\s+/g, ' ')}`;
  });
  return { answer: `Best matches:\n${lines.join('\n')}`, citations: c.list, intent: 'search' };
}
