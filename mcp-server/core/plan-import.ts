// Split a planning document (Markdown) into new backlog tasks: `opscrew import PLAN.md`. Pure: text
// in, task inputs and located warnings out; plan-write.ts does the I/O. Heuristics, in order:
// - Task sections are headings with a numbered label ("Milestone 2: …", "Phase 1 — …", "Part II: …")
//   at the shallowest level that has one; else plain numbered headings ("## 1. Title"); else H2
//   sections that hold commands or a criteria list. Overview/Background/Rollback/... are never tasks.
// - Priority: a label in the section ("(P0)", "[High]", "**Priority:** P1") wins over the roadmap
//   table (a table with a Priority column whose rows name the section by number or title).
// - Runnable fenced blocks (sh/bash/shell/console) are Steps; "Done when"/"Success criteria"/...
//   lists are Acceptance Criteria; a criterion with an inline command and a stated result becomes a
//   verify block, without a command it stays manual (and is reported).
// - Dependencies only where the plan states them ("after Phase 1", "depends on Milestone 2",
//   "requires the previous phase", a Depends column, or a plan-level "phases run in order"):
//   numbering alone never implies an order.
import { fail, ok, type Issue, type Result } from './errors.js';
import { closesFence, heading, listItem, openingFence, splitLines, type FenceOpen } from './markdown.js';
import type { NewTaskInput } from './task-render.js';
import { parseInfoString, RUNNABLE_LANGUAGES } from './task-parse.js';
import type { Priority } from './task-types.js';

export type PlanTask = NewTaskInput & { sourceLine: number; estimate?: string };

export interface PlanSplit {
  title: string;
  tasks: PlanTask[];
  warnings: Issue[];
}

export interface SplitOptions {
  /** Hands out the id of the next task (called once per task, in plan order). */
  nextId: () => string;
}

/** Words that label a numbered task heading ("Milestone 2: …"). Plurals are accepted in references. */
export const PLAN_LABEL_WORDS = [
  'milestone', 'task', 'phase', 'step', 'stage', 'optimization', 'optimisation', 'part', 'epic', 'story',
  'item', 'workstream', 'sprint', 'iteration', 'change', 'fix', 'action', 'deliverable', 'wave', 'day', 'week',
] as const;

/** Headings that describe the plan rather than a piece of work. */
const NOT_A_TASK_RE =
  /^(?:overview|background|context|summary|executive summary|introduction|intro|motivation|purpose|problem( statement)?|goals?|non-goals?|objectives?|scope|out of scope|roadmap|timeline|schedule|milestones|phases|tasks|plan|rollback( plan)?|roll ?back|risks?( and mitigations)?|notes?|appendix|references?|glossary|open questions|questions|faq|owners?|team|contacts?|status|changelog|history|table of contents|contents|toc|prerequisites?|assumptions|dependencies|success criteria|acceptance criteria|definition of done|done when|estimates?|priorities|budget|next steps|follow-?ups?|lessons( learned)?|conclusion|sign-?off|approvals?)\b/i;

const CRITERIA_NAME = '(?:done when|success criteria|acceptance criteria|acceptance|definition of done|exit criteria|completion criteria|verification|validation|how to verify|verify|checks|tests)';
const ROLLBACK_NAME = '(?:rollback plan|rollback|roll back|roll-back|to roll back|undo|revert|back ?out)';
// Only words that always mean "this waits for": "Prerequisites: Docker 24" is not an order.
const DEPENDS_NAME = '(?:depends on|dependencies|depends|blocked by|after)';

const CRITERIA_HEADING_RE = new RegExp(`^${CRITERIA_NAME}\\b`, 'i');
const ROLLBACK_HEADING_RE = new RegExp(`^${ROLLBACK_NAME}\\b`, 'i');
// "**Done when:**", "Success criteria:", "Acceptance criteria" (alone on its line), "Rollback: text".
const CRITERIA_LABEL_RE = new RegExp(`^${CRITERIA_NAME}\\s*(?::\\s*([\\s\\S]*))?$`, 'i');
const ROLLBACK_LABEL_RE = new RegExp(`^${ROLLBACK_NAME}\\s*(?::\\s*([\\s\\S]*))?$`, 'i');
const DEPENDS_LABEL_RE = new RegExp(`^${DEPENDS_NAME}\\s*:\\s*([\\s\\S]*)$`, 'i');

const PRIORITY_WORDS: Record<string, Priority> = {
  p0: 'critical', p1: 'high', p2: 'medium', p3: 'low', p4: 'low',
  critical: 'critical', urgent: 'critical', blocker: 'critical', highest: 'critical',
  high: 'high', medium: 'medium', med: 'medium', normal: 'medium', moderate: 'medium',
  low: 'low', lowest: 'low', minor: 'low',
};
const PRIO_TOKEN = '(p[0-4]|critical|urgent|blocker|highest|high|medium|med|normal|moderate|lowest|low|minor)';
const PRIO_LABEL_RE = new RegExp(`\\bpriority\\s*[:=\\-–—]\\s*${PRIO_TOKEN}\\b`, 'i');
const PRIO_SUFFIX_RE = new RegExp(`\\b${PRIO_TOKEN}[ -]priority\\b`, 'i');
const PRIO_BRACKET_RE = new RegExp(`[([]\\s*(?:priority\\s*[:=]?\\s*)?${PRIO_TOKEN}(?:\\s+priority)?\\s*[)\\]]`, 'i');
const PRIO_BARE_RE = /(?:^|[\s\-–—|·,])(P[0-4])(?=$|[\s\-–—|·,.])/;
const EST_LABEL_RE = /\b(?:estimated effort|estimate[ds]?|effort|est\.|time estimate)\s*[:=]\s*([^|;·,(\n]{1,40})/i;
const EST_PAREN_RE = /\(\s*(?:est\.?|estimate:?)\s*([^)]{1,30})\)/i;

/** Longest line the label and reference patterns look at: keeps every regex here linear. */
const LINE_CAP = 2000;

// ---------------------------------------------------------------------------------------------
// Markdown nodes

type Node =
  | { kind: 'heading'; idx: number; level: number; text: string }
  | { kind: 'code'; idx: number; lang: string; info: string; file: boolean; lines: string[]; closed: boolean }
  | { kind: 'text'; idx: number; text: string };

function toNodes(lines: readonly string[]): Node[] {
  const nodes: Node[] = [];
  let open: { fence: FenceOpen; node: Extract<Node, { kind: 'code' }> } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    if (open) {
      if (closesFence(raw, open.fence)) {
        open.node.closed = true;
        open = null;
      } else open.node.lines.push(dedentBy(raw, open.fence.indent));
      continue;
    }
    const f = openingFence(raw);
    if (f) {
      const { lang, attrs } = parseInfoString(f.info);
      const node = { kind: 'code' as const, idx: i, lang, info: f.info, file: attrs.file !== undefined, lines: [], closed: false };
      nodes.push(node);
      open = { fence: f, node };
      continue;
    }
    const h = heading(raw);
    if (h && h.text !== '') nodes.push({ kind: 'heading', idx: i, level: h.level, text: h.text });
    else nodes.push({ kind: 'text', idx: i, text: raw });
  }
  return nodes;
}

function dedentBy(line: string, cols: number): string {
  let i = 0;
  while (i < cols && i < line.length && (line[i] === ' ' || line[i] === '\t')) i += 1;
  return line.slice(i);
}

/** Emphasis markers and decorations removed: what a label regex should see. */
function plain(s: string): string {
  return s
    .slice(0, LINE_CAP)
    .replace(/\*\*|__/g, '')
    .replace(/^[^\p{L}\p{N}([#`"']+/u, '')
    .trim();
}

// ---------------------------------------------------------------------------------------------
// Labels and numbers

const ROMAN_RE = /^(?=[MDCLXVI])M{0,3}(?:C[MD]|D?C{0,3})(?:X[CL]|L?X{0,3})(?:I[XV]|V?I{0,3})$/;

function romanValue(s: string): number {
  const v: Record<string, number> = { I: 1, V: 5, X: 10, L: 50, C: 100, D: 500, M: 1000 };
  let total = 0;
  for (let i = 0; i < s.length; i++) {
    const a = v[s[i] ?? ''] ?? 0;
    const b = v[s[i + 1] ?? ''] ?? 0;
    total += a < b ? -a : a;
  }
  return total;
}

/** "2", "2.1", "II" → canonical key ("2", "2.1", "2"); null when it is not a number. */
function numberKey(raw: string): string | null {
  const s = raw.replace(/^#/, '');
  if (/^\d{1,4}(?:\.\d{1,3})*$/.test(s)) return s.split('.').map((p) => String(Number(p))).join('.');
  if (ROMAN_RE.test(s)) return String(romanValue(s));
  return null;
}

function singular(word: string): string {
  const w = word.toLowerCase();
  return w === 'optimisation' ? 'optimization' : w;
}

const LABEL_RE = new RegExp(`^(${PLAN_LABEL_WORDS.join('|')})\\s+#?(\\d{1,4}(?:\\.\\d{1,3})*|[IVXLCDM]{1,8})\\b([\\s\\S]*)$`, 'i');

interface Label {
  /** The label word ("milestone"), or null for a plain number ("1. Title"). */
  word: string | null;
  key: string;
  title: string;
}

/** A numbered task label at the start of a heading, or null. */
export function headingLabel(text: string): Label | null {
  const t = plain(text);
  const m = LABEL_RE.exec(t);
  if (m) {
    const key = numberKey(m[2] ?? '');
    if (key === null) return null;
    let rest = (m[3] ?? '').trim();
    if (rest.startsWith('(') || rest.startsWith('[')) {
      // "Phase 1 (weeks 1-2): Title": drop the aside, the separator must follow.
      const close = rest.indexOf(rest[0] === '(' ? ')' : ']');
      if (close < 0) return null;
      rest = rest.slice(close + 1).trim();
    }
    if (rest !== '' && !/^[:.)\-–—|]/.test(rest)) return null;
    return { word: singular(m[1] ?? ''), key, title: rest.replace(/^[:.)\-–—|\s]+/, '').trim() };
  }
  const p = /^(\d{1,3}|[IVXLC]{1,6})\s*[.):\-–—]\s+(\S[\s\S]*)$/.exec(t);
  if (p) {
    const key = numberKey(p[1] ?? '');
    if (key === null) return null;
    return { word: null, key, title: (p[2] ?? '').trim() };
  }
  return null;
}

/** P0-P4 and priority words; null when `s` is not one. */
function priorityWord(s: string): Priority | null {
  const t = s.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
  for (const tok of t.split(' ')) {
    const p = PRIORITY_WORDS[tok];
    if (p) return p;
  }
  return null;
}

/** A priority label in a heading or body line, with the text that carried it (to strip it). */
function priorityLabel(line: string, inHeading: boolean): { priority: Priority; match: string } | null {
  const t = line.slice(0, LINE_CAP).replace(/\*\*|__|`/g, '');
  // In prose "(high)" is too often something else; brackets count only in a heading.
  for (const re of inHeading ? [PRIO_LABEL_RE, PRIO_BRACKET_RE, PRIO_SUFFIX_RE] : [PRIO_LABEL_RE, PRIO_SUFFIX_RE]) {
    const m = re.exec(t);
    if (m) {
      const p = PRIORITY_WORDS[(m[1] ?? '').toLowerCase()];
      if (p) return { priority: p, match: m[0] };
    }
  }
  if (inHeading) {
    const m = PRIO_BARE_RE.exec(t);
    const p = m ? PRIORITY_WORDS[(m[1] ?? '').toLowerCase()] : undefined;
    if (m && p) return { priority: p, match: m[1] ?? '' };
  }
  return null;
}

function estimateLabel(line: string): { estimate: string; match: string } | null {
  const t = line.slice(0, LINE_CAP).replace(/\*\*|__|`/g, '');
  const m = EST_LABEL_RE.exec(t) ?? EST_PAREN_RE.exec(t);
  if (!m) return null;
  const estimate = (m[1] ?? '').trim().replace(/[.)]+$/, '').trim();
  return estimate === '' ? null : { estimate, match: m[0] };
}

/** Whether a line holds nothing but labels (priority, estimate, depends): such lines leave Context. */
function onlyLabels(line: string, matches: readonly string[]): boolean {
  let t = line.replace(/\*\*|__|`/g, '');
  for (const m of matches) t = t.replace(m, ' ');
  return /^[\s\-–—|·,;:*+>]*$/.test(t);
}

// ---------------------------------------------------------------------------------------------
// Tables

interface Table {
  line: number;
  header: string[];
  rows: Array<{ line: number; cells: string[] }>;
}

function splitRow(line: string): string[] {
  let t = line.trim();
  if (t.startsWith('|')) t = t.slice(1);
  if (t.endsWith('|') && !t.endsWith('\\|')) t = t.slice(0, -1);
  return t.split(/(?<!\\)\|/).map((c) => c.trim());
}

function tablesOf(nodes: readonly Node[]): Table[] {
  const tables: Table[] = [];
  for (let n = 0; n + 1 < nodes.length; n++) {
    const a = nodes[n];
    const b = nodes[n + 1];
    if (a?.kind !== 'text' || b?.kind !== 'text' || !a.text.includes('|')) continue;
    if (!/^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(b.text.slice(0, LINE_CAP))) continue;
    const table: Table = { line: a.idx, header: splitRow(a.text).map((h) => plain(h).toLowerCase()), rows: [] };
    let k = n + 2;
    for (; k < nodes.length; k++) {
      const r = nodes[k];
      if (r?.kind !== 'text' || !r.text.includes('|') || r.text.trim() === '') break;
      table.rows.push({ line: r.idx, cells: splitRow(r.text) });
    }
    tables.push(table);
    n = k - 1;
  }
  return tables;
}

const KEY_COL_RE = new RegExp(`^(?:#|no\\.?|nr\\.?|num(?:ber)?|id|order|seq(?:uence)?|${PLAN_LABEL_WORDS.join('|')})s?$`);
const TITLE_COL_RE = /^(?:work|title|name|description|deliverable|summary|goal|scope|what|objective|change|area|topic)/;
const PRIO_COL_RE = /priority|^prio\b|severity|importance|urgency/;
const EST_COL_RE = /estimate|effort|^time\b|duration|^size\b|days|hours|^eta\b/;
const DEP_COL_RE = /depend|^after\b|blocked by|requires|prereq|predecessor/;

interface RoadmapRow {
  line: number;
  word: string | null;
  key: string | null;
  title: string;
  priority: Priority | null;
  estimate: string | null;
  depends: string | null;
}

function roadmapRows(tables: readonly Table[]): RoadmapRow[] {
  const out: RoadmapRow[] = [];
  for (const t of tables) {
    const col = (re: RegExp, not: number[] = []): number => t.header.findIndex((h, i) => !not.includes(i) && re.test(h));
    const prio = col(PRIO_COL_RE);
    const est = col(EST_COL_RE, [prio]);
    const dep = col(DEP_COL_RE, [prio, est]);
    if (prio < 0 && est < 0 && dep < 0) continue;
    const keyCol = col(KEY_COL_RE, [prio, est, dep]);
    const titleCol = col(TITLE_COL_RE, [keyCol, prio, est, dep]);
    const headerWord = keyCol >= 0 ? (t.header[keyCol] ?? '').replace(/s$/, '') : '';
    for (const r of t.rows) {
      const cell = (i: number): string => (i >= 0 ? plain(r.cells[i] ?? '') : '');
      let word: string | null = null;
      let key: string | null = null;
      let title = cell(titleCol);
      const keyText = keyCol >= 0 ? cell(keyCol) : (r.cells.map((c) => plain(c)).find((c) => headingLabel(c) !== null) ?? '');
      const lab = headingLabel(keyText);
      if (lab) {
        word = lab.word;
        key = lab.key;
        if (title === '') title = lab.title;
      } else {
        const m = /(?:^|[^\w])#?(\d{1,4}(?:\.\d{1,3})*|[IVXLCDM]{1,8})\b/.exec(keyText);
        key = m ? numberKey(m[1] ?? '') : null;
        if (key !== null && (PLAN_LABEL_WORDS as readonly string[]).includes(headerWord)) word = singular(headerWord);
      }
      if (title === '' && keyCol < 0) title = plain(r.cells[0] ?? '');
      const p = prio >= 0 ? priorityWord(cell(prio)) : null;
      const e = est >= 0 ? cell(est).replace(/^[-–—]$/, '') : '';
      const d = dep >= 0 ? cell(dep) : '';
      out.push({ line: r.line, word, key, title, priority: p, estimate: e === '' ? null : e, depends: d === '' ? null : d });
    }
  }
  return out;
}

const STOP = new Set(['the', 'and', 'for', 'with', 'from', 'into', 'onto', 'of', 'to', 'in', 'on', 'a', 'an', 'by']);

function words(s: string): Set<string> {
  return new Set(
    s
      .toLowerCase()
      .split(/[^a-z0-9]+/)
      .filter((w) => w.length > 1 && !STOP.has(w)),
  );
}

function similar(a: string, b: string): boolean {
  const x = words(a);
  const y = words(b);
  if (x.size === 0 || y.size === 0) return false;
  let common = 0;
  for (const w of x) if (y.has(w)) common += 1;
  return common / Math.min(x.size, y.size) >= 0.6;
}

// ---------------------------------------------------------------------------------------------
// Commands

/**
 * Calls `visit(i)` for each character of `cmd` outside quotes and backslash escapes; `visit`
 * returns how many extra characters to skip, or a value to stop with.
 */
function scanUnquoted<T>(cmd: string, visit: (i: number) => number | { stop: T }): T | null {
  let q: string | null = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i] ?? '';
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"') i += 1;
      continue;
    }
    if (c === "'" || c === '"') q = c;
    else if (c === '\\') i += 1;
    else {
      const r = visit(i);
      if (typeof r !== 'number') return r.stop;
      i += r;
    }
  }
  return null;
}

/** Quote-aware scan for shell syntax opscrew does not have (DESIGN §3). */
function shellSyntax(cmd: string): string | null {
  const found = scanUnquoted<string>(cmd, (i) => {
    const c = cmd[i];
    if (c === ';' || c === '`' || c === '>' || c === '<') return { stop: c };
    if (c === '|' && cmd[i + 1] === '|') return { stop: '||' };
    if (c === '$' && cmd[i + 1] === '(') return { stop: '$(' };
    return 0;
  });
  if (found !== null) return found;
  return /^cd(?:\s|$)/.test(cmd) ? 'cd' : null;
}

/** Split on top-level `&&`: a chain that stops at the first failure is what Steps already do. */
function splitAndAnd(cmd: string): string[] {
  const parts: string[] = [];
  let start = 0;
  scanUnquoted<never>(cmd, (i) => {
    if (cmd[i] !== '&' || cmd[i + 1] !== '&') return 0;
    parts.push(cmd.slice(start, i).trim());
    start = i + 2;
    return 1;
  });
  parts.push(cmd.slice(start).trim());
  return parts.filter((p) => p !== '');
}

interface BlockCommands {
  /** Command lines, with `# expect` lines kept right after the command they check. */
  lines: string[];
  /** Problems to report: [line index in the plan, message, fix]. */
  problems: Array<{ idx: number; message: string; fix: string }>;
  /** A here-document or similar: the block cannot become commands. */
  unusable: boolean;
}

/** Whether an `# expect…` line is one the task parser accepts (else the whole task would be invalid). */
function validExpectation(line: string): boolean {
  const body = line.replace(/^#+\s*/, '');
  const exit = /^expect(?:ed)?[ \t]+exit(?:[ \t]+code)?[ \t]*:([\s\S]*)$/i.exec(body);
  if (exit) {
    const v = (exit[1] ?? '').trim();
    return /^\d{1,3}$/.test(v) && Number(v) <= 255;
  }
  const m = /^expect(?:ed)?(?:[ \t]+(?:output|stdout))?[ \t]*:([\s\S]*)$/i.exec(body);
  if (!m) return false;
  const v = (m[1] ?? '').trim();
  if (v === '') return false;
  const re = /^\/([\s\S]+)\/([a-z]*)$/.exec(v);
  if (!re) return true;
  const flags = re[2] ?? '';
  if (!/^[imsuv]*$/.test(flags) || new Set(flags).size !== flags.length) return false;
  try {
    new RegExp(re[1] ?? '', flags);
    return true;
  } catch {
    return false;
  }
}

/**
 * A runnable block as command lines: `$ ` stripped, comments dropped (`# expect` kept after its
 * command), `\` continuations joined, `&&` chains split. In a console transcript only `$ ` lines
 * are commands; `expectOutput` turns a command's single output line into `# expect:` (criteria).
 */
function blockCommands(node: Extract<Node, { kind: 'code' }>, expectOutput: boolean): BlockCommands {
  const out: BlockCommands = { lines: [], problems: [], unusable: false };
  const isConsole = node.lang === 'console' && node.lines.some((l) => /^\s*\$(?:\s|$)/.test(l));
  let pending: string | null = null;
  let pendingIdx = 0;
  let lastCmd = -1;
  let output: string[] = [];
  let hasExpect = false;
  const flushOutput = (): void => {
    if (expectOutput && lastCmd >= 0 && !hasExpect) {
      const seen = output.filter((o) => o.trim() !== '');
      const only = seen[0]?.trim();
      if (seen.length === 1 && only !== undefined && only.length <= 120) out.lines.push(`# expect: ${only}`);
    }
    output = [];
    hasExpect = false;
  };
  const emit = (text: string, idx: number): void => {
    const t = text.trim();
    if (t === '') return;
    if (/^export(?:\s|$)/.test(t) && !/^export[ \t]+[A-Za-z_][A-Za-z0-9_]*=/.test(t)) {
      out.problems.push({ idx, message: `\`${t.slice(0, 80)}\` is not a variable assignment opscrew understands; dropped`, fix: 'write `export NAME=value`' });
      return;
    }
    if (/<<-?\s*['"]?[A-Za-z_]/.test(t)) {
      out.unusable = true;
      out.problems.push({ idx, message: 'the block uses a here-document (<<EOF); opscrew runs no shell, so it was kept in Context, not Steps', fix: 'write the content as a file block (```ini file=/path) and a command that uses the file' });
      return;
    }
    for (const part of splitAndAnd(t)) {
      flushOutput();
      const bad = shellSyntax(part);
      if (bad) out.problems.push({ idx, message: `\`${part.slice(0, 80)}\` uses shell syntax (${bad}); opscrew runs no shell, so the runner will refuse it`, fix: 'split it into separate commands, one per line, without shell operators' });
      out.lines.push(part);
      lastCmd = out.lines.length - 1;
    }
  };
  node.lines.forEach((raw, k) => {
    const idx = node.idx + 1 + k;
    let t = raw.trim();
    if (pending !== null) {
      if (t.endsWith('\\')) {
        pending = `${pending} ${t.slice(0, -1).trim()}`;
        return;
      }
      const whole = `${pending} ${t}`;
      pending = null;
      emit(whole, pendingIdx);
      return;
    }
    if (t === '') return;
    if (t.startsWith('#')) {
      if (/^#+\s*expect(?:ed)?\b[^:]*:/i.test(t) && lastCmd >= 0) {
        const line = t.replace(/^#+\s*/, '# ');
        if (validExpectation(line)) {
          out.lines.push(line);
          hasExpect = true;
        } else out.problems.push({ idx, message: `\`${t.slice(0, 80)}\` is not a valid expectation; dropped`, fix: 'write `# expect: TEXT`, `# expect: /REGEX/` or `# expect exit: N`' });
      }
      return;
    }
    if (isConsole) {
      if (!/^\$(?:\s|$)/.test(t)) {
        output.push(t);
        return;
      }
      t = t.replace(/^\$\s*/, '');
    } else if (t.startsWith('$ ')) t = t.slice(2).trim();
    if (t === '') return;
    if (t.endsWith('\\')) {
      pending = t.slice(0, -1).trim();
      pendingIdx = idx;
      return;
    }
    emit(t, idx);
  });
  if (pending !== null) emit(pending, pendingIdx);
  flushOutput();
  return out;
}

const KNOWN_PROGRAMS = new Set([
  'curl', 'wget', 'kubectl', 'helm', 'docker', 'podman', 'systemctl', 'journalctl', 'ssh', 'vault', 'psql', 'mysql',
  'redis-cli', 'dig', 'nslookup', 'host', 'ping', 'nc', 'openssl', 'promtool', 'amtool', 'terraform', 'ansible',
  'git', 'ls', 'cat', 'grep', 'test', 'stat', 'df', 'du', 'free', 'ps', 'ss', 'netstat', 'ip', 'nginx', 'make',
  'jq', 'aws', 'gcloud', 'az', 'etcdctl', 'crictl', 'sysctl', 'getent', 'hostnamectl', 'timedatectl', 'uname',
  'lsblk', 'findmnt', 'certbot', 'consul', 'nomad', 'pg_isready', 'mongosh', 'logcli', 'head', 'tail', 'wc',
  'uptime', 'hostname', 'whoami', 'id', 'date', 'mount', 'ufw', 'iptables', 'nft', 'rabbitmqctl', 'kafka-topics',
]);

/** Whether an inline code span reads as a command line rather than a name or a value. */
function looksLikeCommand(span: string): boolean {
  const t = span.trim();
  const first = t.split(/\s+/)[0] ?? '';
  if (KNOWN_PROGRAMS.has(first)) return true;
  if (!/^(?:[a-z0-9][\w.+-]*|\.{0,2}\/[\w./-]+)$/.test(first) || !/\s/.test(t)) return false;
  return /\s--?[A-Za-z]/.test(t) || /\s(?:\.{0,2}\/|https?:\/\/)/.test(t);
}

const SUCCESS_RE = /^(?:succeeds|passes|works|is ok|returns? (?:0|success|successfully|without errors?)|exits? (?:0|cleanly|successfully|with(?: code| status)? 0)|runs? (?:clean(?:ly)?|without errors?)|reports? no errors?|has no errors?|is clean)\b/i;
const EXIT_RE = /^(?:exits?|returns?|fails?)\s+(?:with\s+)?(?:an?\s+)?exit\s+(?:code|status)\s+(\d{1,3})\b|^exits?\s+(?:with\s+)?(?:code\s+|status\s+)?(\d{1,3})\b/i;
const VERB_RE = /^(?:(?:should|must|will)\s+)?(?:lists?|returns?|shows?|contains?|prints?|outputs?|includes?|reports?|answers?|responds?|gives?|displays?|says|reads|echoe?s|yields?|matches|emits?|mentions?)\b\s*(?:with\s+)?([\s\S]*)$/i;
const NEG_VERB_RE = /^(?:does not|doesn't|do not|don't|should not|must not|no longer|never)\s+(?:lists?|shows?|contains?|prints?|includes?|mentions?|returns?|outputs?)\b\s*([\s\S]*)$/i;
const COMPARISON_RE = /\b(?:below|above|under|over|less|more|greater|fewer|at least|at most|between|than|within)\b|[<>≤≥]/i;
const FILLER_RE = /^(?:a|an|the|group|status|http|code|string|text|value|word|line|exactly|only|output|result|response|of)\s+/i;

interface CriterionCheck {
  command?: string;
  /** The item names a command but no result we can check: it stays manual. */
  manual?: boolean;
  expect?: string;
  /** A warning about the check the item got, or why it got none. */
  note?: { message: string; fix: string };
}

/** An expected result from the words after the verb: a code span, a quote, else the bare words. */
function expectedFrom(rest: string): { value: string; guessed: boolean } {
  const span = /`([^`]+)`/.exec(rest);
  if (span) return { value: (span[1] ?? '').trim(), guessed: false };
  const quoted = /"([^"]+)"|“([^”]+)”|'([^']+)'/.exec(rest);
  if (quoted) return { value: (quoted[1] ?? quoted[2] ?? quoted[3] ?? '').trim(), guessed: false };
  let t = rest.trim();
  for (let i = 0; i < 4 && FILLER_RE.test(t); i++) t = t.replace(FILLER_RE, '');
  t = t.split(/[,;(]|\s(?:and|or|when|after|within|for)\s/)[0] ?? '';
  t = t.trim().replace(/[.!:]+$/, '').trim();
  return { value: t, guessed: /\s/.test(t) };
}

/** What check a criterion item with an inline `command` gets (DESIGN §3 `# expect`). */
function checkOf(full: string): CriterionCheck {
  const text = full.slice(0, LINE_CAP);
  const spans = [...text.matchAll(/`([^`\n]+)`/g)];
  const cmdSpan = spans.find((m) => looksLikeCommand(m[1] ?? ''));
  if (!cmdSpan) return {};
  const command = (cmdSpan[1] ?? '').trim();
  let rest = text.slice((cmdSpan.index ?? 0) + cmdSpan[0].length).trim();
  rest = rest.replace(/^(?:→|->|=>|⇒)\s*/, 'returns ');
  rest = rest.replace(/^[,:]\s*/, '');
  if (/^[.;!]*$/.test(rest)) {
    return { command, note: { message: `criterion states no expected result for \`${command.slice(0, 80)}\`; it passes when the command exits 0`, fix: 'add `# expect: TEXT` under the command if the output must say something' } };
  }
  if (SUCCESS_RE.test(rest)) return { command };
  const ex = EXIT_RE.exec(rest);
  if (ex) {
    const code = Number(ex[1] ?? ex[2]);
    return code === 0 || code > 255 ? { command } : { command: `${command}\n# expect exit: ${code}` };
  }
  const neg = NEG_VERB_RE.exec(rest);
  if (neg) {
    const { value } = expectedFrom(neg[1] ?? '');
    if (value !== '' && !COMPARISON_RE.test(value)) {
      // "does not list X": a regex that fails when X appears anywhere in the output.
      return { command, expect: `/^(?![\\s\\S]*${value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')})/` };
    }
  }
  const verb = VERB_RE.exec(rest);
  if (verb) {
    const { value, guessed } = expectedFrom(verb[1] ?? '');
    if (value === '') {
      return { command, note: { message: `could not tell what \`${command.slice(0, 80)}\` should print; it passes when the command exits 0`, fix: 'quote the expected text, e.g. prints `active`' } };
    }
    if (guessed && COMPARISON_RE.test(value)) {
      return {
        manual: true,
        note: { message: `"${value}" is a comparison, which \`# expect\` cannot check, so the criterion stays manual (the task blocks here under the runbook brain until a person adds a check)`, fix: 'write an exact text or a /regex/ the output must match' },
      };
    }
    const first = command.split(/\s+/)[0];
    if (/^\d{3}$/.test(value) && first === 'curl' && !/\s(?:-\w*[wiI]|--write-out|--include|--head)\b/.test(command)) {
      return {
        command,
        expect: value,
        note: { message: `"${value}" looks like an HTTP status, but \`${command.slice(0, 80)}\` prints the body, not the status`, fix: "add -w '%{http_code}' to the curl command, or expect text from the body" },
      };
    }
    return guessed
      ? { command, expect: value, note: { message: `expected result "${value}" was taken from unquoted words`, fix: 'check it, or quote the exact text the output must contain' } }
      : { command, expect: value };
  }
  return {
    manual: true,
    note: { message: `criterion mentions \`${command.slice(0, 80)}\` but its expected result is not recognisable, so it stays manual (the task blocks here under the runbook brain until a person adds a check)`, fix: 'write it as "`COMMAND` prints `TEXT`" or add a ```sh block with `# expect: TEXT`' },
  };
}

// ---------------------------------------------------------------------------------------------
// Sections

interface CriterionDraft {
  idx: number;
  text: string;
  indent: number;
  block?: string[];
}

interface SectionParse {
  prose: string[];
  steps: string[];
  criteria: CriterionDraft[];
  rollbackCmds: string[];
  rollbackText: string[];
  depTexts: Array<{ idx: number; text: string }>;
  priority: { value: Priority; idx: number } | null;
  estimate: string | null;
}

type Mode = { kind: 'body' } | { kind: 'criteria' | 'rollback'; byHeading: number | null };

function codeForContext(node: Extract<Node, { kind: 'code' }>, relabel: boolean): string[] {
  const fence = '`'.repeat(Math.max(3, ...node.lines.map((l) => (/`{3,}/.exec(l)?.[0].length ?? 0) + 1)));
  // Kept whole (a file block keeps its path); Context is never run, whatever the info string says.
  return [`${fence}${relabel ? 'text' : node.info}`, ...node.lines, fence];
}

type Warn = (idx: number, message: string, fix?: string, field?: string) => void;

/** One section's parts. `initial` is the mode its first line is read in (a plan-level Rollback starts in rollback). */
function parseSection(nodes: readonly Node[], warn: Warn, initial: Mode = { kind: 'body' }): SectionParse {
  const s: SectionParse = { prose: [], steps: [], criteria: [], rollbackCmds: [], rollbackText: [], depTexts: [], priority: null, estimate: null };
  let mode: Mode = initial;
  let crit: CriterionDraft | null = null;
  let blank = false;
  let rollbackContinues = false;

  const startLabelled = (kind: 'criteria' | 'rollback', rest: string, idx: number): void => {
    mode = { kind, byHeading: null };
    crit = null;
    blank = false;
    rollbackContinues = false;
    const r = rest.trim();
    if (r === '') return;
    if (kind === 'criteria') {
      crit = { idx, text: r, indent: 0 };
      s.criteria.push(crit);
    } else {
      s.rollbackText.push(r);
      rollbackContinues = true;
    }
  };

  for (const node of nodes) {
    if (node.kind === 'heading') {
      crit = null;
      const t = plain(node.text);
      if (mode.kind !== 'body' && mode.byHeading !== null && node.level > mode.byHeading) {
        // A deeper heading inside a criteria/rollback subsection: a criterion named by the heading.
        if (mode.kind === 'criteria') {
          crit = { idx: node.idx, text: t, indent: 0 };
          s.criteria.push(crit);
        }
        continue;
      }
      if (CRITERIA_HEADING_RE.test(t)) mode = { kind: 'criteria', byHeading: node.level };
      else if (ROLLBACK_HEADING_RE.test(t)) mode = { kind: 'rollback', byHeading: node.level };
      else {
        mode = { kind: 'body' };
        const dep = DEPENDS_LABEL_RE.exec(t);
        if (dep) s.depTexts.push({ idx: node.idx, text: t });
        s.prose.push('', `**${t}**`, '');
      }
      continue;
    }
    if (node.kind === 'code') {
      const runnable = RUNNABLE_LANGUAGES.has(node.lang) && !node.file;
      if (mode.kind === 'criteria' && runnable) {
        const cmds = blockCommands(node, true);
        for (const p of cmds.problems) warn(p.idx, p.message, p.fix, 'Acceptance Criteria');
        const current = crit as CriterionDraft | null;
        const first = cmds.lines.find((l) => !l.startsWith('#')) ?? '';
        const target: CriterionDraft = current && current.block === undefined ? current : { idx: node.idx, text: `\`${first.slice(0, 120)}\` passes its checks`, indent: 0 };
        if (target !== current) s.criteria.push(target);
        if (!cmds.unusable && cmds.lines.length > 0) target.block = cmds.lines;
        else if (cmds.unusable) s.prose.push(...codeForContext(node, true));
        crit = null;
        continue;
      }
      if (mode.kind === 'criteria' && !runnable && node.lines.length === 1) {
        // "- [ ] `cmd` returns:" followed by a one-line ```json block: the block is the expected text.
        const current = crit as CriterionDraft | null;
        const only = node.lines[0]?.trim() ?? '';
        if (current && current.block === undefined && only !== '' && current.text.trimEnd().endsWith(':')) {
          current.text = `${current.text} ${only.startsWith('`') ? only : `\`${only}\``}`;
          continue;
        }
      }
      if (mode.kind === 'rollback' && runnable) {
        const cmds = blockCommands(node, false);
        for (const p of cmds.problems) warn(p.idx, p.message, p.fix, 'Rollback');
        if (cmds.unusable) s.prose.push(...codeForContext(node, true));
        else s.rollbackCmds.push(...cmds.lines.filter((l) => !l.startsWith('#')));
        continue;
      }
      if (runnable) {
        const cmds = blockCommands(node, false);
        for (const p of cmds.problems) warn(p.idx, p.message, p.fix, 'Steps');
        if (cmds.unusable) s.prose.push(...codeForContext(node, true));
        else s.steps.push(...cmds.lines);
        continue;
      }
      if (node.file) warn(node.idx, 'file blocks are kept in Context, not Steps', 'move the block into the task\'s ## Steps by hand if the runner should write the file', 'Steps');
      else if (node.lang === '' && node.lines.some((l) => /^\s*\$\s/.test(l) || KNOWN_PROGRAMS.has(l.trim().split(/\s+/)[0] ?? ''))) {
        warn(node.idx, 'code block without a language looks like commands but was kept in Context', 'tag it ```sh in the plan to import its lines as Steps', 'Steps');
      }
      s.prose.push(...codeForContext(node, false));
      continue;
    }
    // text line
    const raw = node.text;
    const trimmed = raw.trim();
    if (trimmed === '') {
      blank = true;
      rollbackContinues = false;
      if (mode.kind === 'body') s.prose.push('');
      continue;
    }
    const t = plain(raw);
    const li = listItem(raw);
    const bodyText = li ? plain(li.text) : t;
    const critLabel = CRITERIA_LABEL_RE.exec(bodyText);
    const rbLabel = ROLLBACK_LABEL_RE.exec(bodyText);
    // A label must be alone or end in a colon: "Verify the config" is an ordinary sentence.
    const isLabel = (m: RegExpExecArray | null): boolean => m !== null && (m[1] !== undefined || /^[*_]*[A-Za-z][\w\s-]*[*_]*:?[*_]*$/.test(raw.trim()));
    if (!li || li.indent < 2) {
      if (isLabel(critLabel) && critLabel) {
        startLabelled('criteria', critLabel[1] ?? '', node.idx);
        continue;
      }
      if (isLabel(rbLabel) && rbLabel) {
        startLabelled('rollback', rbLabel[1] ?? '', node.idx);
        continue;
      }
    }
    const dep = DEPENDS_LABEL_RE.exec(bodyText);
    if (dep && (!li || li.indent < 2)) {
      s.depTexts.push({ idx: node.idx, text: bodyText });
      continue;
    }
    if (mode.kind === 'criteria') {
      const current = crit as CriterionDraft | null;
      if (li && li.indent < 4 && (current === null || li.indent <= current.indent)) {
        crit = { idx: node.idx, text: li.text, indent: li.indent };
        s.criteria.push(crit);
        blank = false;
        continue;
      }
      if (current && (li || /^\s/.test(raw) || !blank)) {
        // Nested items and continuation lines belong to the criterion above.
        if (current.block === undefined) current.text = `${current.text} ${li ? li.text : trimmed}`.trim();
        continue;
      }
      if (mode.byHeading === null) mode = { kind: 'body' };
      else {
        s.prose.push(raw);
        continue;
      }
    }
    if (mode.kind === 'rollback') {
      if (li) {
        s.rollbackText.push(li.text);
        rollbackContinues = true;
        continue;
      }
      if (rollbackContinues || mode.byHeading !== null || !blank) {
        const last = s.rollbackText.length - 1;
        if (rollbackContinues && last >= 0) s.rollbackText[last] = `${s.rollbackText[last] ?? ''} ${trimmed}`;
        else s.rollbackText.push(trimmed);
        rollbackContinues = true;
        continue;
      }
      mode = { kind: 'body' };
    }
    blank = false;
    // Body: labels leave the prose, everything else is kept as written.
    const matches: string[] = [];
    const p = priorityLabel(raw, false);
    if (p) {
      if (!s.priority) s.priority = { value: p.priority, idx: node.idx };
      matches.push(p.match);
    }
    const e = estimateLabel(raw);
    if (e) {
      s.estimate ??= e.estimate;
      matches.push(e.match);
    }
    if (matches.length > 0 && onlyLabels(raw, matches)) continue;
    s.depTexts.push({ idx: node.idx, text: t });
    s.prose.push(raw);
  }
  return s;
}

/** Rollback text items that are only inline commands ("Run `kubectl rollout undo …`") become commands. */
function rollbackParts(cmds: readonly string[], texts: readonly string[]): { cmds: string[]; text: string[] } {
  const out = { cmds: [...cmds], text: [] as string[] };
  for (const t of texts) {
    const spans = [...t.slice(0, LINE_CAP).matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? '');
    const left = t.slice(0, LINE_CAP).replace(/`[^`\n]+`/g, ' ');
    if (spans.length > 0 && spans.every(looksLikeCommand) && /^[\s,.;:]*(?:(?:run|execute|then|and|with|using|via|or)[\s,.;:]*)*$/i.test(left)) {
      out.cmds.push(...spans.map((c) => c.trim()));
    } else out.text.push(t.trim());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Dependencies

interface Ref {
  word: string | null;
  key: string | null;
  /** "the previous phase". */
  previous?: boolean;
  /** An explicit existing task id. */
  taskId?: string;
  text: string;
}

const DEP_TRIGGER_RE = /\b(?:after|depends? on|dependent on|requires|required|blocked by|once|following|builds? on|needs|waits? for|prerequisites?|prereqs?)\b|^(?:depends on|dependencies|depends|blocked by|requires|prerequisites?|prereqs?|after)\s*:/gi;
const REF_RE = new RegExp(`\\b(${PLAN_LABEL_WORDS.join('|')}|section)s?\\s+#?(\\d{1,4}(?:\\.\\d{1,3})*|[IVXLCDM]{1,8})\\b((?:\\s*(?:,|and|&|\\+|or)\\s*#?(?:\\d{1,4}(?:\\.\\d{1,3})*|[IVXLCDM]{1,8})\\b)*)`, 'gi');
const PREVIOUS_RE = new RegExp(`\\b(?:the\\s+)?(?:previous|prior|preceding|last)\\s+(?:${PLAN_LABEL_WORDS.join('|')}|section|one)\\b`, 'i');

/** References to other sections in the text that follows a dependency word. */
function depRefs(text: string): Ref[] {
  const t = text.slice(0, LINE_CAP).replace(/\*\*|__|`/g, '');
  const refs: Ref[] = [];
  let triggers = 0;
  for (const m of t.matchAll(DEP_TRIGGER_RE)) {
    // A sentence states an order a few times at most; a line full of them is not worth reading.
    if (++triggers > 16) break;
    const from = (m.index ?? 0) + m[0].length;
    // The clause that follows: up to the end of the sentence, at most 120 characters.
    const clause = (t.slice(from, from + 120).split(/[.;!?](?:\s|$)|\n/)[0] ?? '');
    if (PREVIOUS_RE.test(clause)) refs.push({ word: null, key: null, previous: true, text: clause.trim() });
    for (const id of clause.matchAll(/\bTASK-\d{3,}\b/g)) refs.push({ word: null, key: null, taskId: id[0], text: id[0] });
    for (const r of clause.matchAll(REF_RE)) {
      const word = singular(r[1] ?? '');
      const nums = [r[2] ?? '', ...((r[3] ?? '').match(/\d{1,4}(?:\.\d{1,3})*|[IVXLCDM]{1,8}/g) ?? [])];
      for (const n of nums) {
        const key = numberKey(n);
        if (key !== null) refs.push({ word: word === 'section' ? null : word, key, text: `${r[1] ?? ''} ${n}` });
      }
    }
  }
  return refs;
}

/** Dependency cell of a roadmap table: "1", "M1, M2", "Phase 1 & 2", "TASK-004", "—". */
function cellRefs(cell: string): Ref[] {
  const refs: Ref[] = [];
  for (const id of cell.matchAll(/\bTASK-\d{3,}\b/g)) refs.push({ word: null, key: null, taskId: id[0], text: id[0] });
  const rest = cell.replace(/\bTASK-\d{3,}\b/g, ' ');
  const lab = [...rest.matchAll(REF_RE)];
  if (lab.length > 0) return [...refs, ...depRefs(`after ${rest}`)];
  for (const n of rest.match(/\d{1,4}(?:\.\d{1,3})*|\b[IVXLCDM]{1,8}\b/g) ?? []) {
    const key = numberKey(n);
    if (key !== null) refs.push({ word: null, key, text: n });
  }
  return refs;
}

const IN_ORDER_RE = new RegExp(
  `\\b(?:in (?:this |that |the given |strict |the listed )?order\\b(?!\\s+to\\b)|sequential(?:ly)?|one after (?:the )?other|each (?:${PLAN_LABEL_WORDS.join('|')}) (?:depends on|requires|builds on|starts after|follows) the (?:previous|prior|preceding) one)`,
  'i',
);

// ---------------------------------------------------------------------------------------------
// The split

interface Section {
  heading: Extract<Node, { kind: 'heading' }>;
  label: Label | null;
  /** Node range [start, end) after the heading. */
  start: number;
  end: number;
}

function sectionEnd(nodes: readonly Node[], from: number, level: number): number {
  for (let k = from; k < nodes.length; k++) {
    const n = nodes[k];
    if (n?.kind === 'heading' && n.level <= level) return k;
  }
  return nodes.length;
}

function taskSections(nodes: readonly Node[]): Section[] {
  const heads = nodes.map((n, k) => ({ n, k })).filter((x): x is { n: Extract<Node, { kind: 'heading' }>; k: number } => x.n.kind === 'heading');
  const labelled = heads.map((h) => ({ ...h, label: headingLabel(h.n.text) })).filter((h) => h.label !== null);
  const worded = labelled.filter((h) => h.label?.word !== null);
  const plainNum = labelled.filter((h) => h.label?.word === null && !NOT_A_TASK_RE.test(h.label.title));
  const pick = worded.length > 0 ? worded : plainNum;
  if (pick.length > 0) {
    // The shallowest level with two or more numbered headings: a lone "# Phase 1 — …" title over
    // "## Step 1/2/3" is a plan of steps, not one task.
    const levels = [...new Set(pick.map((h) => h.n.level))].sort((a, b) => a - b);
    const level = levels.find((l) => pick.filter((h) => h.n.level === l).length >= 2) ?? levels[0] ?? 2;
    const chosen = pick.filter((h) => h.n.level === level);
    return chosen.map((h) => ({ heading: h.n, label: h.label, start: h.k + 1, end: sectionEnd(nodes, h.k + 1, level) }));
  }
  // Fallback: H2 (else H3) sections that hold commands or a criteria list.
  const level = heads.some((h) => h.n.level === 2) ? 2 : 3;
  const sections: Section[] = [];
  for (const h of heads) {
    if (h.n.level !== level || NOT_A_TASK_RE.test(plain(h.n.text))) continue;
    const end = sectionEnd(nodes, h.k + 1, level);
    const body = nodes.slice(h.k + 1, end);
    const hasWork = body.some(
      (n) =>
        (n.kind === 'code' && RUNNABLE_LANGUAGES.has(n.lang)) ||
        (n.kind === 'heading' && CRITERIA_HEADING_RE.test(plain(n.text))) ||
        (n.kind === 'text' && CRITERIA_LABEL_RE.test(plain(listItem(n.text)?.text ?? n.text)) && /:\s*(?:\*\*|__)?\s*$|:\s*\S/.test(n.text)),
    );
    if (hasWork) sections.push({ heading: h.n, label: null, start: h.k + 1, end });
  }
  return sections;
}

const RB_TEXT_FIX = 'write the rollback as a ```sh block in the plan, or add ## Rollback with commands to the task';

/** What the importer looks for, for the "no tasks" message. */
export const PLAN_HEADINGS_HELP =
  'numbered headings such as "## Milestone 1: …", "## Task 2: …", "## Phase 1 — …", "## Optimization 3: …", "## Part II: …" or "## 1. Title"; ' +
  'without those, H2 sections that contain a ```sh/bash/console block or a "Done when:"/"Success criteria"/"Acceptance criteria" list';

function contextText(lines: readonly string[]): string {
  const out: string[] = [];
  for (const l of lines) {
    if (l.trim() === '' && (out.length === 0 || out[out.length - 1] === '')) continue;
    out.push(l.trimEnd());
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out.join('\n');
}

const SEPARATOR_CHARS = new Set([' ', '\t', ':', '-', '–', '—', '|']);

/** Trim spaces and separators (":", "-", "—", "|") from both ends, in linear time. */
function trimSeparators(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && SEPARATOR_CHARS.has(s[a] ?? '')) a += 1;
  while (b > a && SEPARATOR_CHARS.has(s[b - 1] ?? '')) b -= 1;
  return s.slice(a, b);
}

function titleCase(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** Split a plan into tasks. `file` names the plan in warnings and in each task's Context. */
export function splitPlan(text: string, file: string, opts: SplitOptions): Result<PlanSplit> {
  if (typeof text !== 'string' || text.includes('\u0000')) return fail('PLAN_NOT_TEXT', `${file}: not a text file`);
  const warnings: Issue[] = [];
  const warn = (idx: number, message: string, fix?: string, field?: string): void => {
    if (warnings.length >= 500) return;
    warnings.push({ file, line: idx + 1, ...(field ? { field } : {}), message, ...(fix ? { fix } : {}) });
  };
  const lines = splitLines(text.replace(/^\uFEFF/, ''));
  const nodes = toNodes(lines);
  for (const n of nodes) {
    if (n.kind === 'code' && !n.closed) warn(n.idx, 'code block opened here is never closed; everything after it was read as code', 'close the block with a line of backticks');
  }
  const firstH1 = nodes.find((n): n is Extract<Node, { kind: 'heading' }> => n.kind === 'heading' && n.level === 1);
  const planTitle = firstH1 ? plain(firstH1.text) : (file.split(/[\\/]/).pop() ?? file).replace(/\.md$/i, '');

  const sections = taskSections(nodes);
  if (sections.length === 0) {
    return fail('PLAN_NO_TASKS', `${file}: found no task sections; looked for ${PLAN_HEADINGS_HELP}`);
  }
  const inTask = new Set<number>();
  for (const s of sections) for (let k = s.start - 1; k < s.end; k++) inTask.add(k);

  // Plan-level parts outside the task sections: rollback, criteria, "in order" statements.
  const planRollback = { cmds: [] as string[], text: [] as string[], idx: -1 };
  let inOrder = false;
  for (let k = 0; k < nodes.length; k++) {
    const n = nodes[k];
    if (!n || inTask.has(k)) continue;
    if (n.kind === 'text' && IN_ORDER_RE.test(n.text.slice(0, LINE_CAP))) inOrder = true;
    if (n.kind !== 'heading') continue;
    const t = plain(n.text);
    if (ROLLBACK_HEADING_RE.test(t) || CRITERIA_HEADING_RE.test(t)) {
      const end = sectionEnd(nodes, k + 1, n.level);
      const body = nodes.slice(k + 1, end).filter((_, j) => !inTask.has(k + 1 + j));
      if (ROLLBACK_HEADING_RE.test(t)) {
        const parsed = parseSection(body, warn, { kind: 'rollback', byHeading: n.level });
        planRollback.idx = n.idx;
        planRollback.cmds.push(...parsed.rollbackCmds);
        planRollback.text.push(...parsed.rollbackText);
      } else {
        warn(n.idx, `plan-level "${t}" is not attached to any task`, 'move each criterion under the section of the task it proves');
      }
    }
  }

  const planRb = rollbackParts(planRollback.cmds, planRollback.text);
  const planRbUsers: string[] = [];
  const planRbTextUsers: string[] = [];
  const rows = roadmapRows(tablesOf(nodes));
  const usedRows = new Set<RoadmapRow>();
  const labelWords = new Set(sections.map((s) => s.label?.word ?? null));

  interface Draft {
    section: Section;
    task: PlanTask;
    refs: Array<{ ref: Ref; idx: number }>;
  }
  const drafts: Draft[] = [];
  for (const sec of sections) {
    const h = sec.heading;
    const parsed = parseSection(nodes.slice(sec.start, sec.end), warn);
    // Heading labels: priority and estimate come off the title.
    let titleText = sec.label ? sec.label.title : plain(h.text);
    const hp = priorityLabel(titleText, true);
    if (hp) titleText = titleText.replace(hp.match, ' ');
    const he = estimateLabel(titleText);
    if (he) titleText = titleText.replace(he.match, ' ');
    titleText = trimSeparators(
      titleText
        .replace(/[([](?:after|depends on|requires|blocked by|needs|once)\b[^)\]]{0,200}[)\]]/gi, ' ')
        .replace(/[([]\s*[)\]]/g, ' ')
        .replace(/\s+/g, ' '),
    );

    const row = rows.find(
      (r) =>
        !usedRows.has(r) &&
        ((sec.label !== null && r.key !== null && r.key === sec.label.key && (r.word === null || sec.label.word === null || r.word === sec.label.word)) ||
          (r.key === null && r.title !== '' && similar(r.title, titleText || plain(h.text)))),
    );
    if (row) usedRows.add(row);
    if (titleText === '') titleText = row?.title || (sec.label?.word ? `${titleCase(sec.label.word)} ${sec.label.key}` : plain(h.text));
    if (titleText.trim() === '') titleText = `Section at line ${h.idx + 1} of ${file}`;

    // Only what the plan states; the default is filled in after the "no priority" warnings.
    let priority: Priority | undefined;
    const local = hp?.priority ?? parsed.priority?.value;
    if (local) {
      priority = local;
      if (row?.priority && row.priority !== local) {
        warn(h.idx, `the section says priority ${local} but the roadmap table (line ${row.line + 1}) says ${row.priority}; using ${local}`, 'make the two agree');
      }
    } else if (row?.priority) priority = row.priority;
    const estimate = he?.estimate ?? parsed.estimate ?? row?.estimate ?? undefined;

    const criteria: NonNullable<NewTaskInput['criteria']> = [];
    for (const c of parsed.criteria) {
      const text = c.text.trim();
      if (text === '') continue;
      if (c.block) {
        criteria.push({ text, command: c.block.join('\n') });
        continue;
      }
      if (/^N\/A\b/i.test(text)) {
        if (/^N\/A\b[ \t]*(?:[-–—:][ \t]*)?$/i.test(text)) {
          warn(c.idx, 'N/A criterion gives no reason; it was left out', 'write `N/A - why it does not apply`', 'Acceptance Criteria');
        } else criteria.push({ text });
        continue;
      }
      const check = checkOf(text);
      if (check.note) warn(c.idx, check.note.message, check.note.fix, 'Acceptance Criteria');
      if (check.command !== undefined && !check.manual) {
        criteria.push({ text, command: check.command, ...(check.expect !== undefined ? { expect: check.expect } : {}) });
        continue;
      }
      criteria.push({ text });
      if (check.manual) continue; // its note already says why it stays manual
      warn(
        c.idx,
        `manual criterion "${text.slice(0, 80)}": no command proves it, so under the runbook brain the task blocks here until a person adds a check`,
        'add a ```sh block with the command and `# expect: TEXT` under it in the task, or mark it `N/A - reason`',
        'Acceptance Criteria',
      );
    }

    const context = [...parsed.prose];
    const own = rollbackParts(parsed.rollbackCmds, parsed.rollbackText);
    const fromPlan = own.cmds.length === 0 && own.text.length === 0;
    const { cmds: rollback, text: rbText } = fromPlan ? planRb : own;
    if (fromPlan && rollback.length > 0) planRbUsers.push(titleText);
    if (rbText.length > 0) {
      context.push('', `Rollback (from the plan): ${rbText.join(' ')}`);
      if (fromPlan) planRbTextUsers.push(titleText);
      else {
        warn(h.idx, `rollback for "${titleText}" is plain text, so it went into Context; the runner has no rollback commands to run for this task`, RB_TEXT_FIX, 'Rollback');
      }
    }
    context.push('', `Imported from ${file} § "${h.text}" (line ${h.idx + 1}) of the plan "${planTitle}".`);

    if (parsed.steps.length === 0 && criteria.length === 0) {
      warn(h.idx, `"${titleText}" has no commands and no acceptance criteria: the runner has nothing to run or prove`, 'add a ```sh block and a "Done when:" list to the section');
    } else if (criteria.length === 0) {
      warn(h.idx, `"${titleText}" has no acceptance criteria: nothing proves it is done`, 'add a "Done when:" list with a command per item');
    }

    const task: PlanTask = {
      id: opts.nextId(),
      title: titleText,
      ...(priority ? { priority } : {}),
      tags: ['imported'],
      context: contextText(context),
      steps: parsed.steps,
      criteria,
      rollback,
      sourceLine: h.idx + 1,
      ...(estimate ? { estimate, extra: { estimate } } : {}),
    };
    const refs: Draft['refs'] = [];
    for (const r of depRefs(plain(h.text))) refs.push({ ref: r, idx: h.idx });
    for (const d of parsed.depTexts) {
      const labelled = DEPENDS_LABEL_RE.exec(d.text);
      const found = labelled ? cellRefs(labelled[1] ?? '') : depRefs(d.text);
      for (const r of found) refs.push({ ref: r, idx: d.idx });
    }
    if (row?.depends) for (const r of cellRefs(row.depends)) refs.push({ ref: r, idx: row.line });
    drafts.push({ section: sec, task, refs });
  }

  if (planRbTextUsers.length > 0) {
    warn(planRollback.idx, `the plan's rollback is plain text, so it went into the Context of ${planRbTextUsers.length} task(s) (${planRbTextUsers.join('; ')}); the runner has no rollback commands to run`, RB_TEXT_FIX, 'Rollback');
  }
  if (planRbUsers.length > 1) {
    warn(planRollback.idx, `the plan-level rollback commands were copied into ${planRbUsers.length} tasks (${planRbUsers.join('; ')}); a failed step of any of them runs all of it`, 'trim each task\'s ## Rollback to what undoes that task', 'Rollback');
  }
  if (!drafts.some((d) => d.task.priority !== undefined)) {
    // Nothing in the plan ranks the work: say so once rather than per task.
    warn(0, 'the plan gives no priorities; every task is medium', 'add a roadmap table with a Priority column or a `Priority: high` line per section');
  } else {
    for (const d of drafts) if (!d.task.priority) warn(d.section.heading.idx, `no priority for "${d.task.title}"; it is medium`, 'add `Priority: high` (or P0-P3) to the section or a row to the roadmap table');
  }
  for (const d of drafts) d.task.priority ??= 'medium';
  for (const r of rows) {
    if (!usedRows.has(r) && (r.priority || r.estimate)) warn(r.line, `roadmap row "${r.title || r.key || ''}" matches no task section; its priority/estimate were not used`, 'name the row like its section (same number or title)');
  }

  // Resolve references to ids of this import.
  const byKey = (word: string | null, key: string): Draft | undefined =>
    drafts.find((d) => d.section.label !== null && d.section.label.key === key && (d.section.label.word === null || word === null || d.section.label.word === word));
  drafts.forEach((d, i) => {
    const deps: string[] = [];
    const add = (id: string | undefined): void => {
      if (id && id !== d.task.id && !deps.includes(id)) deps.push(id);
    };
    for (const { ref, idx } of d.refs) {
      if (ref.taskId) add(ref.taskId);
      else if (ref.previous) add(drafts[i - 1]?.task.id);
      else if (ref.key !== null) {
        const target = byKey(ref.word, ref.key);
        if (target) add(target.task.id);
        else if (ref.word === null || labelWords.has(ref.word) || labelWords.has(null)) warn(idx, `"${ref.text}" names no task section of this plan; no dependency was added`, 'refer to a numbered section of this plan, or to a task id (TASK-NNN)', 'depends_on');
      }
    }
    if (inOrder && i > 0) add(drafts[i - 1]?.task.id);
    if (deps.length > 0) d.task.depends_on = deps;
  });
  dropCycles(drafts.map((d) => d.task), (t, dep) => warn(t.sourceLine - 1, `dependency of ${t.id} on ${dep} would close a cycle; dropped`, 'check the order the plan states', 'depends_on'));

  return ok({ title: planTitle, tasks: drafts.map((d) => d.task), warnings: warnings.sort((a, b) => a.line - b.line) });
}

/**
 * Removes dependency edges that would make the imported tasks wait for each other forever. Tasks
 * are visited in plan order, so the edge dropped is the earliest task's, which points forward: a
 * section waiting on a later one is the likelier misreading.
 */
function dropCycles(tasks: PlanTask[], report: (t: PlanTask, dep: string) => void): void {
  const byId = new Map(tasks.map((t) => [t.id ?? '', t]));
  const reaches = (from: string, to: string, seen = new Set<string>()): boolean => {
    if (from === to) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return (byId.get(from)?.depends_on ?? []).some((d) => reaches(d, to, seen));
  };
  for (const t of tasks) {
    const deps = t.depends_on ?? [];
    const kept: string[] = [];
    for (const d of deps) {
      t.depends_on = kept;
      if (byId.has(d) && reaches(d, t.id ?? '')) report(t, d);
      else kept.push(d);
    }
    if (kept.length > 0) t.depends_on = kept;
    else delete t.depends_on;
  }
}
