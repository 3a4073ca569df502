// Parse a task file into a typed Task. One linear pass over the lines; never throws: every problem
// comes back as an Issue with the file, line, field and a fix. Rules: DESIGN §3, plus these choices:
// - A `**File:** \`PATH\`` line makes the next fenced block a file block; blank lines may sit
//   between them, any other text may not. The marker wins over the block's language tag.
// - In Acceptance Criteria, `- [ ]`/`- [x]` items at any indent and plain top-level bullets are
//   criteria; a runnable block after an item (indented or not) before the next item verifies it;
//   a runnable block under a subsection heading with no item is a criterion named by the heading.
// - A deeper heading belongs to the section above it unless it names another section exactly;
//   loose names ("... steps") count only at level ≥ 2, so an H1 title is never a section by accident.
// - Expectations attach to the previous command of the same block; elsewhere they are an error.
// - Unclosed code blocks, heredocs, `\` at the end of a block and N/A without a reason are errors.
import type { Issue } from './errors.js';
import { readFrontMatter } from './frontmatter.js';
import {
  EVIDENCE_BEGIN,
  EVIDENCE_BEGIN_NOEOL,
  EVIDENCE_END,
  closesFence,
  dedent,
  heading,
  listItem,
  openingFence,
  splitLines,
  type FenceOpen,
} from './markdown.js';
import { TASK_ID_RE, validateFrontMatter } from './task-schema.js';
import type { YamlPathOptions } from './yaml.js';
import type { CommandItem, Criterion, Expectation, SectionInfo, StepItem, Task } from './task-types.js';

export type ParseResult = { ok: true; task: Task; warnings: Issue[] } | { ok: false; issues: Issue[]; id?: string };

type SectionName = NonNullable<SectionInfo['name']>;

/** Fence languages whose lines are commands. Every other block is documentation. */
export const RUNNABLE_LANGUAGES: ReadonlySet<string> = new Set(['sh', 'bash', 'shell', 'console']);

/** Cap on reported issues so a garbage file gives a readable answer. */
const MAX_ISSUES = 100;

// Exact heading texts (normalized) that always start their section, even nested under another one.
const STRONG: Record<string, SectionName> = {
  context: 'context',
  background: 'context',
  preflight: 'preflight',
  'pre-flight': 'preflight',
  'preflight checks': 'preflight',
  'pre-flight checks': 'preflight',
  steps: 'steps',
  'implementation steps': 'steps',
  'acceptance criteria': 'acceptance',
  'success criteria': 'acceptance',
  'done when': 'acceptance',
  'definition of done': 'acceptance',
  rollback: 'rollback',
  'roll back': 'rollback',
  'rollback plan': 'rollback',
  'rollback steps': 'rollback',
  'out of scope': 'out-of-scope',
  'out-of-scope': 'out-of-scope',
  'non-goals': 'out-of-scope',
  'verification evidence': 'evidence',
};

function normalizeHeading(text: string): string {
  // Section names are short; capping the text keeps every pattern below linear.
  return text
    .slice(0, 200)
    .toLowerCase()
    .replace(/[*_`]/g, '')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/^[\d.)\s]+/, '')
    .trimEnd().replace(/[:.]+$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Which section a heading names. `strong` = an exact section name; loose matches only count at level ≥ 2. */
export function classifyHeading(text: string): { name: SectionName; strong: boolean } | null {
  const t = normalizeHeading(text);
  const strong = STRONG[t];
  if (strong) return { name: strong, strong: true };
  let name: SectionName | null = null;
  if (t.startsWith('verification evidence')) name = 'evidence';
  else if (/out[ -]of[ -]scope|non-goal/.test(t)) name = 'out-of-scope';
  else if (/acceptance criteria|success criteria|done when|definition of done/.test(t)) name = 'acceptance';
  else if (/\broll ?back\b/.test(t)) name = 'rollback';
  else if (/\bpre-?flight\b/.test(t)) name = 'preflight';
  else if (/\bsteps\b/.test(t)) name = 'steps';
  else if (/\bcontext\b/.test(t)) name = 'context';
  return name ? { name, strong: false } : null;
}

const FILE_MARKER_RE = /^\s*(?:[-*+]\s+)?(?:\*\*|__)?File(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*`([^`]+)`\s*:?\s*$/i;
const EXPORT_RE = /^export[ \t]+([A-Za-z_][A-Za-z0-9_]*)=([\s\S]*)$/;
const HEREDOC_RE = /<<-?\s*['"]?[A-Za-z_][A-Za-z0-9_]*['"]?/;
const NA_RE = /^N\/A\b[ \t]*(?:[-–—:][ \t]*)?([\s\S]*)$/i;
const ALLOWED_REGEX_FLAGS = /^[imsuv]*$/;

/** A `**File:** \`PATH\`` line. Such lines are short; the length cap keeps the pattern linear. */
function fileMarker(line: string): RegExpExecArray | null {
  if (line.length > 2048 || !/file/i.test(line)) return null;
  return FILE_MARKER_RE.exec(line);
}

interface BlockLine {
  text: string;
  line: number;
}

interface Block {
  open: FenceOpen;
  line: number;
  lang: string;
  attrs: Record<string, string>;
  content: BlockLine[];
  /** Path from a `**File:** \`PATH\`` line right above the block. */
  markerPath?: string;
}

interface CriterionDraft {
  line: number;
  text: string;
  checked: boolean;
  indent: number;
  items: StepItem[];
  runnable: boolean;
  continues: boolean;
}

/** Split a fence info string into its language and `key=value` attributes (values may be quoted). */
export function parseInfoString(info: string): { lang: string; attrs: Record<string, string> } {
  const tokens = info.slice(0, 2048).match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? [];
  const attrs: Record<string, string> = {};
  let lang = '';
  tokens.forEach((tok, i) => {
    const eq = tok.indexOf('=');
    if (eq > 0) {
      const key = tok.slice(0, eq).toLowerCase();
      let value = tok.slice(eq + 1);
      if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) value = value.slice(1, -1);
      attrs[key] = value;
    } else if (i === 0) {
      lang = tok.replace(/^\{?\.?/, '').replace(/\}$/, '').toLowerCase();
    }
  });
  return { lang, attrs };
}

/** Text a task-file reader should refuse: NUL bytes, or mostly control characters / decoding debris. */
function looksBinary(text: string): boolean {
  if (text.includes('\u0000')) return true;
  const sample = text.length > 65_536 ? text.slice(0, 65_536) : text;
  if (sample.length === 0) return false;
  let odd = 0;
  for (let i = 0; i < sample.length; i++) {
    const c = sample.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x0c && c !== 0x1b) || c === 0x7f || c === 0xfffd) odd += 1;
  }
  return odd > 8 && odd / sample.length > 0.05;
}

function endsWithContinuation(s: string): boolean {
  let n = 0;
  for (let i = s.length - 1; i >= 0 && s[i] === '\\'; i--) n += 1;
  return n % 2 === 1;
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && ((t[0] === '"' && t.endsWith('"')) || (t[0] === "'" && t.endsWith("'")))) return t.slice(1, -1);
  return t;
}

function idFromRaw(text: string): string | undefined {
  const head = text.slice(0, 20_000);
  const m = /^id:[ \t]*["']?(TASK-\d{3,})["']?[ \t]*(?:#[^\r\n]*)?\r?$/m.exec(head);
  return m?.[1];
}

const SECTION_LABELS: Record<SectionName, string> = {
  context: 'Context',
  preflight: 'Preflight',
  steps: 'Steps',
  acceptance: 'Acceptance Criteria',
  rollback: 'Rollback',
  'out-of-scope': 'Out of Scope',
  evidence: 'Verification Evidence',
};

function sectionLabel(name: SectionName | null): string {
  return name ? SECTION_LABELS[name] : 'body';
}

function basenameTitle(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? file;
  return base.replace(/\.md$/i, '') || file;
}

class Collector {
  readonly issues: Issue[] = [];
  readonly warnings: Issue[] = [];
  constructor(readonly file: string) {}
  error(line: number, message: string, fix?: string, field?: string): void {
    if (this.issues.length >= MAX_ISSUES) return;
    this.issues.push({ file: this.file, line, ...(field ? { field } : {}), message, ...(fix ? { fix } : {}) });
  }
  warn(line: number, message: string, fix?: string, field?: string): void {
    if (this.warnings.length >= MAX_ISSUES) return;
    this.warnings.push({ file: this.file, line, ...(field ? { field } : {}), message, ...(fix ? { fix } : {}) });
  }
}

/** Parse a `# expect...` comment. null: an ordinary comment. */
function parseExpectation(comment: string, line: number, out: Collector, field: string): Expectation | 'bad' | null {
  const body = comment.replace(/^#+[ \t]*/, '');
  if (!/^expect(?:ed)?\b/i.test(body)) return null;
  const exit = /^expect(?:ed)?[ \t]+exit(?:[ \t]+code)?[ \t]*:([\s\S]*)$/i.exec(body);
  if (exit) {
    const v = (exit[1] ?? '').trim();
    if (!/^\d{1,3}$/.test(v) || Number(v) > 255) {
      out.error(line, `\`# expect exit:\` needs an exit code 0-255, got ${JSON.stringify(v)}`, 'write e.g. `# expect exit: 1`', field);
      return 'bad';
    }
    return { kind: 'exit', code: Number(v), line };
  }
  const m = /^expect(?:ed)?(?:[ \t]+(?:output|stdout))?[ \t]*:([\s\S]*)$/i.exec(body);
  if (!m) {
    out.warn(line, 'comment starting with "expect" is not an expectation (no colon), so it checks nothing', 'write `# expect: TEXT`', field);
    return null;
  }
  const v = (m[1] ?? '').trim();
  if (v === '') {
    out.error(line, '`# expect:` has nothing to expect', 'write the text the output must contain, or /REGEX/, after the colon', field);
    return 'bad';
  }
  const re = /^\/([\s\S]+)\/([a-z]*)$/.exec(v);
  if (re) {
    const source = re[1] ?? '';
    const flags = re[2] ?? '';
    if (!ALLOWED_REGEX_FLAGS.test(flags) || new Set(flags).size !== flags.length) {
      out.error(line, `regular expression flags "${flags}" are not allowed`, 'use only the flags i, m, s, u, v (each once)', field);
      return 'bad';
    }
    try {
      new RegExp(source, flags);
    } catch (e) {
      out.error(line, `invalid regular expression /${source}/${flags}: ${e instanceof Error ? e.message : String(e)}`, 'fix the pattern, or write plain text to match literally', field);
      return 'bad';
    }
    return { kind: 'regex', source, flags, line };
  }
  return { kind: 'contains', text: v, line };
}

/** Turn a runnable fenced block into commands, exports and their expectations. */
function parseCommandBlock(block: Block, out: Collector, field: string): StepItem[] {
  const items: StepItem[] = [];
  const isConsole = block.lang === 'console';
  let last: CommandItem | null = null;
  let pending: BlockLine | null = null;

  const emit = (logical: BlockLine): void => {
    const t = logical.text.trim();
    if (t === '') return;
    if (/^export(?:\s|$)/.test(t)) {
      last = null;
      const m = EXPORT_RE.exec(t);
      if (!m) {
        out.error(logical.line, `\`${t}\` is not a variable assignment`, 'write `export NAME=value` (no spaces around =)', field);
        return;
      }
      items.push({ kind: 'export', line: logical.line, name: m[1] ?? '', value: unquote(m[2] ?? '') });
      return;
    }
    if (HEREDOC_RE.test(t)) {
      out.error(logical.line, 'here-documents (<<EOF) are not supported: there is no shell', 'put the content in a file block (```ini file=/path/to/file) and a command that uses the file', field);
      last = null;
      return;
    }
    const cmd: CommandItem = { kind: 'command', line: logical.line, text: t, expects: [] };
    items.push(cmd);
    last = cmd;
  };

  for (const bl of block.content) {
    if (pending) {
      const t = bl.text.trim();
      if (endsWithContinuation(t)) {
        pending = { text: `${pending.text} ${t.slice(0, -1).trim()}`.trim(), line: pending.line };
        continue;
      }
      emit({ text: `${pending.text} ${t}`.trim(), line: pending.line });
      pending = null;
      continue;
    }
    let t = bl.text.trim();
    if (t === '') continue;
    if (t.startsWith('#')) {
      const ex = parseExpectation(t, bl.line, out, field);
      if (ex === null || ex === 'bad') continue;
      const target = last as CommandItem | null;
      if (!target) {
        out.error(bl.line, 'expectation has no command before it in this code block', 'put `# expect` lines directly after the command they check, in the same block', field);
        continue;
      }
      target.expects.push(ex);
      continue;
    }
    if (isConsole) {
      // In a console transcript only `$ ` lines are commands; the rest is sample output.
      if (t === '$') continue;
      if (!t.startsWith('$ ')) continue;
      t = t.slice(2).trim();
    } else if (t.startsWith('$ ')) {
      t = t.slice(2).trim();
    }
    if (endsWithContinuation(t)) {
      pending = { text: t.slice(0, -1).trim(), line: bl.line };
      continue;
    }
    emit({ text: t, line: bl.line });
  }
  if (pending) {
    out.error(pending.line, 'the command ends with `\\` but the code block ends before it continues', 'remove the trailing backslash or add the continuation line', field);
  }
  return items;
}

function fileItem(block: Block, path: string, out: Collector, field: string): StepItem | null {
  const p = path.trim();
  if (p === '') {
    out.error(block.line, 'file block has an empty path', 'write `file=/path/to/file` in the info string', field);
    return null;
  }
  const mode = block.attrs.mode;
  if (mode !== undefined && !/^0?[0-7]{3}$/.test(mode) && !/^[0-7]{4}$/.test(mode)) {
    out.error(block.line, `file mode "${mode}" is not an octal mode`, 'write e.g. mode=0644', field);
    return null;
  }
  const content = block.content.map((l) => l.text).join('\n') + (block.content.length > 0 ? '\n' : '');
  return { kind: 'file', line: block.line, path: p, content, ...(mode !== undefined ? { mode } : {}) };
}

function parseUnsafe(text: string, file: string, options: YamlPathOptions): ParseResult {
  const out = new Collector(file);
  if (typeof text !== 'string') {
    return { ok: false, issues: [{ file, line: 0, field: 'file', message: 'not a text task file (no text given)', fix: 'pass the file content as a string' }] };
  }
  if (looksBinary(text)) {
    return {
      ok: false,
      issues: [{ file, line: 0, field: 'file', message: 'not a text task file: it contains NUL bytes or control characters', fix: 'task files are UTF-8 Markdown; remove the file or replace it with a .md task' }],
    };
  }
  const front = readFrontMatter(text, file, options);
  if (!front.ok) {
    const id = idFromRaw(text);
    return id ? { ok: false, issues: front.issues, id } : { ok: false, issues: front.issues };
  }
  const { data, keyLines, itemLines, bodyLine, bodyOffset } = front.value;
  const check = validateFrontMatter(data, file, keyLines, itemLines);
  out.issues.push(...check.issues);
  out.warnings.push(...check.warnings);

  const lines = splitLines(text.slice(bodyOffset));
  const lists: Record<'preflight' | 'steps' | 'rollback', StepItem[]> = { preflight: [], steps: [], rollback: [] };
  const criteria: Criterion[] = [];
  const outOfScope: string[] = [];
  const sections: SectionInfo[] = [];
  const contextParts: string[] = [];
  const seen = new Set<SectionName>();

  let section: { name: SectionName | null; level: number; start: number } = { name: null, level: 0, start: 0 };
  let block: Block | null = null;
  let prevText: BlockLine | null = null;
  let crit: CriterionDraft | null = null;
  let scopeItem: { indent: number; continues: boolean } | null = null;
  let lastHeading = '';
  let firstH1: string | undefined;

  const finishCriterion = (): void => {
    if (!crit) return;
    const c = crit;
    crit = null;
    const field = 'Acceptance Criteria';
    if (c.text === '') {
      out.error(c.line, 'acceptance criterion has no text', 'say what must be true after the task, e.g. `- [ ] The service answers 200`', field);
      return;
    }
    const na = NA_RE.exec(c.text);
    if (na) {
      const reason = (na[1] ?? '').trim();
      if (reason === '') out.error(c.line, 'N/A criterion gives no reason', 'write `N/A - why it does not apply`', field);
      if (c.runnable) out.warn(c.line, 'N/A criterion has a verification block; the block is not run', 'remove the block or the N/A', field);
      criteria.push({ kind: 'na', line: c.line, text: c.text, checked: c.checked, reason });
      return;
    }
    if (c.runnable) {
      if (!c.items.some((i) => i.kind === 'command')) {
        out.error(c.line, 'the verification block of this criterion has no command', 'put the command that proves the criterion in the block', field);
        return;
      }
      criteria.push({ kind: 'verify', line: c.line, text: c.text, checked: c.checked, items: c.items });
      return;
    }
    criteria.push({ kind: 'manual', line: c.line, text: c.text, checked: c.checked });
  };

  const endSection = (endIdx: number): void => {
    finishCriterion();
    scopeItem = null;
    if (section.name === 'context') contextParts.push(lines.slice(section.start, endIdx).join('\n'));
  };

  const finishBlock = (b: Block): void => {
    const name = section.name;
    const path = b.attrs.file ?? b.markerPath;
    const runnable = RUNNABLE_LANGUAGES.has(b.lang);
    if (name === 'steps' || name === 'preflight' || name === 'rollback') {
      const field = name === 'steps' ? 'Steps' : name === 'preflight' ? 'Preflight' : 'Rollback';
      if (path !== undefined) {
        const item = fileItem(b, path, out, field);
        if (item) lists[name].push(item);
      } else if (runnable) {
        lists[name].push(...parseCommandBlock(b, out, field));
      } else if (b.lang === '') {
        out.warn(b.line, `code block without a language in ${field} is not run`, 'tag it ```sh to run it, or ```text to silence this', field);
      }
      return;
    }
    if (name === 'acceptance') {
      if (!runnable && path === undefined) return;
      if (!crit) {
        // A block under a subsection heading with no list item proves the subsection itself.
        crit = { line: b.line, text: lastHeading || 'Acceptance check', checked: false, indent: 0, items: [], runnable: false, continues: false };
      }
      crit.continues = false;
      if (path !== undefined) {
        out.error(b.line, 'a file block cannot prove an acceptance criterion', 'move the file block to ## Steps and verify its effect with a command', 'Acceptance Criteria');
        return;
      }
      crit.runnable = true;
      crit.items.push(...parseCommandBlock(b, out, 'Acceptance Criteria'));
    }
  };

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const ln = bodyLine + i;
    if (block) {
      if (closesFence(raw, block.open)) {
        finishBlock(block);
        block = null;
        prevText = null;
      } else {
        block.content.push({ text: dedent(raw, block.open.indent), line: ln });
      }
      continue;
    }
    const fence = openingFence(raw);
    if (fence) {
      const { lang, attrs } = parseInfoString(fence.info);
      const marker = prevText ? fileMarker(prevText.text) : null;
      block = { open: fence, line: ln, lang, attrs, content: [], ...(marker ? { markerPath: marker[1] ?? '' } : {}) };
      if (crit) crit.continues = false;
      continue;
    }
    const trimmed = raw.trim();
    if (trimmed === EVIDENCE_BEGIN || trimmed === EVIDENCE_BEGIN_NOEOL) {
      endSection(i);
      section = { name: 'evidence', level: 0, start: i + 1 };
      prevText = null;
      continue;
    }
    if (trimmed === EVIDENCE_END) {
      endSection(i);
      section = { name: null, level: 0, start: i + 1 };
      prevText = null;
      continue;
    }
    const h = heading(raw);
    if (h) {
      prevText = null;
      const match = classifyHeading(h.text);
      const usable = match && (match.strong || h.level >= 2) ? match : null;
      let starts: boolean;
      if (section.name !== null && h.level > section.level) {
        starts = usable !== null && (usable.name === 'evidence' || (usable.strong && usable.name !== section.name));
      } else {
        starts = true;
      }
      if (starts) {
        endSection(i);
        const name = usable?.name ?? null;
        if (name && seen.has(name) && name !== 'evidence') {
          out.warn(ln, `a second "${h.text}" section; its content is added to the first one's`, 'merge the two sections', h.text);
        }
        if (name) seen.add(name);
        section = { name, level: h.level, start: i + 1 };
        sections.push({ name, heading: h.text, level: h.level, line: ln });
      } else {
        finishCriterion();
        scopeItem = null;
        sections.push({ name: section.name, heading: h.text, level: h.level, line: ln });
      }
      if (h.level === 1 && firstH1 === undefined && !usable) firstH1 = h.text;
      lastHeading = h.text;
      continue;
    }
    if (trimmed === '') {
      if (crit) crit.continues = false;
      if (scopeItem) scopeItem.continues = false;
      continue;
    }
    prevText = { text: raw, line: ln };
    if (section.name === 'acceptance') {
      const li = listItem(raw);
      const current = crit as CriterionDraft | null;
      if (li && (li.checkbox || current === null || li.indent <= current.indent) && li.indent < 4) {
        finishCriterion();
        crit = { line: ln, text: li.text, checked: li.checked, indent: li.indent, items: [], runnable: false, continues: true };
      } else if (li) {
        if (current) current.continues = false;
      } else if (current && current.continues) {
        current.text = `${current.text} ${trimmed}`.trim();
      }
      continue;
    }
    if (section.name === 'out-of-scope') {
      const li = listItem(raw);
      const current = scopeItem as { indent: number; continues: boolean } | null;
      if (li && (current === null || li.indent <= current.indent)) {
        outOfScope.push(li.text);
        scopeItem = { indent: li.indent, continues: true };
      } else if (li) {
        if (current) current.continues = false;
      } else if (current && current.continues && outOfScope.length > 0) {
        outOfScope[outOfScope.length - 1] = `${outOfScope[outOfScope.length - 1] ?? ''} ${trimmed}`.trim();
      }
    }
  }
  if (block) {
    const b = block as Block;
    const marks = b.open.char.repeat(b.open.len);
    out.error(b.line, 'code block opened here is never closed', `add a line holding only ${marks} where the block ends`, sectionLabel(section.name));
  }
  endSection(lines.length);

  if (out.issues.length > 0) {
    const id = check.fm.id ?? idFromRaw(text);
    const issues = out.issues.sort((a, b) => a.line - b.line);
    return id && TASK_ID_RE.test(id) ? { ok: false, issues, id } : { ok: false, issues };
  }
  const task: Task = {
    file,
    fm: check.fm,
    title: check.fm.title ?? firstH1 ?? basenameTitle(file),
    context: contextParts.join('\n\n').trim(),
    preflight: lists.preflight,
    steps: lists.steps,
    criteria,
    rollback: lists.rollback,
    outOfScope,
    sections,
  };
  return { ok: true, task, warnings: out.warnings.sort((a, b) => a.line - b.line) };
}

/**
 * Parse a task file's text. `file` is used in every Issue. Never throws. `options.fast: false`
 * reads the front matter with the YAML library only (same result; for equivalence tests and benches).
 */
export function parseTask(text: string, file: string, options: YamlPathOptions = {}): ParseResult {
  try {
    return parseUnsafe(text, file, options);
  } catch (e) {
    // A bug in the parser must not take down the queue or the linter: report it against the file.
    return {
      ok: false,
      issues: [{ file, line: 0, field: 'file', message: `internal parser error: ${e instanceof Error ? e.message : String(e)}`, fix: 'report this file to the opscrew maintainers' }],
    };
  }
}
