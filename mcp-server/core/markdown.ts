// The small slice of Markdown the task model needs: lines, ATX headings, fenced code blocks and
// list items, recognised line by line in one linear pass. Shared by the parser and the renderer
// so both agree on what is inside a code block.

export interface FenceOpen {
  char: '`' | '~';
  len: number;
  /** Columns of indentation before the fence (content lines lose up to this much). */
  indent: number;
  /** The info string, trimmed. */
  info: string;
}

/** Split on `\n`, dropping a `\r` right before it; a trailing line break yields no extra empty line. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] ?? '';
    if (l.endsWith('\r')) lines[i] = l.slice(0, -1);
  }
  return lines;
}

function leadingColumns(line: string): number {
  let col = 0;
  for (const ch of line) {
    if (ch === ' ') col += 1;
    else if (ch === '\t') col += 4 - (col % 4);
    else break;
  }
  return col;
}

const FENCE_RE = /^([ \t]*)(`{3,}|~{3,})([\s\S]*)$/;

/** An opening fence line (any indentation, since fences nest under list items), or null. */
export function openingFence(line: string): FenceOpen | null {
  const m = FENCE_RE.exec(line);
  if (!m) return null;
  const marks = m[2] ?? '';
  const info = (m[3] ?? '').trim();
  const char = marks[0] === '`' ? '`' : '~';
  // CommonMark: a backtick fence's info string may not contain backticks (it is inline code then).
  if (char === '`' && info.includes('`')) return null;
  return { char, len: marks.length, indent: leadingColumns(m[1] ?? ''), info };
}

/** Whether `line` closes the block opened by `open`: same character, at least as long, nothing after. */
export function closesFence(line: string, open: FenceOpen): boolean {
  const t = line.trim();
  if (t.length < open.len || t[0] !== open.char) return false;
  for (const ch of t) if (ch !== open.char) return false;
  return true;
}

/** Remove up to `cols` columns of leading whitespace (content lines of an indented fence). */
export function dedent(line: string, cols: number): string {
  let col = 0;
  let i = 0;
  while (i < line.length && col < cols) {
    const ch = line[i];
    if (ch === ' ') col += 1;
    else if (ch === '\t') col += 4 - (col % 4);
    else break;
    i += 1;
  }
  return line.slice(i);
}

export interface Heading {
  level: number;
  text: string;
}

const HEADING_RE = /^ {0,3}(#{1,6})(?:[ \t]([\s\S]*))?$/;

export function heading(line: string): Heading | null {
  // Trim first, then match without trailing-whitespace groups: keeps the regex linear on long lines.
  const m = HEADING_RE.exec(line.trimEnd());
  if (!m) return null;
  let text = (m[2] ?? '').trim();
  // Drop an optional closing sequence of #s (` ## Steps ##`).
  let end = text.length;
  while (end > 0 && text[end - 1] === '#') end -= 1;
  if (end < text.length && (end === 0 || text[end - 1] === ' ' || text[end - 1] === '\t')) text = text.slice(0, end).trim();
  return { level: (m[1] ?? '').length, text };
}

export interface ListItem {
  indent: number;
  /** `[ ]` / `[x]` present. */
  checkbox: boolean;
  checked: boolean;
  text: string;
  /** Column where the item's content starts (content nested under it is indented at least this much). */
  contentCol: number;
}

const LIST_RE = /^([ \t]*)([-*+]|\d{1,9}[.)])(?:[ \t]([\s\S]*))?$/;
const CHECKBOX_RE = /^[ \t]*\[([ xX])\](?:[ \t]([\s\S]*))?$/;

export function listItem(line: string): ListItem | null {
  const m = LIST_RE.exec(line);
  if (!m) return null;
  const indent = leadingColumns(m[1] ?? '');
  const marker = m[2] ?? '';
  const rest = m[3] ?? '';
  // `---`/`***` thematic breaks and `-foo` are not list items; LIST_RE requires a space already.
  const contentCol = indent + marker.length + 1;
  const cb = CHECKBOX_RE.exec(rest);
  if (cb) {
    return { indent, checkbox: true, checked: (cb[1] ?? ' ') !== ' ', text: (cb[2] ?? '').trim(), contentCol };
  }
  return { indent, checkbox: false, checked: false, text: rest.trim(), contentCol };
}

/** Longest run of `ch` in `s` (to choose a fence or code-span delimiter that cannot be closed early). */
export function longestRun(s: string, ch: string): number {
  let best = 0;
  let cur = 0;
  for (const c of s) {
    if (c === ch) {
      cur += 1;
      if (cur > best) best = cur;
    } else cur = 0;
  }
  return best;
}

/**
 * For each line, whether it is inside (or delimits) a fenced code block. Unclosed blocks run to the
 * end, as in CommonMark. Scanning starts at line index `from` (the body, after front matter).
 * Used by the renderer to find its markers only outside code.
 */
export function fencedLineMask(lines: readonly string[], from = 0): boolean[] {
  const mask = new Array<boolean>(lines.length).fill(false);
  let open: FenceOpen | null = null;
  for (let i = from; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (open) {
      mask[i] = true;
      if (closesFence(line, open)) open = null;
      continue;
    }
    const f = openingFence(line);
    if (f) {
      open = f;
      mask[i] = true;
    }
  }
  return mask;
}

/** Markers around the generated `## Verification Evidence` section (see task-render.ts). */
export const EVIDENCE_BEGIN = '<!-- opscrew:evidence begin -->';
/** Begin marker used when the file had no final line break before the section was appended. */
export const EVIDENCE_BEGIN_NOEOL = '<!-- opscrew:evidence begin noeol -->';
export const EVIDENCE_END = '<!-- opscrew:evidence end -->';
