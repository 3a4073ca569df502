// Write runner-owned state back into a task file without touching the author's text: front-matter
// keys are edited line by line (never by re-serializing the YAML, so comments and spacing stay),
// criteria are ticked in place, and the generated evidence section lives between two markers at
// the end of the file. Line endings (LF/CRLF) and a BOM are kept.
import { fail, formatIssue, ok, type Result } from './errors.js';
import { locateFrontMatter } from './frontmatter.js';
import {
  EVIDENCE_BEGIN,
  EVIDENCE_BEGIN_NOEOL,
  EVIDENCE_END,
  fencedLineMask,
  listItem,
  longestRun,
  splitLines,
} from './markdown.js';
import { KNOWN_FIELDS } from './task-schema.js';
import type { CriterionEvidence, Priority } from './task-types.js';
import { locateTopLevelKeys, stringifyYamlInline, stringifyYamlScalar, type YamlPathOptions } from './yaml.js';

export interface TaskUpdate {
  /** Top-level front-matter keys to write (a `null` value removes the key, like `unset`). */
  set?: Record<string, string | number | boolean | null>;
  unset?: string[];
  /** 1-based lines of criteria to mark `[x]`. */
  tickCriteria?: number[];
  /** Write or replace the generated `## Verification Evidence` section; null removes it. */
  evidence?: CriterionEvidence[] | null;
}

export interface NewTaskInput {
  id?: string;
  title: string;
  priority?: Priority;
  agent?: string;
  tags?: string[];
  depends_on?: string[];
  resources?: string[];
  discovered_from?: string;
  context?: string;
  steps?: string[];
  criteria?: Array<{ text: string; command?: string; expect?: string }>;
  rollback?: string[];
  outOfScope?: string[];
  extra?: Record<string, unknown>;
}

/** Longest excerpt kept per command in the evidence section; the store keeps the full record. */
export const EVIDENCE_EXCERPT_MAX = 4000;

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function eolOf(text: string): string {
  const nl = text.indexOf('\n');
  return nl > 0 && text[nl - 1] === '\r' ? '\r\n' : '\n';
}

/** Lines with their terminators, so joining them gives the text back exactly. */
function linesWithEnds(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function stripEol(line: string): { body: string; end: string } {
  if (line.endsWith('\r\n')) return { body: line.slice(0, -2), end: '\r\n' };
  if (line.endsWith('\n')) return { body: line.slice(0, -1), end: '\n' };
  return { body: line, end: '' };
}

function oneLine(s: string): string {
  return s
    .split(/[\r\n]+/)
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .join(' ');
}

function trimTrailingNewlines(s: string): string {
  let end = s.length;
  while (end > 0 && s[end - 1] === '\n') end -= 1;
  return s.slice(0, end);
}

// ---------------------------------------------------------------------------------------------
// Ticking criteria

function tickLines(text: string, lines: readonly number[], bodyStartLine: number): Result<string> {
  if (lines.length === 0) return ok(text);
  const parts = linesWithEnds(text);
  for (const n of new Set(lines)) {
    const idx = n - 1;
    const part = parts[idx];
    if (!Number.isInteger(n) || part === undefined || n < bodyStartLine) {
      return fail('TASK_CRITERION_NOT_FOUND', `line ${n} is not a criterion line of this task`);
    }
    const { body, end } = stripEol(part);
    const li = listItem(body);
    if (!li) return fail('TASK_CRITERION_NOT_FOUND', `line ${n} is not a list item: ${JSON.stringify(body.slice(0, 80))}`);
    if (li.checked) continue;
    const m = /^([ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+)(\[ \])?/.exec(body);
    const prefix = m?.[1] ?? '';
    const next = li.checkbox ? `${prefix}[x]${body.slice(prefix.length + 3)}` : `${prefix}[x] ${body.slice(prefix.length)}`;
    parts[idx] = next + end;
  }
  return ok(parts.join(''));
}

// ---------------------------------------------------------------------------------------------
// Front matter

function frontMatterEdit(
  text: string,
  set: Array<[string, string]>,
  unset: ReadonlySet<string>,
  file: string,
  options: YamlPathOptions,
): Result<string> {
  if (set.length === 0 && unset.size === 0) return ok(text);
  const block = locateFrontMatter(text, file);
  if (block.problem) return fail('TASK_FRONTMATTER_INVALID', formatIssue(block.problem));
  const eol = eolOf(text);
  if (!block.present) {
    if (set.length === 0) return ok(text);
    const start = block.bom ? 1 : 0;
    const fm = `---${eol}${set.map(([k, v]) => `${k}: ${v}${eol}`).join('')}---${eol}`;
    return ok(text.slice(0, start) + fm + text.slice(start));
  }
  const lang = block.language.toLowerCase();
  if (lang !== '' && lang !== 'yaml' && lang !== 'yml') {
    return fail('TASK_FRONTMATTER_INVALID', `${file}:1: front matter language \`${block.language}\` cannot be edited`);
  }
  const yamlText = text.slice(block.yamlStart, block.closeStart);
  const located = locateTopLevelKeys(yamlText, options);
  if ('error' in located) {
    return fail('TASK_FRONTMATTER_INVALID', `${file}: front matter cannot be edited safely: ${located.error}`);
  }
  const lines = linesWithEnds(yamlText);
  const replace = new Map<number, string | null>();
  const spans = new Map(located.spans.map((s) => [s.key, s]));
  for (const key of unset) {
    const span = spans.get(key);
    if (!span) continue;
    for (let i = span.startLine; i <= span.endLine; i++) replace.set(i, null);
  }
  const inserts: string[] = [];
  for (const [key, value] of set) {
    const span = spans.get(key);
    if (!span || unset.has(key)) {
      inserts.push(`${key}: ${value}${eol}`);
      continue;
    }
    if (!span.singleLine) {
      return fail('TASK_FIELD_MULTILINE', `${file}:${span.startLine + 2}: ${key}: its value spans several lines; refusing to overwrite it`);
    }
    const { body, end } = stripEol(lines[span.startLine] ?? '');
    const rest = body.slice(span.valueEndCol);
    const comment = /^[ \t]+#/.test(rest) ? rest : '';
    replace.set(span.startLine, `${key}: ${value}${comment}${end || eol}`);
  }
  const kept: string[] = [];
  lines.forEach((line, i) => {
    const r = replace.get(i);
    if (r === undefined) kept.push(line);
    else if (r !== null) kept.push(r);
  });
  const yaml = kept.join('') + inserts.join('');
  if (yaml === '' && lines.length > 0) {
    // Unsetting the last key empties the block: drop the delimiters too, so a front matter we
    // created on a file that had none goes away again (an empty block means nothing anyway).
    return ok(text.slice(0, block.bom ? 1 : 0) + text.slice(block.closeEnd));
  }
  return ok(text.slice(0, block.yamlStart) + yaml + text.slice(block.closeStart));
}

// ---------------------------------------------------------------------------------------------
// Evidence section

interface EvidenceRegion {
  /** Offset of the begin marker line. */
  begin: number;
  /** Offset where the separator added before the section starts. */
  removeFrom: number;
  /** Offset just past the end marker line (or end of text). */
  end: number;
  noeol: boolean;
}

function findEvidence(text: string): EvidenceRegion | null {
  const lines = splitLines(text);
  if (lines[0]?.startsWith('\uFEFF')) lines[0] = lines[0].slice(1);
  // Fences are only looked for in the body: a front-matter value may look like one.
  const block = locateFrontMatter(text);
  const from = block.present && !block.problem ? block.closeLine : 0;
  const mask = fencedLineMask(lines, from);
  const starts: number[] = [];
  let off = 0;
  for (const part of linesWithEnds(text)) {
    starts.push(off);
    off += part.length;
  }
  let begin = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    const t = (lines[i] ?? '').trim();
    if (!mask[i] && (t === EVIDENCE_BEGIN || t === EVIDENCE_BEGIN_NOEOL)) {
      begin = i;
      break;
    }
  }
  if (begin === -1) return null;
  const noeol = (lines[begin] ?? '').trim() === EVIDENCE_BEGIN_NOEOL;
  let endIdx = -1;
  for (let i = begin + 1; i < lines.length; i++) {
    if (!mask[i] && (lines[i] ?? '').trim() === EVIDENCE_END) {
      endIdx = i;
      break;
    }
  }
  const beginOff = starts[begin] ?? text.length;
  const end = endIdx === -1 ? text.length : (starts[endIdx + 1] ?? text.length);
  // The separator we added: one blank line, plus the missing final line break for `noeol`.
  let removeFrom = beginOff;
  if (begin > 0 && lines[begin - 1] === '') {
    removeFrom = starts[begin - 1] ?? beginOff;
    if (noeol && removeFrom > 0) removeFrom -= text[removeFrom - 2] === '\r' ? 2 : 1;
  }
  return { begin: beginOff, removeFrom, end, noeol };
}

function codeSpan(s: string): string {
  const ticks = '`'.repeat(longestRun(s, '`') + 1);
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${s}${pad}${ticks}`;
}

/** Control characters shown as their Unicode pictures, so an excerpt cannot make the file binary. */
function visible(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, (c) =>
    c === '\u007f' ? '\u2421' : String.fromCharCode(0x2400 + c.charCodeAt(0)),
  );
}

function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'unknown';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The generated section's lines (without the surrounding separator). */
export function renderEvidenceSection(evidence: readonly CriterionEvidence[], eol = '\n', noeol = false): string {
  const out: string[] = [noeol ? EVIDENCE_BEGIN_NOEOL : EVIDENCE_BEGIN, '## Verification Evidence', ''];
  out.push('_Generated by opscrew for the last run; rewritten on every run._', '');
  evidence.forEach((ev, i) => {
    out.push(`**Criterion ${i + 1}:** ${oneLine(visible(ev.criterion))}`, `**Outcome:** ${ev.outcome}`, '');
    if (ev.commands.length === 0) out.push('No command was run for this criterion.', '');
    for (const c of ev.commands) {
      const exit = c.exitCode === null ? 'no exit code' : `exit ${c.exitCode}`;
      out.push(`- Command: ${codeSpan(oneLine(visible(c.command)))}`);
      out.push(`- Result: ${c.passed ? 'passed' : 'failed'}, ${exit}, ${formatMs(c.durationMs)}`);
      if (c.reason) out.push(`- Reason: ${oneLine(visible(c.reason))}`);
      out.push('');
      let excerpt = trimTrailingNewlines(visible(c.excerpt.replace(/\r\n?/g, '\n')));
      if (excerpt.length > EVIDENCE_EXCERPT_MAX) excerpt = `${excerpt.slice(0, EVIDENCE_EXCERPT_MAX)}\n… (truncated)`;
      if (excerpt.trim() === '') {
        out.push('(no output)', '');
      } else {
        const fence = '`'.repeat(Math.max(3, longestRun(excerpt, '`') + 1));
        out.push(`${fence}text`, ...excerpt.split('\n'), fence, '');
      }
    }
  });
  out.push(EVIDENCE_END);
  return out.join(eol) + eol;
}

function evidenceEdit(text: string, evidence: CriterionEvidence[] | null): string {
  const region = findEvidence(text);
  const eol = eolOf(text);
  if (evidence === null) {
    return region ? text.slice(0, region.removeFrom) + text.slice(region.end) : text;
  }
  if (region) {
    return text.slice(0, region.begin) + renderEvidenceSection(evidence, eol, region.noeol) + text.slice(region.end);
  }
  const hasBreak = text.endsWith('\n') || text === '';
  const sep = hasBreak ? eol : eol + eol;
  return text + sep + renderEvidenceSection(evidence, eol, !hasBreak);
}

// ---------------------------------------------------------------------------------------------

/**
 * Apply runner-owned changes to a task file's text. Everything else stays byte for byte.
 * Order: tick criteria (lines refer to the text as given), edit front matter, then evidence.
 * `options.fast: false` edits with the YAML library only (same result; equivalence tests, benches).
 */
export function updateTaskText(text: string, update: TaskUpdate, file = '<task>', options: YamlPathOptions = {}): Result<string> {
  const set: Array<[string, string]> = [];
  const unset = new Set<string>(update.unset ?? []);
  for (const key of unset) {
    if (!KEY_RE.test(key)) return fail('TASK_FIELD_INVALID', `${file}: "${key}" is not a front-matter key`);
  }
  for (const [key, value] of Object.entries(update.set ?? {})) {
    if (!KEY_RE.test(key)) return fail('TASK_FIELD_INVALID', `${file}: "${key}" is not a front-matter key`);
    if (value === null) {
      unset.add(key);
      continue;
    }
    const v = stringifyYamlScalar(value, options);
    if (v === null) return fail('TASK_FIELD_INVALID', `${file}: ${key}: ${String(value)} cannot be written to YAML`);
    set.push([key, v]);
  }
  let out = text;
  if (update.tickCriteria && update.tickCriteria.length > 0) {
    const block = locateFrontMatter(text, file);
    if (block.problem) return fail('TASK_FRONTMATTER_INVALID', formatIssue(block.problem));
    const bodyStartLine = block.present ? block.closeLine + 1 : 1;
    const r = tickLines(out, update.tickCriteria, bodyStartLine);
    if (!r.ok) return r;
    out = r.value;
  }
  const fm = frontMatterEdit(out, set, unset, file, options);
  if (!fm.ok) return fm;
  out = fm.value;
  if (update.evidence !== undefined) out = evidenceEdit(out, update.evidence);
  return ok(out);
}

// ---------------------------------------------------------------------------------------------
// New tasks

function fenceFor(lines: readonly string[]): string {
  return '`'.repeat(Math.max(3, ...lines.map((l) => longestRun(l, '`') + 1)));
}

function commandLines(cmds: readonly string[]): string[] {
  return cmds.flatMap((c) => c.split(/\r?\n/)).map((c) => c.trim()).filter((c) => c !== '');
}

/**
 * A new task file from structured input (`opscrew tasks new`, `task_create`, plan import). Text
 * meant for one line (title, criteria, list items, expectations) has its line breaks folded into
 * spaces; each step is one command line (a multi-line step becomes several commands). Context is
 * free Markdown and should not contain headings named like the task's sections.
 */
export function renderNewTask(input: NewTaskInput): string {
  const fm: string[] = [];
  const title = oneLine(input.title);
  const put = (key: string, value: unknown): void => {
    const v = stringifyYamlInline(value);
    if (v !== null) fm.push(`${key}: ${v}`);
  };
  if (input.id !== undefined) put('id', input.id);
  put('title', title);
  put('priority', input.priority ?? 'medium');
  if (input.agent !== undefined) put('agent', oneLine(input.agent));
  if (input.tags && input.tags.length > 0) put('tags', input.tags.map(oneLine));
  if (input.depends_on && input.depends_on.length > 0) put('depends_on', input.depends_on.map(oneLine));
  if (input.resources && input.resources.length > 0) put('resources', input.resources.map(oneLine));
  if (input.discovered_from !== undefined) put('discovered_from', input.discovered_from);
  for (const [key, value] of Object.entries(input.extra ?? {})) {
    if (KEY_RE.test(key) && !KNOWN_FIELDS.includes(key) && key !== 'timeout' && value !== undefined) put(key, value);
  }
  const out: string[] = ['---', ...fm, '---', `# ${title}`];
  const context = (input.context ?? '').replace(/\r\n?/g, '\n').trim();
  if (context !== '') out.push('', '## Context', '', context);
  const shBlock = (cmds: readonly string[], indent = ''): string[] => {
    const fence = fenceFor(cmds);
    return [`${indent}${fence}sh`, ...cmds.map((c) => `${indent}${c}`), `${indent}${fence}`];
  };
  const steps = commandLines(input.steps ?? []);
  if (steps.length > 0) out.push('', '## Steps', '', ...shBlock(steps));
  const criteria = input.criteria ?? [];
  if (criteria.length > 0) {
    out.push('', '## Acceptance Criteria', '');
    for (const c of criteria) {
      out.push(`- [ ] ${oneLine(c.text)}`);
      const cmds = commandLines(c.command === undefined ? [] : [c.command]);
      if (cmds.length > 0) {
        const body = [...cmds];
        if (c.expect !== undefined && oneLine(c.expect) !== '') body.push(`# expect: ${oneLine(c.expect)}`);
        out.push(...shBlock(body, '  '));
      }
    }
  }
  const rollback = commandLines(input.rollback ?? []);
  if (rollback.length > 0) out.push('', '## Rollback', '', ...shBlock(rollback));
  const scope = (input.outOfScope ?? []).map(oneLine).filter((s) => s !== '');
  if (scope.length > 0) out.push('', '## Out of Scope', '', ...scope.map((s) => `- ${s}`));
  return out.join('\n') + '\n';
}
